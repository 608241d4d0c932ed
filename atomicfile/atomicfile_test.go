package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wharfml/wharf/atomicfile"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "creds.json")
	if err := atomicfile.WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	// A failed write leaves the old content in place.
	if err := atomicfile.WriteFile(filepath.Join(p, "not-a-dir", "x"), []byte("z"), 0o600); err == nil {
		t.Fatal("write under a file succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("old content damaged: %q", b)
	}
}
