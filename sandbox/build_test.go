package sandbox_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/pyenv/pyenvtest"
	"github.com/wharfml/wharf/sandbox"
)

// probeReport returns what the probe's build code saw, from the probe
// installed in env.
func probeReport(t *testing.T, env *pyenv.Env) pyenvtest.Report {
	t.Helper()
	out, err := exec.Command(env.Python, "-c", "import "+pyenvtest.ProbeModule+" as p; print(p.SEEN)").CombinedOutput()
	if err != nil {
		t.Fatalf("the probe is not installed in %s: %v\n%s", env.Dir, err, out)
	}
	return pyenvtest.Report(strings.TrimSpace(string(out)))
}

// TestEnvironmentBuildCannotReachTheServer: a requirement that is a
// package's source folder runs that package's build code when the
// environment is built. With the sandbox as the builder's Runner, that
// code runs as the step user and can neither read a file of the server's
// data folder nor create one there, nor see a variable of the server's
// environment, only those builds are given (NO_PROXY); the environment
// still builds, its files belong to the server, and a sandboxed step runs
// it. Built without a Runner, the same package reads and writes the data
// folder, which shows the probe can tell; the server's variables are kept
// from builds either way.
func TestEnvironmentBuildCannotReachTheServer(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed; environments cannot be built")
	}
	const variable = "WHARF_BUILD_PROBE_TOKEN"
	t.Setenv(variable, "a token of the server's")
	if os.Getenv("NO_PROXY") == "" {
		t.Setenv("NO_PROXY", "wharf.invalid")
	}
	data := t.TempDir()
	key := filepath.Join(data, "master.key")
	if err := os.WriteFile(key, []byte("server secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(data, "planted-by-a-build")
	src := pyenvtest.WriteProbe(t, t.TempDir(), []string{key}, []string{planted}, []string{variable, "NO_PROXY"})
	spec := pyenv.Spec{Pip: []string{src}}
	s := newSandbox(t, data)
	ctx := context.Background()

	var log bytes.Buffer
	unisolated := &pyenv.Builder{CacheDir: filepath.Join(t.TempDir(), "envs")}
	env, err := unisolated.Ensure(ctx, spec, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if report := probeReport(t, env); len(report.Reached()) != 3 || !report.Has("variable NO_PROXY: yes") {
		t.Fatalf("built unisolated, the probe should read the key, write the data folder and see NO_PROXY only:\n%s", report)
	}
	if !strings.Contains(log.String(), "WARNING: this build runs as the server's own user, unisolated") {
		t.Errorf("an unisolated build's log does not say so:\n%s", log.String())
	}
	if err := os.Remove(planted); err != nil {
		t.Fatal(err)
	}

	log.Reset()
	b := &pyenv.Builder{CacheDir: filepath.Join(data, "envs"), Runner: s}
	env, err = b.Ensure(ctx, spec, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	report := probeReport(t, env)
	if reached := report.Reached(); len(reached) != 1 || !report.Has("variable NO_PROXY: yes") {
		t.Errorf("a sandboxed build's code reached %q, want only NO_PROXY\n%s", reached, report)
	}
	if !strings.Contains(string(report), "uid: "+strconv.Itoa(s.UID)) {
		t.Errorf("the build code ran as another user than the sandbox's %d:\n%s", s.UID, report)
	}
	if !strings.Contains(log.String(), "build commands run "+s.Isolation()) {
		t.Errorf("the build log does not say where it ran:\n%s", log.String())
	}
	if _, err := os.Stat(planted); err == nil {
		t.Error("the build code created a file in the data folder")
	}
	err = filepath.WalkDir(env.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if uid := int(info.Sys().(*syscall.Stat_t).Uid); uid != os.Getuid() {
			t.Errorf("%s belongs to uid %d, not the server's %d", p, uid, os.Getuid())
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A step, in a sandbox of its own, runs the environment but cannot
	// change it.
	step := sandbox.Spec{Env: env.Environ("/usr/bin:/bin"), Dir: "/", Mounts: sandbox.ProgramMounts(env.Python)}
	out, err := run(t, s, step, "python -c 'import "+pyenvtest.ProbeModule+"' && echo imported; touch "+env.Dir+"/changed 2>/dev/null || echo unchanged")
	if err != nil || out != "imported\nunchanged\n" {
		t.Errorf("a step in the environment: %v\n%s", err, out)
	}

	again, err := b.Ensure(ctx, spec, &log)
	if err != nil || !again.Cached || again.Dir != env.Dir {
		t.Errorf("second Ensure: %+v, %v; want the cached environment", again, err)
	}
}

// TestSandboxedBuildTakesOverTheCache: a server that built environments
// unsandboxed before (--unsafe-run-steps-as-server-user) left the
// installers' cache its own; its first sandboxed build hands the cache to
// the step user, so that builds can write it again, and the environments
// built before stay the server's.
func TestSandboxedBuildTakesOverTheCache(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed; environments cannot be built")
	}
	s := newSandbox(t)
	if !s.Privileged() {
		t.Skip("the server is not root: sandboxed builds run as its own user and nothing is handed over")
	}
	cache := filepath.Join(t.TempDir(), "envs")
	ctx := context.Background()
	var log bytes.Buffer
	before, err := (&pyenv.Builder{CacheDir: cache}).Ensure(ctx, pyenv.Spec{PythonVersion: "3"}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	log.Reset()
	// The same interpreter, asked for by its major.minor: another key.
	if _, err := (&pyenv.Builder{CacheDir: cache, Runner: s}).Ensure(ctx, pyenv.Spec{PythonVersion: before.PythonVersion}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	owner := func(p string) int {
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return int(info.Sys().(*syscall.Stat_t).Uid)
	}
	for _, d := range []string{"pip", "uv"} {
		if uid := owner(filepath.Join(cache, ".cache", d)); uid != s.UID {
			t.Errorf("the %s cache belongs to uid %d, not the step user's %d", d, uid, s.UID)
		}
	}
	if uid := owner(filepath.Join(before.Dir, "pyvenv.cfg")); uid != os.Getuid() {
		t.Errorf("an environment built before belongs to uid %d, not the server's", uid)
	}
}
