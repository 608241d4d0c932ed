package sandbox_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/sandbox"
)

// TestExecRunsTheSpecFromStandardInput: Exec reads the spec as JSON,
// runs it in a sandbox of its own, in which the caller's process is not
// to be seen and its writable folder is, and passes its exit status on.
func TestExecRunsTheSpecFromStandardInput(t *testing.T) {
	newSandbox(t)
	work := t.TempDir()
	spec := sandbox.Spec{
		Argv:   []string{"/bin/sh", "-c", `echo "$GREETING" > out.txt; ls /proc/` + strconv.Itoa(os.Getpid()) + ` 2>&1 || echo "no caller"; exit 3`},
		Env:    []string{"GREETING=hello from the spec", "PATH=/usr/bin:/bin"},
		Dir:    work,
		Mounts: []sandbox.Mount{{Path: work, Writable: true}},
	}
	in, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := sandbox.Exec(bytes.NewReader(in), &out, &errb)
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, errb.String())
	}
	if code != 3 {
		t.Errorf("exit status %d, want the process's 3", code)
	}
	if !strings.Contains(out.String(), "no caller") {
		t.Errorf("the sandbox sees the caller's process %d:\n%s", os.Getpid(), out.String())
	}
	if b, err := os.ReadFile(filepath.Join(work, "out.txt")); err != nil || string(b) != "hello from the spec\n" {
		t.Errorf("out.txt: %q %v", b, err)
	}

	if _, err := sandbox.Exec(strings.NewReader(`{"argv": ["true"], "envs": []}`), &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "envs") {
		t.Errorf("a spec with an unknown field: %v, want an error naming it", err)
	}
}
