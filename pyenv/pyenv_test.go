package pyenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostVersion returns the major.minor of the host's python3, skipping the
// test if there is none: these tests build real environments.
func hostVersion(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed; environments cannot be built")
	}
	v, err := probe(context.Background(), path)
	if err != nil {
		t.Skipf("python3 does not run: %v", err)
	}
	return v
}

// needPyPI skips tests that install from PyPI when it cannot be reached.
func needPyPI(t *testing.T) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "pypi.org:443", 5*time.Second)
	if err != nil {
		t.Skipf("PyPI is unreachable (%v); skipping a test that installs from it", err)
	}
	conn.Close()
}

// syncBuffer is a log several goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// storeEntries lists the environments and leftovers in a cache folder.
func storeEntries(t *testing.T, cache string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(cache, storeDir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func runPython(t *testing.T, env *Env, code string) string {
	t.Helper()
	cmd := exec.Command("python", "-c", code)
	cmd.Env = env.Environ("/usr/bin:/bin")
	// exec.Command looks python up in the server's PATH; use the
	// environment's, as a job would.
	cmd.Path = filepath.Join(env.BinDir, "python")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestHostToolsNeedNoEnvironment(t *testing.T) {
	b := &Builder{CacheDir: t.TempDir()}
	var log bytes.Buffer
	for _, s := range []Spec{
		{},
		{Pip: []string{"", "  ", "# just a comment"}},
		{Conda: []string{"python", "pip=23", "cudatoolkit=11.3"}},
	} {
		env, err := b.Ensure(context.Background(), s, &log)
		if env != nil || err != nil {
			t.Errorf("Ensure(%+v) = %+v, %v; want nil, nil", s, env, err)
		}
	}
	if !strings.Contains(log.String(), "cudatoolkit=11.3") {
		t.Errorf("log does not name the skipped conda package: %q", log.String())
	}
	if got := (*Env)(nil).Environ("/bin"); !reflect.DeepEqual(got, []string{"PATH=/bin"}) {
		t.Errorf("nil Environ = %q", got)
	}
	if entries := storeEntries(t, b.CacheDir); len(entries) != 0 {
		t.Errorf("store has %q", entries)
	}
}

func TestBuildThenCacheHit(t *testing.T) {
	t.Parallel()
	want := hostVersion(t)
	b := &Builder{CacheDir: t.TempDir()}
	s := Spec{PythonVersion: want}
	key, err := s.Key()
	if err != nil {
		t.Fatal(err)
	}
	// A build interrupted by a crash, never published: it must be
	// discarded, not reused.
	stale := filepath.Join(b.CacheDir, storeDir, key+"-deadbeef0000")
	if err := os.MkdirAll(filepath.Join(stale, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	env, err := b.Ensure(context.Background(), s, &log)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if env.Cached || env.PythonVersion != want {
		t.Errorf("first Ensure: %+v, want a fresh build of %s", env, want)
	}
	if got := runPython(t, env, `import sys; print("%d.%d" % sys.version_info[:2], sys.prefix)`); got != want+" "+env.Dir {
		t.Errorf("python says %q, want %q", got, want+" "+env.Dir)
	}
	if !strings.Contains(log.String(), "venv") || !strings.Contains(log.String(), "environment ready") {
		t.Errorf("log lacks the build steps:\n%s", log.String())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale build still there: %v", err)
	}

	log.Reset()
	again, err := b.Ensure(context.Background(), Spec{PythonVersion: want + ".0"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Dir != env.Dir || again.PythonVersion != want {
		t.Errorf("second Ensure = %+v, want a cache hit on %s", again, env.Dir)
	}
	if log.Len() != 0 {
		t.Errorf("cache hit wrote to the log: %q", log.String())
	}
	if entries := storeEntries(t, b.CacheDir); len(entries) != 1 {
		t.Errorf("store has %q, want one environment", entries)
	}

	// An environment whose interpreter vanished is rebuilt.
	if err := os.Remove(env.Python); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := b.Ensure(context.Background(), s, &log)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.Cached || rebuilt.Dir == env.Dir {
		t.Errorf("broken environment reused: %+v", rebuilt)
	}
	if entries := storeEntries(t, b.CacheDir); len(entries) != 1 {
		t.Errorf("store has %q, want one environment", entries)
	}
}

func TestConcurrentEnsureBuildsOnce(t *testing.T) {
	t.Parallel()
	want := hostVersion(t)
	cache := t.TempDir()
	const n = 3
	envs := make([]*Env, n)
	errs := make([]error, n)
	var log syncBuffer
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Builders, as separate server processes would have.
			b := &Builder{CacheDir: cache}
			envs[i], errs[i] = b.Ensure(context.Background(), Spec{PythonVersion: want}, &log)
		}()
	}
	wg.Wait()
	built := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v\nlog:\n%s", i, errs[i], log.String())
		}
		if !envs[i].Cached {
			built++
		}
		if envs[i].Dir != envs[0].Dir {
			t.Errorf("Ensure %d got %s, Ensure 0 got %s", i, envs[i].Dir, envs[0].Dir)
		}
	}
	if built != 1 {
		t.Errorf("%d builds, want 1", built)
	}
	if c := strings.Count(log.String(), "environment ready"); c != 1 {
		t.Errorf("log shows %d builds, want 1", c)
	}
	if entries := storeEntries(t, cache); len(entries) != 1 {
		t.Errorf("store has %q, want one environment", entries)
	}
}

// tools returns the build tools this machine can test: pip always, uv when
// it is on PATH.
func tools() map[string]bool {
	out := map[string]bool{"pip": true}
	if _, err := exec.LookPath("uv"); err == nil {
		out["uv"] = false
	}
	return out
}

func TestUnresolvableRequirementFailsWithToolsMessage(t *testing.T) {
	t.Parallel()
	want := hostVersion(t)
	needPyPI(t)
	for tool, disableUV := range tools() {
		t.Run(tool, func(t *testing.T) {
			b := &Builder{CacheDir: t.TempDir(), DisableUV: disableUV}
			s := Spec{PythonVersion: want, Pip: []string{"nonexistent-package-xyz==1.0"}}
			var log bytes.Buffer
			env, err := b.Ensure(context.Background(), s, &log)
			if err == nil {
				t.Fatalf("Ensure succeeded: %+v", env)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			// pip says "ERROR: No matching distribution found for
			// nonexistent-package-xyz==1.0"; uv says "error: No
			// solution found ..." and names the package after it.
			wantText := map[string]string{"pip": "ERROR: No matching distribution found for nonexistent-package-xyz==1.0", "uv": "error: No solution found"}[tool]
			for _, want := range []string{"pip install", wantText, "nonexistent-package-xyz"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if !strings.Contains(log.String(), "nonexistent-package-xyz") {
				t.Errorf("the tool's output is not in the log:\n%s", log.String())
			}
			key, _ := s.Key()
			if _, err := os.Lstat(filepath.Join(b.CacheDir, key)); !os.IsNotExist(err) {
				t.Errorf("environment published after a failure: %v", err)
			}
			if entries := storeEntries(t, b.CacheDir); len(entries) != 0 {
				t.Errorf("failed build left %q", entries)
			}
		})
	}
}

func TestInstallsPipRequirements(t *testing.T) {
	t.Parallel()
	hostVersion(t)
	needPyPI(t)
	for tool, disableUV := range tools() {
		t.Run(tool, func(t *testing.T) {
			b := &Builder{CacheDir: t.TempDir(), DisableUV: disableUV}
			var log bytes.Buffer
			// No Python version: the host's python3 with a tiny
			// pure-Python wheel.
			env, err := b.Ensure(context.Background(), Spec{Pip: []string{" six == 1.16.0 "}}, &log)
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			if !strings.Contains(log.String(), "with "+tool) {
				t.Errorf("log does not say it used %s:\n%s", tool, log.String())
			}
			if got := runPython(t, env, "import six; print(six.__version__)"); got != "1.16.0" {
				t.Errorf("six version %q, want 1.16.0", got)
			}
			req, err := os.ReadFile(filepath.Join(env.Dir, requirementsFile))
			if err != nil || string(req) != "six == 1.16.0\n" {
				t.Errorf("requirements file = %q, %v", req, err)
			}
		})
	}
}

func TestCancelDuringBuildLeavesNothing(t *testing.T) {
	t.Parallel()
	want := hostVersion(t)
	b := &Builder{CacheDir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel as soon as the first build command is announced.
	log := writerFunc(func(p []byte) (int, error) {
		if bytes.HasPrefix(p, []byte("$ ")) {
			cancel()
		}
		return len(p), nil
	})
	_, err := b.Ensure(ctx, Spec{PythonVersion: want}, log)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries := storeEntries(t, b.CacheDir); len(entries) != 0 {
		t.Errorf("canceled build left %q", entries)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestInterpreterChoice(t *testing.T) {
	host := hostVersion(t)
	b := &Builder{}
	ctx := context.Background()

	var log bytes.Buffer
	path, v, err := b.interpreter(ctx, "2.1", "", &log)
	if err != nil {
		t.Fatal(err)
	}
	if v != host || path == "" {
		t.Errorf("fallback = %s %s, want the host's %s", path, v, host)
	}
	if w := log.String(); !strings.Contains(w, "WARNING") || !strings.Contains(w, "Python 2.1") || !strings.Contains(w, "Python "+host) {
		t.Errorf("warning %q does not name both versions", w)
	}

	log.Reset()
	if _, v, err := b.interpreter(ctx, host, "", &log); err != nil || v != host || log.Len() != 0 {
		t.Errorf("host version: %s, %v, log %q", v, err, log.String())
	}
	// HasPython says which of the two an environment would get.
	if !b.HasPython(ctx, host) || b.HasPython(ctx, "2.1") {
		t.Errorf("HasPython: host %s %v, 2.1 %v", host, b.HasPython(ctx, host), b.HasPython(ctx, "2.1"))
	}

	// Another installed version, if this machine has one, is preferred
	// over the host's.
	for _, other := range []string{"3.8", "3.9", "3.10", "3.11", "3.12", "3.13"} {
		if other == host || len(candidates(ctx, other, "")) == 0 {
			continue
		}
		path, v, err := b.interpreter(ctx, other, "", &log)
		if err != nil {
			t.Fatal(err)
		}
		if v == other {
			if got, err := probe(ctx, path); err != nil || got != other {
				t.Errorf("%s reports %s, %v", path, got, err)
			}
			t.Logf("Python %s found at %s", other, path)
			return
		}
	}
	t.Log("no Python besides the host's is installed; only the fallback was checked")
}

func TestKeyIgnoresOrderWhitespaceAndDuplicates(t *testing.T) {
	a := Spec{PythonVersion: "3.10", Pip: []string{"numpy>=1.20", "six==1.16.0", "mlflow"}}
	b := Spec{PythonVersion: " 3.10.4", Pip: []string{"  mlflow ", "six == 1.16.0", "", "numpy >= 1.20", "mlflow", "# pinned"}}
	ka, err := a.Key()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Key()
	if err != nil {
		t.Fatal(err)
	}
	if ka != kb || len(ka) != 24 {
		t.Errorf("keys %s and %s differ", ka, kb)
	}
	for name, other := range map[string]Spec{
		"version":     {PythonVersion: "3.11", Pip: a.Pip},
		"pin":         {PythonVersion: "3.10", Pip: []string{"numpy>=1.21", "six==1.16.0", "mlflow"}},
		"extra":       {PythonVersion: "3.10", Pip: append([]string{"pandas"}, a.Pip...)},
		"conda numpy": {PythonVersion: "3.10", Pip: a.Pip, Conda: []string{"scipy"}},
	} {
		k, err := other.Key()
		if err != nil {
			t.Fatal(err)
		}
		if k == ka {
			t.Errorf("%s: changed spec has the same key", name)
		}
	}
	if _, err := (Spec{PythonVersion: "latest"}).Key(); err == nil {
		t.Error("a version without digits was accepted")
	}
}

func TestCondaDependencies(t *testing.T) {
	s := Spec{Conda: []string{
		"python=3.8",
		"pip=21.2.4",
		"conda-forge::numpy=1.21",
		"scikit-learn==0.24.2",
		"pytorch>=1.10",
		"scipy 1.7.*",
		"pandas=1.3.5=py38h8c16a72_0",
		"matplotlib",
		"cudatoolkit=11.3",
	}, Pip: []string{"numpy==1.21.*"}}
	pip, unmapped := s.Requirements()
	wantPip := []string{"matplotlib", "numpy==1.21.*", "pandas==1.3.5.*", "scikit-learn==0.24.2", "scipy==1.7.*", "torch>=1.10"}
	if !reflect.DeepEqual(pip, wantPip) {
		t.Errorf("pip = %q\nwant  %q", pip, wantPip)
	}
	if !reflect.DeepEqual(unmapped, []string{"cudatoolkit=11.3"}) {
		t.Errorf("unmapped = %q", unmapped)
	}
	if v, err := s.python(); v != "3.8" || err != nil {
		t.Errorf("python from conda = %q, %v", v, err)
	}
	if v, _ := (Spec{PythonVersion: "3.10", Conda: []string{"python=3.8"}}).python(); v != "3.10" {
		t.Errorf("PythonVersion did not win over the conda entry: %q", v)
	}
}

func TestEnviron(t *testing.T) {
	env := newEnv("/cache/.store/abc")
	got := env.Environ("/usr/bin:/bin")
	want := []string{"PATH=/cache/.store/abc/bin:/usr/bin:/bin", "VIRTUAL_ENV=/cache/.store/abc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environ = %q\nwant      %q", got, want)
	}
	if got := env.Environ(""); !reflect.DeepEqual(got, []string{"PATH=/cache/.store/abc/bin", "VIRTUAL_ENV=/cache/.store/abc"}) {
		t.Errorf("Environ(\"\") = %q", got)
	}
}

func TestLastLines(t *testing.T) {
	pipOut := "Collecting x\n  Downloading...\nERROR: Could not find a version that satisfies the requirement x==1\nERROR: No matching distribution found for x==1\n\n[notice] A new release of pip is available\n"
	if got, want := lastLines(pipOut), "ERROR: Could not find a version that satisfies the requirement x==1\nERROR: No matching distribution found for x==1"; got != want {
		t.Errorf("pip: %q", got)
	}
	uvOut := "Using Python 3.11.7 environment at: /x\nerror: No solution found when resolving dependencies\n  cause: Because x was not found in the package registry, we can conclude that your requirements are unsatisfiable.\n"
	if got, want := lastLines(uvOut), "error: No solution found when resolving dependencies\n  cause: Because x was not found in the package registry, we can conclude that your requirements are unsatisfiable."; got != want {
		t.Errorf("uv: %q", got)
	}
	other := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	if got := lastLines(other); got != "3\n4\n5\n6\n7\n8\n9\n10" {
		t.Errorf("other: %q", got)
	}
}

// TestLocalPaths: the files and folders requirement lines and the
// installers' settings name by absolute path, which a sandboxed build is
// shown, and nothing else.
func TestLocalPaths(t *testing.T) {
	dir := t.TempDir()
	wheel := filepath.Join(dir, "demo-1.0-py3-none-any.whl")
	if err := os.WriteFile(wheel, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src, links := filepath.Join(dir, "src"), filepath.Join(dir, "wheels")
	for _, d := range []string{src, links} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := localPaths([]string{
		wheel,
		"demo @ file://" + src + "#egg=demo",
		"--find-links=" + links,
		"-f " + links + "/",
		"six==1.16.0",
		"./relative/pkg",
		filepath.Join(dir, "missing.whl"),
		"https://example.com/demo-1.0.tar.gz",
	})
	want := []string{wheel, src, links, links}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("localPaths = %q, want %q", got, want)
	}
}
