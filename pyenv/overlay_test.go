package pyenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOverlayOnABuiltEnvironment: an overlay on a built environment sees
// that environment's packages through its .pth file, puts its own first,
// and is an environment of its own (sys.prefix), so what is installed
// into it stays out of the base.
func TestOverlayOnABuiltEnvironment(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	dir := t.TempDir()
	baseDir := filepath.Join(dir, "base")
	if out, err := exec.Command("python3", "-m", "venv", "--without-pip", baseDir).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	base := newEnv(baseDir)
	in, site, err := envInterpreter(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "in_base.py"), []byte("WHERE = 'base'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ov, err := Overlay(context.Background(), filepath.Join(dir, "attempt", "venv"), base, "")
	if err != nil {
		t.Fatal(err)
	}
	if ov.Base != base || ov.PythonVersion != majorMinor(in.Version) {
		t.Fatalf("overlay %+v", ov)
	}
	ovSite := filepath.Join(ov.Dir, "lib", "python"+ov.PythonVersion, "site-packages")
	if err := os.WriteFile(filepath.Join(ovSite, "in_overlay.py"), []byte("WHERE = 'overlay'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ov.Python, "-c", "import in_base, in_overlay, sys; print(in_base.WHERE, in_overlay.WHERE, sys.prefix)")
	cmd.Env = append(ov.Environ(os.Getenv("PATH")), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlay python: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "base overlay "+ov.Dir; got != want {
		t.Errorf("overlay sees %q, want %q", got, want)
	}
	// The base does not see the overlay's package.
	if out, err := exec.Command(base.Python, "-c", "import in_overlay").CombinedOutput(); err == nil {
		t.Errorf("the base imports the overlay's package: %s", out)
	}
	env := strings.Join(ov.Environ("/usr/bin"), " ")
	if !strings.Contains(env, "PATH="+ov.BinDir+":"+base.BinDir+":/usr/bin") {
		t.Errorf("overlay's PATH: %s", env)
	}
	for _, name := range []string{"pip", "python3"} {
		if _, err := os.Stat(filepath.Join(ov.BinDir, name)); err != nil {
			t.Errorf("overlay lacks %s: %v", name, err)
		}
	}
}

// TestOverlayOnAHostVirtualEnvironment: a server run with a virtual
// environment's python3 as the host's gives steps an overlay that sees
// that environment's packages, as the host's python3 itself does.
func TestOverlayOnAHostVirtualEnvironment(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	dir := t.TempDir()
	hostDir := filepath.Join(dir, "host")
	if out, err := exec.Command("python3", "-m", "venv", "--without-pip", hostDir).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	host := newEnv(hostDir)
	_, site, err := envInterpreter(host)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "in_host_venv.py"), []byte("WHERE = 'host venv'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ov, err := Overlay(context.Background(), filepath.Join(dir, "attempt", "venv"), nil, host.Python)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ov.Python, "-c", "import in_host_venv, sys; print(in_host_venv.WHERE, sys.prefix)")
	cmd.Env = append(ov.Environ(os.Getenv("PATH")), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlay python: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "host venv "+ov.Dir; got != want {
		t.Errorf("overlay sees %q, want %q", got, want)
	}
}

// TestOverlayNamesRunInTheOverlay: an overlay on the host's Python answers
// to every name a step may call, python, python3 and pythonX.Y as the
// overlay's interpreter, pip, pip3 and pipX.Y installing into the overlay,
// which has no site-packages folder until pip makes one.
func TestOverlayNamesRunInTheOverlay(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	dir := t.TempDir()
	ov, err := Overlay(context.Background(), filepath.Join(dir, "attempt", "venv"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if ov == nil {
		t.Skip("python3 does not run")
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(ov.BinDir, name), args...)
		cmd.Env = append(ov.Environ(os.Getenv("PATH")), "HOME="+dir)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, name := range []string{"python", "python3", "python" + ov.PythonVersion} {
		if got := run(name, "-c", "import sys; print(sys.prefix)"); got != ov.Dir {
			t.Errorf("%s runs with prefix %q, want %q", name, got, ov.Dir)
		}
	}
	site := filepath.Join(ov.Dir, "lib", "python"+ov.PythonVersion, "site-packages")
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Errorf("a fresh overlay on the host's Python has %s: %v", site, err)
	}
	for i, name := range []string{"pip", "pip3", "pip" + ov.PythonVersion} {
		module := "wharf_overlay_pip" + strconv.Itoa(i)
		wheel := filepath.Join(dir, module+"-1.0-py3-none-any.whl")
		run("python", "-c", `import sys, zipfile
m, path = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(path, "w") as z:
    z.writestr(m + ".py", "VALUE = 'installed'\n")
    d = m + "-1.0.dist-info/"
    z.writestr(d + "METADATA", "Metadata-Version: 2.1\nName: " + m + "\nVersion: 1.0\n")
    z.writestr(d + "WHEEL", "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(d + "RECORD", "")`, module, wheel)
		run(name, "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q", wheel)
		if got := run("python3", "-c", "import "+module+"; print("+module+".VALUE, "+module+".__file__)"); got != "installed "+filepath.Join(site, module+".py") {
			t.Errorf("after %s install the overlay sees %q", name, got)
		}
		if out, err := exec.Command("python3", "-c", "import "+module).CombinedOutput(); err == nil {
			t.Errorf("the host's python3 imports what %s installed into the overlay: %s", name, out)
		}
	}
}

// BenchmarkOverlay makes overlays on the host's python3, as every step of
// an image-only environment gets one; its allocations and the files it
// writes, not its time, are what a change to Overlay is judged by here
// (bench/pipeline.sh measures the time a step costs).
func BenchmarkOverlay(b *testing.B) {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("no python3 on PATH")
	}
	dir := b.TempDir()
	ctx := context.Background()
	if _, err := Overlay(ctx, filepath.Join(dir, "warm"), nil, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		attempt := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(attempt, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Overlay(ctx, filepath.Join(attempt, "venv"), nil, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOverlayOnAKnownInterpreter: an overlay on a Python whose facts were
// told (KnowInterpreter) is made without starting it: under a name that
// does not run, which Overlay would otherwise answer with no overlay, it
// is the told interpreter's, and installs into itself.
func TestOverlayOnAKnownInterpreter(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	dir := t.TempDir()
	real, err := hostInterpreter(context.Background(), "python3")
	if err != nil {
		t.Fatal(err)
	}
	name := "wharf-test-no-such-python"
	if ov, err := Overlay(context.Background(), filepath.Join(dir, "unknown"), nil, name); err != nil || ov != nil {
		t.Fatalf("overlay on a Python that does not run: %v, %v; want none and no error", ov, err)
	}
	if err := KnowInterpreter(name, *real); err != nil {
		t.Fatal(err)
	}
	ov, err := Overlay(context.Background(), filepath.Join(dir, "known"), nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if ov == nil {
		t.Fatal("no overlay on a known interpreter")
	}
	cmd := exec.Command(ov.Python, "-c", "import os, sys; print(os.path.realpath(sys.executable)); print(sys.prefix)")
	cmd.Env = append(ov.Environ(os.Getenv("PATH")), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlay python: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), real.Executable+"\n"+ov.Dir; got != want {
		t.Errorf("overlay python is %q, want %q", got, want)
	}
}

// TestKnowInterpreterRefusesHalfFacts: facts that could not have come
// from a Python (a relative path, a version without its patch number, a
// relative package folder) are refused, not made overlays of.
func TestKnowInterpreterRefusesHalfFacts(t *testing.T) {
	for _, in := range []Interpreter{
		{Executable: "bin/python3", Version: "3.11.7"},
		{Executable: "/usr/bin/python3", Version: "3.11"},
		{Executable: "/usr/bin/python3", Version: ""},
		{Executable: "/usr/bin/python3", Version: "3.11.7", VenvSite: []string{"lib/site-packages"}},
	} {
		if err := KnowInterpreter("python-half-known", in); err == nil {
			t.Errorf("KnowInterpreter(%+v) took it", in)
		}
	}
	if _, ok := hostInterpreters.Load("python-half-known"); ok {
		t.Error("refused facts were kept")
	}
}

// TestApplyTo: an environment put in a process's whole environment comes
// first on its PATH and names itself VIRTUAL_ENV, replacing the entries
// it had; no environment leaves it as it was.
func TestApplyTo(t *testing.T) {
	environ := []string{"HOME=/h", "PATH=/usr/bin:/bin", "VIRTUAL_ENV=/old", "A=b=c"}
	got := newEnv("/step/venv").ApplyTo(environ)
	want := []string{"HOME=/h", "A=b=c", "PATH=/step/venv/bin:/usr/bin:/bin", "VIRTUAL_ENV=/step/venv"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ApplyTo = %q, want %q", got, want)
	}
	if got := (*Env)(nil).ApplyTo(environ); strings.Join(got, "\n") != "HOME=/h\nVIRTUAL_ENV=/old\nA=b=c\nPATH=/usr/bin:/bin" {
		t.Errorf("nil ApplyTo = %q", got)
	}
	if got := newEnv("/v").ApplyTo([]string{"HOME=/h"}); strings.Join(got, "\n") != "HOME=/h\nPATH=/v/bin\nVIRTUAL_ENV=/v" {
		t.Errorf("ApplyTo without a PATH = %q", got)
	}
}
