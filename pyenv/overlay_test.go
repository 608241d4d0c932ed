package pyenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
