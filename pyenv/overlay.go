package pyenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// An overlay is a virtual environment of a step's own, made in its
// attempt's folder, layered on what the step would otherwise run with:
// the host's Python and its packages (include-system-site-packages), or a
// built environment, whose packages a .pth file adds. The step sees every
// package it would have seen, and what it installs itself (`pip install`
// in its command) goes into the overlay, never into the host's Python or
// a cached environment that other jobs share.
//
// It is made by writing its few files rather than by running
// `python -m venv`, and as few of those as do the job: making a file or a
// folder costs a step from a tenth of a millisecond to over one on a busy
// disk, and a hard link a small part of that. So python3 and pythonX.Y are
// hard links to the python link, pip3 and pipX.Y to the pip script. pip
// replaces a script by removing it first, so installing pip into the
// overlay leaves the other names as they were. A sandbox hands the overlay
// to the step's user but leaves a file of several names to its owner, so
// the pip script stays the server's: the step runs it, and may replace it
// in its own bin folder, but cannot change it.

// overlayPipScript runs the pip of the base interpreter or environment
// from the overlay's interpreter, so that it installs into the overlay.
const overlayPipScript = `#!%s
import sys
from pip._internal.cli.main import main
if __name__ == "__main__":
    sys.argv[0] = "pip"
    sys.exit(main())
`

// Interpreter is a base Python that overlays run on: what an overlay
// needs to know of it.
type Interpreter struct {
	// Executable is its real path (no shim, no link).
	Executable string `json:"executable"`
	// Version is its full version, "3.11.7".
	Version string `json:"version"`
	// VenvSite, for a host python3 that is itself a virtual environment's
	// (the server run from a venv), are the folders of that environment's
	// packages, which an overlay on it must see as the host's Python does.
	VenvSite []string `json:"venv_site,omitempty"`
}

var hostInterpreters sync.Map // python name -> *Interpreter or error

// KnowInterpreter records what python (a name or path, as Overlay's
// hostPython) is, so that overlays made on it in this process need not
// start it to ask, which costs a step tens of milliseconds: a caller that
// runs on that Python (the driver on a Ray node) knows it already.
func KnowInterpreter(python string, in Interpreter) error {
	if !filepath.IsAbs(in.Executable) || in.Version == "" || strings.Count(in.Version, ".") != 2 {
		return fmt.Errorf("pyenv: %s is described as %q, version %q: want an absolute path and a full version such as 3.11.7",
			python, in.Executable, in.Version)
	}
	for _, s := range in.VenvSite {
		if !filepath.IsAbs(s) {
			return fmt.Errorf("pyenv: %s is described with package folder %q: want an absolute path", python, s)
		}
	}
	hostInterpreters.Store(python, &in)
	return nil
}

// hostInterpreter finds the real interpreter behind python (a name on
// PATH, a pyenv shim, a link), once per name for the process's life.
func hostInterpreter(ctx context.Context, python string) (*Interpreter, error) {
	if python == "" {
		python = "python3"
	}
	if v, ok := hostInterpreters.Load(python); ok {
		if err, bad := v.(error); bad {
			return nil, err
		}
		return v.(*Interpreter), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c",
		`import os, site, sys; print(os.path.realpath(sys.executable)); print("%d.%d.%d" % sys.version_info[:3]); `+
			`print(os.pathsep.join(site.getsitepackages()) if sys.prefix != sys.base_prefix else "")`)
	cmd.Env = buildEnv()
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("pyenv: %s does not run: %w", python, err)
			hostInterpreters.Store(python, err)
		}
		return nil, err
	}
	lines := strings.SplitN(strings.TrimRight(string(out), "\n"), "\n", 3)
	for len(lines) < 3 {
		lines = append(lines, "")
	}
	in := &Interpreter{Executable: strings.TrimSpace(lines[0]), Version: strings.TrimSpace(lines[1])}
	if venv := strings.TrimSpace(lines[2]); venv != "" {
		in.VenvSite = filepath.SplitList(venv)
	}
	hostInterpreters.Store(python, in)
	return in, nil
}

// envInterpreter reads a built environment's base interpreter and the
// folder of its packages from its pyvenv.cfg.
func envInterpreter(env *Env) (*Interpreter, string, error) {
	f, err := os.Open(filepath.Join(env.Dir, "pyvenv.cfg"))
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	cfg := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			cfg[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	version := cfg["version"]
	if version == "" {
		version = cfg["version_info"] // uv's name for it
	}
	if cfg["home"] == "" || version == "" {
		return nil, "", fmt.Errorf("pyenv: %s/pyvenv.cfg names no home or version", env.Dir)
	}
	exe, err := filepath.EvalSymlinks(env.Python)
	if err != nil {
		return nil, "", err
	}
	site := filepath.Join(env.Dir, "lib", "python"+majorMinor(version), "site-packages")
	return &Interpreter{Executable: exe, Version: version}, site, nil
}

func majorMinor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// Overlay makes an overlay at dir (which must not exist) on base, or on
// the host's python (hostPython, "" for python3 on PATH) when base is nil,
// and returns it as an environment to run the step in. A host without
// Python gets no overlay: nil and no error.
func Overlay(ctx context.Context, dir string, base *Env, hostPython string) (*Env, error) {
	var (
		in       *Interpreter
		baseSite []string
		err      error
	)
	if base != nil {
		var site string
		in, site, err = envInterpreter(base)
		baseSite = []string{site}
	} else {
		in, err = hostInterpreter(ctx, hostPython)
		var exitErr *exec.ExitError
		if errors.Is(err, exec.ErrNotFound) || errors.As(err, &exitErr) {
			return nil, nil
		}
		if err == nil {
			baseSite = in.VenvSite
		}
	}
	if err != nil {
		return nil, err
	}
	mm := majorMinor(in.Version)
	env := newEnv(dir)
	if err := os.MkdirAll(env.BinDir, 0o755); err != nil {
		return nil, err
	}
	system := "true"
	if len(baseSite) > 0 {
		// The built (or host's virtual) environment's packages, after
		// the overlay's own. Otherwise the overlay has no site-packages
		// folder until pip makes one, and Python adds it from then on.
		system = "false"
		site := filepath.Join(dir, "lib", "python"+mm, "site-packages")
		if err := os.MkdirAll(site, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(site, "_wharf_base.pth"), []byte(strings.Join(baseSite, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = %s\nversion = %s\nexecutable = %s\n",
		filepath.Dir(in.Executable), system, in.Version, in.Executable)
	if err := os.WriteFile(filepath.Join(dir, "pyvenv.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := os.Symlink(in.Executable, env.Python); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(env.BinDir, "pip"), []byte(fmt.Sprintf(overlayPipScript, env.Python)), 0o755); err != nil {
		return nil, err
	}
	for _, l := range [...]struct{ name, same string }{
		{"python3", "python"}, {"python" + mm, "python"}, {"pip3", "pip"}, {"pip" + mm, "pip"},
	} {
		if err := linkOrSymlink(filepath.Join(env.BinDir, l.same), filepath.Join(env.BinDir, l.name)); err != nil {
			return nil, err
		}
	}
	env.PythonVersion = mm
	env.Base = base
	return env, nil
}

// linkOrSymlink gives the file at old a second name in the same folder,
// new: a hard link or, where the file system refuses one, a symbolic
// link to old, as python -m venv makes python3 of python.
func linkOrSymlink(old, new string) error {
	if err := os.Link(old, new); err != nil {
		return os.Symlink(filepath.Base(old), new)
	}
	return nil
}

// ApplyTo returns environ, a process's whole environment (KEY=VALUE
// entries), with e put in it as Environ puts it in a PATH: e's programs
// first on PATH, VIRTUAL_ENV naming e. The entries e replaces are dropped.
func (e *Env) ApplyTo(environ []string) []string {
	path := ""
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "PATH":
			path = v
		case "VIRTUAL_ENV":
			if e == nil {
				out = append(out, kv)
			}
		default:
			out = append(out, kv)
		}
	}
	return append(out, e.Environ(path)...)
}
