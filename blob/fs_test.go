package blob_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/blob/blobtest"
)

func newStore(t *testing.T) (*blob.FS, string) {
	t.Helper()
	root := t.TempDir()
	s, err := blob.NewFS(root)
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	return s, root
}

var (
	digestOf = blobtest.DigestOf
	streamOf = blobtest.StreamOf
)

// blobPath spells out the on-disk layout, so a change to it fails a test
// instead of silently orphaning existing stores.
func blobPath(root, digest string) string {
	sum := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(root, "sha256", sum[:2], sum[2:])
}

// listFiles returns the regular files under dir, relative to it.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return files
}

func assertNoTemps(t *testing.T, root string) {
	t.Helper()
	if files := listFiles(t, filepath.Join(root, "tmp")); len(files) != 0 {
		t.Errorf("temp files left behind: %v", files)
	}
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := wharf.ErrorCode(err); got != code {
		t.Errorf("error %v: code %q, want %q", err, got, code)
	}
}

// corruptFile rewrites a stored blob the way disk damage or a careless
// operator would, getting past its read-only mode first.
func corruptFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestConformance runs the suite every BlobStore passes on the local
// folder.
func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Backend {
		s, root := newStore(t)
		return blobtest.Backend{
			Store: s,
			Rewrite: func(t *testing.T, digest string, edit func([]byte) []byte) {
				corruptFile(t, blobPath(root, digest), edit)
			},
			Objects: func(t *testing.T) (blobs, temps []string) {
				for _, f := range listFiles(t, filepath.Join(root, "sha256")) {
					blobs = append(blobs, "sha256:"+strings.ReplaceAll(f, string(filepath.Separator), ""))
				}
				return blobs, listFiles(t, filepath.Join(root, "tmp"))
			},
			LargeSize:   20 << 20,
			StreamSize:  50 << 20,
			MaxPutAlloc: 8 << 20,
		}
	})
}

// TestBlobLayout: a blob lives at sha256/<2 hex>/<62 hex>, read-only, so
// that a change to the layout fails here instead of silently orphaning
// existing stores.
func TestBlobLayout(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	digest, _, err := s.Put(ctx, strings.NewReader("hello, wharf"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(blobPath(root, digest))
	if err != nil {
		t.Fatalf("blob not at expected path: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o444 {
		t.Errorf("blob mode %v, want read-only 0444", perm)
	}
	if err := s.Verify(ctx, digest); err != nil {
		t.Errorf("Verify: %v", err)
	}
	corruptFile(t, blobPath(root, digest), func(b []byte) []byte { b[0] ^= 1; return b })
	if err := s.Verify(ctx, digest); wharf.ErrorCode(err) != wharf.EINTERNAL {
		t.Errorf("Verify of a corrupt blob: %v, want EINTERNAL", err)
	}
	assertNoTemps(t, root)
}

func TestNewFSCreatesLayout(t *testing.T) {
	_, root := newStore(t)
	for _, dir := range []string{"sha256", "tmp"} {
		info, err := os.Stat(filepath.Join(root, dir))
		if err != nil || !info.IsDir() {
			t.Errorf("%s: want a folder, got %v, %v", dir, info, err)
		}
	}
}

func TestNewFSRemovesStaleTemps(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, "put-stale")
	fresh := filepath.Join(tmp, "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	if _, err := blob.NewFS(root); err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file survived: %v", err)
	}
	// A fresh one may belong to a Put still running in another process.
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}
}

// hashFile returns the digest of a file's content, streaming it.
func hashFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want no file, got %v", path, err)
	}
}

func TestCopyFile(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	dir := t.TempDir()
	// The large size spans several of CopyFile's 32 MiB kernel-copy chunks
	// and ends part-way through one.
	for _, size := range []int64{0, 1, 100 << 10, 2*32<<20 + 12345} {
		digest, _, err := s.Put(ctx, streamOf(5, size))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "copy-"+strconv.FormatInt(size, 10))
		if err := s.CopyFile(ctx, digest, path, 0o640); err != nil {
			t.Fatalf("CopyFile of %d bytes: %v", size, err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != size {
			t.Errorf("copy is %d bytes, want %d", info.Size(), size)
		}
		if perm := info.Mode().Perm(); perm&^0o640 != 0 {
			t.Errorf("copy mode %v, want at most 0640", perm)
		}
		if got := hashFile(t, path); got != digest {
			t.Errorf("copy of %d bytes hashes to %s, want %s", size, got, digest)
		}
	}
	// The store itself is untouched.
	assertNoTemps(t, root)
}

func TestCopyFileCorruptBlob(t *testing.T) {
	for name, edit := range map[string]func([]byte) []byte{
		// Same size, so only the hash can tell.
		"flipped byte": func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-1] },
		"appended":     func(b []byte) []byte { return append(b, 'x') },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, root := newStore(t)
			digest, _, err := s.Put(ctx, streamOf(9, 3<<20))
			if err != nil {
				t.Fatal(err)
			}
			corruptFile(t, blobPath(root, digest), edit)

			path := filepath.Join(t.TempDir(), "data.csv")
			err = s.CopyFile(ctx, digest, path, 0o600)
			if err == nil {
				t.Fatal("CopyFile of a corrupt blob succeeded")
			}
			assertCode(t, err, wharf.EINTERNAL)
			if msg := wharf.ErrorMessage(err); !strings.Contains(msg, "corrupt") || !strings.Contains(msg, digest) {
				t.Errorf("message %q should say %s is corrupt", msg, digest)
			}
			assertNoFile(t, path)
		})
	}
}

func TestCopyFileMissingOrInvalidDigest(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	dir := t.TempDir()

	path := filepath.Join(dir, "missing")
	if err := s.CopyFile(ctx, digestOf([]byte("never stored")), path, 0o600); !wharf.IsNotFound(err) {
		t.Errorf("CopyFile of a missing blob: %v, want ENOTFOUND", err)
	}
	assertNoFile(t, path)

	path = filepath.Join(dir, "invalid")
	if err := s.CopyFile(ctx, "sha256:../../etc/passwd", path, 0o600); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("CopyFile of an invalid digest: %v, want EINVALID", err)
	}
	assertNoFile(t, path)
}

func TestCopyFileCanceled(t *testing.T) {
	s, _ := newStore(t)
	digest, _, err := s.Put(context.Background(), streamOf(4, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "data")
	if err := s.CopyFile(ctx, digest, path, 0o600); !errors.Is(err, context.Canceled) {
		t.Errorf("CopyFile with a canceled context: %v, want context.Canceled", err)
	}
	assertNoFile(t, path)
}

func TestCopyFileLeavesExistingFileAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	digest, _, err := s.Put(ctx, strings.NewReader("new content"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte("already here"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyFile(ctx, digest, path, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CopyFile onto an existing file: %v, want it to wrap fs.ErrExist", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "already here" {
		t.Errorf("existing file now %q, %v; want it unchanged", b, err)
	}
}

func TestLinkFile(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	digest, _, err := s.Put(ctx, strings.NewReader("stored once"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "data")
	if err := s.LinkFile(ctx, digest, path); err != nil {
		t.Fatal(err)
	}
	a, errA := os.Stat(path)
	b, errB := os.Stat(blobPath(root, digest))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Fatalf("the link is not the stored file: %v %v", errA, errB)
	}
	if got, _ := os.ReadFile(path); string(got) != "stored once" {
		t.Errorf("link reads %q", got)
	}
	if a.Mode().Perm()&0o222 != 0 {
		t.Errorf("the link is writable: %v", a.Mode())
	}
	// Removing the link leaves the blob.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, digest); err != nil {
		t.Errorf("Verify after the link was removed: %v", err)
	}

	missing := filepath.Join(dir, "missing")
	if err := s.LinkFile(ctx, digestOf([]byte("never stored")), missing); !wharf.IsNotFound(err) {
		t.Errorf("LinkFile of a missing blob: %v, want ENOTFOUND", err)
	}
	assertNoFile(t, missing)
	if err := os.WriteFile(path, []byte("already here"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkFile(ctx, digest, path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("LinkFile onto an existing file: %v, want it to wrap fs.ErrExist", err)
	}
}
