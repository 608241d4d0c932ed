// Package pyenvtest holds a Python package for tests of environment
// builds: a source package whose build code reports what it can reach, as
// a hostile package's setup.py would try to.
package pyenvtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ProbeModule is the module the probe's wheel installs; its SEEN string
// holds the report.
const ProbeModule = "wharf_build_probe"

// probeBackend is an in-tree PEP 517 build backend: installing the folder
// runs it, as pip and uv run setuptools for a setup.py, and it needs
// nothing from a package index. It reports on standard error (the build
// log) and in the wheel it builds.
const probeBackend = `import base64, hashlib, os, sys, zipfile

READ = %s
WRITE = %s
VARIABLES = %s


def _seen():
    lines = []
    for path in READ:
        try:
            with open(path, "rb") as f:
                f.read()
            lines.append("read %%s: yes" %% path)
        except OSError as e:
            lines.append("read %%s: no (%%s)" %% (path, e.strerror))
    for path in WRITE:
        try:
            with open(path, "w") as f:
                f.write("written by a package's build code\n")
            lines.append("write %%s: yes" %% path)
        except OSError as e:
            lines.append("write %%s: no (%%s)" %% (path, e.strerror))
    for name in VARIABLES:
        lines.append("variable %%s: %%s" %% (name, "yes" if name in os.environ else "no"))
    lines.append("uid: %%d" %% os.getuid())
    return "\n".join(lines)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    seen = _seen()
    sys.stderr.write("wharf-build-probe:\n" + seen + "\n")
    files = {
        "wharf_build_probe.py": "SEEN = %%r\n" %% seen,
        "wharf_build_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: wharf-build-probe\nVersion: 1.0\n",
        "wharf_build_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: probe\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    name = "wharf_build_probe-1.0-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, text in files.items():
            data = text.encode()
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%%s,sha256=%%s,%%d" %% (path, digest, len(data)))
        record.append("wharf_build_probe-1.0.dist-info/RECORD,,")
        z.writestr("wharf_build_probe-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return name
`

const probeProject = `[build-system]
requires = []
build-backend = "probe_backend"
backend-path = ["."]

[project]
name = "wharf-build-probe"
version = "1.0"
`

// WriteProbe writes the probe package into a new folder of dir, readable by
// every user (a sandbox's user must read it), and returns the folder. Its
// build code tries to read each file of read, to create each file of write,
// and looks for each environment variable of variables; an installed
// probe's Report says how each went.
func WriteProbe(t testing.TB, dir string, read, write, variables []string) string {
	t.Helper()
	src := filepath.Join(dir, "wharf-build-probe")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	backend := fmt.Sprintf(probeBackend, pyList(read), pyList(write), pyList(variables))
	for name, text := range map[string]string{"pyproject.toml": probeProject, "probe_backend.py": backend} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// pyList is a Python list literal of strings.
func pyList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// Report is what an installed probe's build code saw: a line per check,
// "read PATH: yes", "write PATH: no (Permission denied)", "variable NAME:
// no", and the uid it ran as.
type Report string

// Reached returns the report's lines that say the build code reached
// something: "read PATH: yes", "variable NAME: yes".
func (r Report) Reached() []string {
	var out []string
	for _, line := range strings.Split(string(r), "\n") {
		if strings.HasSuffix(line, ": yes") {
			out = append(out, line)
		}
	}
	return out
}

// Has reports whether the report holds line.
func (r Report) Has(line string) bool {
	return strings.Contains("\n"+string(r)+"\n", "\n"+line+"\n")
}
