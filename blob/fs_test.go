package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
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

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

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

// streamOf returns a deterministic pseudo-random stream of n bytes; two calls
// with the same seed give the same bytes, so big content never has to be
// held in memory to be compared.
func streamOf(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
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

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	for _, content := range [][]byte{
		{},
		[]byte("hello, wharf"),
	} {
		digest, size, err := s.Put(ctx, bytes.NewReader(content))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if want := digestOf(content); digest != want {
			t.Errorf("digest %s, want %s", digest, want)
		}
		if size != int64(len(content)) {
			t.Errorf("size %d, want %d", size, len(content))
		}

		rc, n, err := s.Open(ctx, digest)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, content) || n != int64(len(content)) {
			t.Errorf("read %q (size %d), want %q", got, n, content)
		}

		if n, err := s.Stat(ctx, digest); err != nil || n != size {
			t.Errorf("Stat = %d, %v; want %d", n, err, size)
		}
		if err := s.Verify(ctx, digest); err != nil {
			t.Errorf("Verify: %v", err)
		}

		info, err := os.Stat(blobPath(root, digest))
		if err != nil {
			t.Fatalf("blob not at expected path: %v", err)
		}
		if perm := info.Mode().Perm(); perm != 0o444 {
			t.Errorf("blob mode %v, want read-only 0444", perm)
		}
	}
	assertNoTemps(t, root)
}

func TestRoundTripLargeStreamed(t *testing.T) {
	const size = 50 << 20
	ctx := context.Background()
	s, root := newStore(t)

	h := sha256.New()
	if _, err := io.Copy(h, streamOf(7, size)); err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + hex.EncodeToString(h.Sum(nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	digest, n, err := s.Put(ctx, streamOf(7, size))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if digest != want || n != size {
		t.Fatalf("Put = %s, %d; want %s, %d", digest, n, want, size)
	}
	// Streaming means allocation stays a small constant, far below the
	// content size.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Put allocated %d bytes for a %d-byte blob; it should stream", alloc, size)
	}

	rc, n, err := s.Open(ctx, digest)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	if n != size {
		t.Errorf("Open size %d, want %d", n, size)
	}
	h.Reset()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read: %v", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("read back %s, want %s", got, want)
	}
	assertNoTemps(t, root)
}

func TestPutDedupes(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	content := []byte("same bytes twice")
	d1, _, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("digests differ: %s, %s", d1, d2)
	}
	if files := listFiles(t, filepath.Join(root, "sha256")); len(files) != 1 {
		t.Errorf("want one stored file, got %v", files)
	}
	assertNoTemps(t, root)
}

func TestConcurrentPutSameContent(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	const writers = 8
	const size = 4 << 20
	digests := make([]string, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			digests[i], _, errs[i] = s.Put(ctx, streamOf(3, size))
		})
	}
	wg.Wait()
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if digests[i] != digests[0] {
			t.Fatalf("writer %d got %s, writer 0 got %s", i, digests[i], digests[0])
		}
	}
	if files := listFiles(t, filepath.Join(root, "sha256")); len(files) != 1 {
		t.Errorf("want one stored file, got %v", files)
	}
	if err := s.Verify(ctx, digests[0]); err != nil {
		t.Errorf("Verify: %v", err)
	}
	assertNoTemps(t, root)
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

func TestCorruptBlobDetected(t *testing.T) {
	for name, edit := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-1] },
		"appended":     func(b []byte) []byte { return append(b, 'x') },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, root := newStore(t)
			digest, _, err := s.Put(ctx, streamOf(9, 100<<10))
			if err != nil {
				t.Fatal(err)
			}
			corruptFile(t, blobPath(root, digest), edit)

			rc, _, err := s.Open(ctx, digest)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err == nil {
				t.Fatal("reading a corrupt blob to the end succeeded")
			}
			assertCode(t, err, wharf.EINTERNAL)
			if msg := wharf.ErrorMessage(err); !strings.Contains(msg, "corrupt") || !strings.Contains(msg, digest) {
				t.Errorf("message %q should say %s is corrupt", msg, digest)
			}

			err = s.Verify(ctx, digest)
			if err == nil {
				t.Fatal("Verify passed a corrupt blob")
			}
			assertCode(t, err, wharf.EINTERNAL)
			if !strings.Contains(wharf.ErrorMessage(err), "corrupt") {
				t.Errorf("Verify error %v should say corrupt", err)
			}
		})
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	digest, _, err := s.Put(ctx, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	corruptFile(t, blobPath(root, digest), func(b []byte) []byte { b[0] = 'x'; return b })
	rc, _, err := s.Open(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	io.Copy(io.Discard, rc)
	// A caller that reads again must not be handed a clean io.EOF.
	if _, err := rc.Read(make([]byte, 8)); err == io.EOF || wharf.ErrorCode(err) != wharf.EINTERNAL {
		t.Errorf("second read after corruption: %v", err)
	}
}

func TestBadDigests(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// Store something so a traversal that resolved would have a target.
	good, _, err := s.Put(ctx, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	goodHex := strings.TrimPrefix(good, "sha256:")
	bad := []string{
		"",
		"sha256:",
		"sha256:../../etc/passwd",
		"sha256:../sha256/" + goodHex[:2] + "/" + goodHex[2:],
		"sha256:" + goodHex[:2] + "/" + goodHex[3:],
		"sha256:" + strings.Repeat(".", 64),
		"sha256:" + strings.Repeat("/", 64),
		"sha256:" + goodHex[:62] + "/.",
		"sha256:" + goodHex[:63] + "\x00",
		"sha256:" + strings.ToUpper(goodHex),
		"SHA256:" + goodHex,
		"sha512:" + goodHex,
		"sha256:" + goodHex[:63],
		"sha256:" + goodHex + "0",
		" sha256:" + goodHex[1:],
		"sha256:" + goodHex[:63] + "g",
		goodHex,
		"sha256:" + strings.Repeat("0", 10000),
	}
	for _, d := range bad {
		if _, _, err := s.Open(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Open(%q): %v, want EINVALID", d, err)
		}
		if _, err := s.Stat(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Stat(%q): %v, want EINVALID", d, err)
		}
		if err := s.Verify(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Verify(%q): %v, want EINVALID", d, err)
		}
		if err := s.Delete(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Delete(%q): %v, want EINVALID", d, err)
		}
	}
	if _, err := s.Stat(ctx, good); err != nil {
		t.Errorf("good blob damaged by bad-digest calls: %v", err)
	}
}

func TestMissingBlob(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	missing := digestOf([]byte("never stored"))
	if _, _, err := s.Open(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Open: %v, want ENOTFOUND", err)
	}
	if _, err := s.Stat(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Stat: %v, want ENOTFOUND", err)
	}
	if err := s.Delete(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Delete: %v, want ENOTFOUND", err)
	}
	if err := s.Verify(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Verify: %v, want ENOTFOUND", err)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	digest, _, err := s.Put(ctx, strings.NewReader("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, digest); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, digest); !wharf.IsNotFound(err) {
		t.Errorf("Stat after Delete: %v, want ENOTFOUND", err)
	}
	if err := s.Delete(ctx, digest); !wharf.IsNotFound(err) {
		t.Errorf("second Delete: %v, want ENOTFOUND", err)
	}
	if files := listFiles(t, filepath.Join(root, "sha256")); len(files) != 0 {
		t.Errorf("files left after Delete: %v", files)
	}
	// Content can come back after deletion.
	if _, _, err := s.Put(ctx, strings.NewReader("short-lived")); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
	if err := s.Verify(ctx, digest); err != nil {
		t.Errorf("Verify after re-Put: %v", err)
	}
}

// failingReader yields some data and then an error, like a dropped upload.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestPutReaderFailsMidway(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	boom := errors.New("connection reset")
	_, _, err := s.Put(ctx, &failingReader{r: streamOf(1, 1<<20), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("Put: %v, want it to wrap %v", err, boom)
	}
	if files := listFiles(t, filepath.Join(root, "sha256")); len(files) != 0 {
		t.Errorf("partial blob published: %v", files)
	}
	assertNoTemps(t, root)
}

// cancelingReader cancels its context after the first read, as a client
// hanging up mid-upload would.
type cancelingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

func TestPutCanceledMidway(t *testing.T) {
	s, root := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := s.Put(ctx, &cancelingReader{r: streamOf(2, 4<<20), cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v, want context.Canceled", err)
	}
	if files := listFiles(t, filepath.Join(root, "sha256")); len(files) != 0 {
		t.Errorf("blob published despite cancellation: %v", files)
	}
	assertNoTemps(t, root)
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
