package main

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/raytest"
)

// writeWheel writes a wheel of one module, wharf_overlay_demo, whose
// VALUE is value: a package pip installs from a file, without an index.
func writeWheel(t *testing.T, dir, value string) string {
	t.Helper()
	path := filepath.Join(dir, "wharf_overlay_demo-1.0-py3-none-any.whl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	files := map[string]string{
		"wharf_overlay_demo.py":                          "VALUE = " + value + "\n",
		"wharf_overlay_demo-1.0.dist-info/METADATA":      "Metadata-Version: 2.1\nName: wharf-overlay-demo\nVersion: 1.0\n",
		"wharf_overlay_demo-1.0.dist-info/WHEEL":         "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"wharf_overlay_demo-1.0.dist-info/RECORD":        "",
		"wharf_overlay_demo-1.0.dist-info/top_level.txt": "wharf_overlay_demo\n",
	}
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readableWheel writes writeWheel's wheel, VALUE 42, into a folder of
// its own that a sandbox's user can read, and returns both.
func readableWheel(t *testing.T) (dir, wheel string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wheel = writeWheel(t, dir, "42")
	if err := os.Chmod(wheel, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, wheel
}

// overlayJobs writes two jobs on compute whose environment is an image
// alone: install pip installs wheel and writes "42 True" (the package's
// VALUE, and that it runs in a virtual environment) and "stdlib ok" to
// got.txt of its output out; after writes "absent" there when it cannot
// import the package.
func overlayJobs(t *testing.T, dir, wheel, compute string) (install, after string) {
	install = writeFile(t, dir, "install-"+compute+".yml", `command: >-
  pip install --no-index --no-deps --disable-pip-version-check `+wheel+` &&
  python -c "import wharf_overlay_demo, sys; print(wharf_overlay_demo.VALUE, sys.prefix != sys.base_prefix)" > ${{outputs.out}}/got.txt &&
  python -c "import json; print('stdlib ok')" >> ${{outputs.out}}/got.txt
environment: {image: python:3.11}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
	after = writeFile(t, dir, "after-"+compute+".yml", `command: python -c "import wharf_overlay_demo" 2> ${{outputs.out}}/err.txt || echo absent > ${{outputs.out}}/got.txt
environment: {image: python:3.11}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
	return install, after
}

// TestPipInstallInAStepStaysInTheStep: a step whose environment is only
// an image runs with the host's Python, and what it installs with pip
// goes into a layer of its own: the step imports it, while the host's
// Python and the next job never see it.
func TestPipInstallInAStepStaysInTheStep(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		missing(t, "no python3 on PATH")
	}
	dir, wheel := readableWheel(t)
	e := newCLIEnvWith(t, func(o *serverOptions) { o.stepReadOnly = []string{dir} })
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	pipStaysInTheStep(t, e, dir, wheel, "cpu-cluster", "python3")
}

// TestRaySandboxedPipInstallInAStepStaysInTheStep: the same on a
// Ray-backed cluster whose steps run sandboxed, where the process that
// sandboxes a step whose environment is only an image makes its layer,
// and the step installs into it as the sandbox's user.
func TestRaySandboxedPipInstallInAStepStaysInTheStep(t *testing.T) {
	dir, wheel := readableWheel(t)
	e, _ := rayEnvWith(t, "--sandbox=true", "--sandbox-ro-path", dir)
	pipStaysInTheStep(t, e, dir, wheel, "ray-cluster", filepath.Join(filepath.Dir(raytest.Program(t)), "python"))
}

// pipStaysInTheStep runs overlayJobs' jobs on compute, one after the
// other, and checks that the first imports what it installed, and that
// neither python (the Python the steps' layers are on) nor the second job
// sees it.
func pipStaysInTheStep(t *testing.T, e *cliEnv, dir, wheel, compute, python string) {
	t.Helper()
	job, after := overlayJobs(t, dir, wheel, compute)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
	}
	dl := filepath.Join(dir, "dl-"+compute)
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "got.txt")); err != nil || string(b) != "42 True\nstdlib ok\n" {
		t.Fatalf("the step's view: %q %v", b, err)
	}

	if out, err := exec.Command(python, "-c", "import wharf_overlay_demo").CombinedOutput(); err == nil {
		// That Python is the machine's or a shared test tool's: it is
		// left as it was found.
		if out, err := exec.Command(python, "-m", "pip", "uninstall", "-y", "wharf-overlay-demo").CombinedOutput(); err != nil {
			t.Errorf("removing the package from %s: %v\n%s", python, err, out)
		}
		t.Fatalf("%s imports what the step installed: %s", python, out)
	}
	name = lastLine(e.ok("ml", "job", "create", "--file", after, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("second job: %s", got)
	}
	dl2 := filepath.Join(dir, "dl2-"+compute)
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl2, "-w", "dev")
	if b, err := os.ReadFile(filepath.Join(dl2, "named-outputs", "out", "got.txt")); err != nil || !strings.Contains(string(b), "absent") {
		t.Errorf("the next job sees the package: %q %v", b, err)
	}
}

// TestRayPipInstallInAStepStaysInTheStep: on a Ray-backed cluster as on
// local compute, a step whose environment is only an image runs in a
// layer of its own, on the Ray worker's Python: it imports what it
// installed with pip, while the next step and the worker's Python (the
// Ray head venv's, which its workers run) never see it.
func TestRayPipInstallInAStepStaysInTheStep(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wheel := writeWheel(t, dir, "42")
	pipStaysInTheStep(t, e, dir, wheel, "ray-cluster", filepath.Join(filepath.Dir(raytest.Program(t)), "python"))
}
