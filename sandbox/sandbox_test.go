package sandbox_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/sandbox"
)

// newSandbox builds a real sandbox or skips where this machine cannot.
func newSandbox(t *testing.T, hidden ...string) *sandbox.Sandbox {
	t.Helper()
	s, err := sandbox.New(sandbox.Options{Hidden: hidden})
	if errors.Is(err, sandbox.ErrUnavailable) {
		if os.Getenv("CI") != "" {
			t.Fatalf("no sandbox under CI (scripts/test installs bubblewrap): %v", err)
		}
		t.Skipf("no sandbox on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a shell script in the sandbox and returns its output and error.
func run(t *testing.T, s *sandbox.Sandbox, spec sandbox.Spec, script string) (string, error) {
	t.Helper()
	spec.Argv = []string{"/bin/sh", "-c", script}
	cmd, err := s.Command(spec)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSandboxSeesOnlyItsMounts(t *testing.T) {
	data := t.TempDir()
	secret := filepath.Join(data, "master.key")
	if err := os.WriteFile(secret, []byte("server secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(data, "jobs", "ws", "job1", "code")
	other := filepath.Join(data, "jobs", "ws", "job2", "code")
	for _, d := range []string{work, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "model.pkl"), []byte("other job"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t, data)
	if err := s.Own(work); err != nil {
		t.Fatal(err)
	}
	spec := sandbox.Spec{Env: []string{"PATH=/usr/bin:/bin"}, Dir: work, Mounts: []sandbox.Mount{{Path: work, Writable: true}}}

	out, err := run(t, s, spec, "echo made > made.txt && pwd")
	if err != nil {
		t.Fatalf("the step could not write its own folder: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != work {
		t.Errorf("working directory %q, want %q", strings.TrimSpace(out), work)
	}
	if b, err := os.ReadFile(filepath.Join(work, "made.txt")); err != nil || string(b) != "made\n" {
		t.Errorf("file written in the sandbox: %q, %v", b, err)
	}
	for _, p := range []string{secret, filepath.Join(other, "model.pkl")} {
		if out, err := run(t, s, spec, "cat "+p); err == nil {
			t.Errorf("the sandbox read %s:\n%s", p, out)
		}
	}
	// The folders above a mount exist inside, holding only the way down.
	if out, err := run(t, s, spec, "ls -A "+data+" "+filepath.Join(data, "jobs", "ws")); err != nil || strings.Fields(out)[1] != "jobs" ||
		strings.Contains(out, "master.key") || strings.Contains(out, "job2") {
		t.Errorf("the data folder as the sandbox sees it: %v\n%s", err, out)
	}
	// The server's processes are not visible: the sandbox has its own PID
	// namespace, with the step's processes only.
	out, err = run(t, s, spec, "cat /proc/"+strconv.Itoa(os.Getpid())+"/environ; ls /proc | grep -c '^[0-9]'")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(lastLine(out))); n == 0 || n > 4 || strings.Contains(out, "PATH=") {
		t.Errorf("the sandbox sees the server's processes:\n%s", out)
	}
}

func TestSandboxRunsAsStepUser(t *testing.T) {
	s := newSandbox(t)
	out, err := run(t, s, sandbox.Spec{Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}, "id -u; id -g; grep CapEff /proc/self/status")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	if lines[0] != strconv.Itoa(s.UID) || lines[1] != strconv.Itoa(s.GID) {
		t.Errorf("ran as %s:%s, want %d:%d", lines[0], lines[1], s.UID, s.GID)
	}
	if os.Geteuid() == 0 && (lines[0] == "0" || !s.Privileged()) {
		t.Errorf("a root server's sandbox runs user code as uid %s", lines[0])
	}
	if !strings.HasSuffix(lines[2], "0000000000000000") {
		t.Errorf("sandboxed process keeps capabilities: %s", lines[2])
	}
}

func TestSandboxEnvironmentIsExactAndOffTheCommandLine(t *testing.T) {
	s := newSandbox(t)
	value := `it's "quoted" $HOME ; rm -rf / ` + "\nsecond line"
	spec := sandbox.Spec{Env: []string{"PATH=/usr/bin:/bin", "MLFLOW_TRACKING_TOKEN=" + value}, Dir: "/"}
	out, err := run(t, s, spec, `printf %s "$MLFLOW_TRACKING_TOKEN"; echo; env | grep -c . ; cat /proc/1/cmdline /proc/self/cmdline | tr '\0' ' '`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(out, value+"\n") {
		t.Errorf("variable arrived as:\n%s", out)
	}
	rest := strings.TrimPrefix(out, value+"\n")
	if strings.Contains(rest, "quoted") {
		t.Errorf("the variable's value is on a command line:\n%s", rest)
	}

	cmd, err := s.Command(sandbox.Spec{Argv: []string{"true"}, Env: []string{"LD_PRELOAD=/tmp/evil.so"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range cmd.Env {
		if strings.HasPrefix(kv, "LD_") {
			t.Errorf("bwrap itself gets the step's %s", kv)
		}
	}
	if _, err := s.Command(sandbox.Spec{Argv: []string{"true"}, Env: []string{"BAD-NAME=1"}}); err == nil || !strings.Contains(err.Error(), "BAD-NAME") {
		t.Errorf("invalid variable name: %v", err)
	}
}

func TestOwnLeavesHardLinksAlone(t *testing.T) {
	s := newSandbox(t)
	if !s.Privileged() {
		t.Skip("the server is not root: sandboxes run as its own user and nothing is handed over")
	}
	dir := t.TempDir()
	blob := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blob, []byte("stored"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(blob, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "copied"), []byte("copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Own(dir); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) int {
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return int(statUID(info))
	}
	if owner(filepath.Join(dir, "copied")) != s.UID || owner(dir) != s.UID {
		t.Error("the copy and folder were not handed to the step user")
	}
	if owner(blob) != os.Getuid() {
		t.Error("a hard link into the blob store was handed to the step user")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
