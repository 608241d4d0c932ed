package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWarmDirIsCleanedOfDeadServers: the folder of zygote sockets is in
// the data folder when the path leaves room for socket names, emptied of
// a killed server's sockets; otherwise it is in /tmp with this process's
// pid, and folders of servers that are gone are removed.
func TestWarmDirIsCleanedOfDeadServers(t *testing.T) {
	short, err := os.MkdirTemp("/tmp", "wd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	stale := filepath.Join(short, "warm", "z-0000000000000000.sock")
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := makeWarmDir(short)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(short, "warm") {
		t.Errorf("warm folder %s, want it in the data folder", dir)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a dead server's socket is still there: %v", err)
	}

	// A server that is gone: a process that has exited.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	gone, err := os.MkdirTemp("/tmp", "wharf-warm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(gone)
	if err := os.WriteFile(filepath.Join(gone, "pid"), []byte(strconv.Itoa(done.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 80))
	dir, err = makeWarmDir(long)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if !strings.HasPrefix(dir, "/tmp/wharf-warm-") {
		t.Errorf("warm folder %s for a long data folder, want one in /tmp", dir)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pid")); err != nil || string(b) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file %q (%v)", b, err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the folder of a server that is gone is still there: %v", err)
	}
	// A live server's folder (this process's) stays.
	again, err := makeWarmDir(long)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(again)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("a running server's folder was removed: %v", err)
	}
}
