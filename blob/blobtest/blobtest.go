// Package blobtest is the conformance suite every wharf.BlobStore passes:
// the local folder, Azure Blob Storage and S3. It checks the contract in
// wharf.BlobStore's documentation (digests, streaming, deduplication,
// corruption found on read, nothing partial published, errors' codes) from
// outside, with hooks that let it look at and damage what a store holds.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wharfml/wharf"
)

// Backend is a store under test and the hooks the suite needs behind its
// interface.
type Backend struct {
	Store wharf.BlobStore
	// Rewrite replaces a stored blob's bytes with edit's result, as disk
	// damage or a careless operator would.
	Rewrite func(t *testing.T, digest string, edit func([]byte) []byte)
	// Objects lists what the store holds: its blobs' digests and any
	// temporary objects of uploads.
	Objects func(t *testing.T) (blobs, temps []string)
	// LargeSize is the size of the blob streamed through Put and Open:
	// several of the store's upload parts, so that multipart uploads
	// are exercised.
	LargeSize int64
	// StreamSize is the size of the blob whose Put may allocate at most
	// MaxPutAlloc: well above that bound, which shows that Put streams.
	StreamSize  int64
	MaxPutAlloc uint64
}

// Run runs the suite, each test on a fresh backend from open.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	tests := []struct {
		name string
		test func(t *testing.T, b Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripLargeStreamed", testRoundTripLargeStreamed},
		{"PutDedupes", testPutDedupes},
		{"ConcurrentPutSameContent", testConcurrentPutSameContent},
		{"CorruptBlobDetected", testCorruptBlobDetected},
		{"ReaderErrorIsSticky", testReaderErrorIsSticky},
		{"BadDigests", testBadDigests},
		{"MissingBlob", testMissingBlob},
		{"Delete", testDelete},
		{"PutReaderFailsMidway", testPutReaderFailsMidway},
		{"PutCanceledMidway", testPutCanceledMidway},
		{"PutFile", testPutFile},
		{"CopyFile", testCopyFile},
		{"CopyFileDamaged", testCopyFileDamaged},
		{"CopyFileCanceledMidway", testCopyFileCanceledMidway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// DigestOf is the digest of b.
func DigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// StreamOf returns a deterministic pseudo-random stream of n bytes; two
// calls with the same seed give the same bytes, so big content never has to
// be held in memory to be compared.
func StreamOf(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := wharf.ErrorCode(err); got != code {
		t.Errorf("error %v: code %q, want %q", err, got, code)
	}
}

// readAll reads a blob to the end through Open, which verifies it.
func readAll(ctx context.Context, s wharf.BlobStore, digest string) ([]byte, int64, error) {
	rc, n, err := s.Open(ctx, digest)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, n, err
}

func assertStored(t *testing.T, b Backend, want ...string) {
	t.Helper()
	blobs, temps := b.Objects(t)
	if len(temps) != 0 {
		t.Errorf("temporary objects left behind: %v", temps)
	}
	if strings.Join(blobs, " ") != strings.Join(want, " ") {
		t.Errorf("stored blobs %v, want %v", blobs, want)
	}
}

func testRoundTrip(t *testing.T, b Backend) {
	ctx := context.Background()
	var digests []string
	for _, content := range [][]byte{{}, []byte("hello, wharf")} {
		digest, size, err := b.Store.Put(ctx, bytes.NewReader(content))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if want := DigestOf(content); digest != want {
			t.Errorf("digest %s, want %s", digest, want)
		}
		if size != int64(len(content)) {
			t.Errorf("size %d, want %d", size, len(content))
		}
		got, n, err := readAll(ctx, b.Store, digest)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, content) || n != int64(len(content)) {
			t.Errorf("read %q (size %d), want %q", got, n, content)
		}
		if n, err := b.Store.Stat(ctx, digest); err != nil || n != size {
			t.Errorf("Stat = %d, %v; want %d", n, err, size)
		}
		digests = append(digests, digest)
	}
	if digests[0] > digests[1] {
		digests[0], digests[1] = digests[1], digests[0]
	}
	assertStored(t, b, digests...)
}

func testRoundTripLargeStreamed(t *testing.T, b Backend) {
	size := b.StreamSize
	ctx := context.Background()
	h := sha256.New()
	if _, err := io.Copy(h, StreamOf(7, size)); err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + hex.EncodeToString(h.Sum(nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	digest, n, err := b.Store.Put(ctx, StreamOf(7, size))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if digest != want || n != size {
		t.Fatalf("Put = %s, %d; want %s, %d", digest, n, want, size)
	}
	// Streaming means allocation stays bounded, well below the size.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > b.MaxPutAlloc {
		t.Errorf("Put allocated %d bytes for a %d-byte blob (at most %d): it should stream", alloc, size, b.MaxPutAlloc)
	}
	rc, n, err := b.Store.Open(ctx, digest)
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
	assertStored(t, b, digest)
}

func testPutDedupes(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, size := range []int64{100, b.LargeSize} {
		d1, _, err := b.Store.Put(ctx, StreamOf(4, size))
		if err != nil {
			t.Fatal(err)
		}
		d2, _, err := b.Store.Put(ctx, StreamOf(4, size))
		if err != nil {
			t.Fatal(err)
		}
		if d1 != d2 {
			t.Errorf("digests differ: %s, %s", d1, d2)
		}
		assertStored(t, b, d1)
		if err := b.Store.Delete(ctx, d1); err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentPutSameContent(t *testing.T, b Backend) {
	ctx := context.Background()
	const writers = 6
	for _, size := range []int64{4 << 10, b.LargeSize / 2} {
		digests := make([]string, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() { digests[i], _, errs[i] = b.Store.Put(ctx, StreamOf(3, size)) })
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
		if _, _, err := readAll(ctx, b.Store, digests[0]); err != nil {
			t.Errorf("read back: %v", err)
		}
		assertStored(t, b, digests[0])
		if err := b.Store.Delete(ctx, digests[0]); err != nil {
			t.Fatal(err)
		}
	}
}

func testCorruptBlobDetected(t *testing.T, b Backend) {
	ctx := context.Background()
	for name, edit := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-1] },
		"appended":     func(b []byte) []byte { return append(b, 'x') },
	} {
		t.Run(name, func(t *testing.T) {
			digest, _, err := b.Store.Put(ctx, StreamOf(9, 100<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Store.Delete(ctx, digest)
			b.Rewrite(t, digest, edit)
			_, _, err = readAll(ctx, b.Store, digest)
			if err == nil {
				t.Fatal("reading a corrupt blob to the end succeeded")
			}
			assertCode(t, err, wharf.EINTERNAL)
			if msg := wharf.ErrorMessage(err); !strings.Contains(msg, "corrupt") || !strings.Contains(msg, digest) {
				t.Errorf("message %q should say %s is corrupt", msg, digest)
			}
		})
	}
}

func testReaderErrorIsSticky(t *testing.T, b Backend) {
	ctx := context.Background()
	digest, _, err := b.Store.Put(ctx, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	b.Rewrite(t, digest, func(b []byte) []byte { b[0] = 'x'; return b })
	rc, _, err := b.Store.Open(ctx, digest)
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

func testBadDigests(t *testing.T, b Backend) {
	ctx := context.Background()
	// Store something so a traversal that resolved would have a target.
	good, _, err := b.Store.Put(ctx, strings.NewReader("x"))
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
		if _, _, err := b.Store.Open(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Open(%q): %v, want EINVALID", d, err)
		}
		if _, err := b.Store.Stat(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Stat(%q): %v, want EINVALID", d, err)
		}
		if err := b.Store.Delete(ctx, d); wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("Delete(%q): %v, want EINVALID", d, err)
		}
	}
	if _, err := b.Store.Stat(ctx, good); err != nil {
		t.Errorf("good blob damaged by bad-digest calls: %v", err)
	}
	assertStored(t, b, good)
}

func testMissingBlob(t *testing.T, b Backend) {
	ctx := context.Background()
	missing := DigestOf([]byte("never stored"))
	if _, _, err := b.Store.Open(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Open: %v, want ENOTFOUND", err)
	}
	if _, err := b.Store.Stat(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Stat: %v, want ENOTFOUND", err)
	}
	if err := b.Store.Delete(ctx, missing); !wharf.IsNotFound(err) {
		t.Errorf("Delete: %v, want ENOTFOUND", err)
	}
}

func testDelete(t *testing.T, b Backend) {
	ctx := context.Background()
	digest, _, err := b.Store.Put(ctx, strings.NewReader("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Delete(ctx, digest); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Store.Stat(ctx, digest); !wharf.IsNotFound(err) {
		t.Errorf("Stat after Delete: %v, want ENOTFOUND", err)
	}
	if err := b.Store.Delete(ctx, digest); !wharf.IsNotFound(err) {
		t.Errorf("second Delete: %v, want ENOTFOUND", err)
	}
	assertStored(t, b)
	// Content can come back after deletion.
	if _, _, err := b.Store.Put(ctx, strings.NewReader("short-lived")); err != nil {
		t.Fatalf("Put after Delete: %v", err)
	}
	if got, _, err := readAll(ctx, b.Store, digest); err != nil || string(got) != "short-lived" {
		t.Errorf("read after re-Put: %q, %v", got, err)
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

func testPutReaderFailsMidway(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, size := range []int64{1 << 20, b.LargeSize} {
		boom := errors.New("connection reset")
		_, _, err := b.Store.Put(ctx, &failingReader{r: StreamOf(1, size), err: boom})
		if err == nil || !strings.Contains(err.Error(), boom.Error()) {
			t.Fatalf("Put of %d bytes: %v, want it to report %v", size, err, boom)
		}
		assertStored(t, b)
	}
}

// cancelingReader cancels its context after n bytes, as a client hanging
// up mid-upload would.
type cancelingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func testPutCanceledMidway(t *testing.T, b Backend) {
	for _, size := range []int64{4 << 20, b.LargeSize} {
		ctx, cancel := context.WithCancel(context.Background())
		_, _, err := b.Store.Put(ctx, &cancelingReader{r: StreamOf(2, size), n: size * 3 / 4, cancel: cancel})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put of %d bytes: %v, want context.Canceled", size, err)
		}
		assertStored(t, b)
	}
}

// writeFile writes size bytes of StreamOf(seed) to a new file in dir.
func writeFile(t *testing.T, seed byte, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "content")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, StreamOf(seed, size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// testPutFile: a regular file, which a store may send in parallel parts,
// is stored like any stream: same digest, same bytes, deduplicated.
func testPutFile(t *testing.T, b Backend) {
	ctx := context.Background()
	path := writeFile(t, 5, b.LargeSize)
	want := DigestOf(mustRead(t, path))
	for range 2 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		digest, n, err := b.Store.Put(ctx, f)
		f.Close()
		if err != nil || digest != want || n != b.LargeSize {
			t.Fatalf("Put(file) = %s, %d, %v; want %s, %d", digest, n, err, want, b.LargeSize)
		}
	}
	got, _, err := readAll(ctx, b.Store, want)
	if err != nil || DigestOf(got) != want {
		t.Errorf("read back: %v", err)
	}
	assertStored(t, b, want)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testCopyFile: a store that copies blobs to files writes exactly the
// blob, refuses a damaged one and leaves no file behind when it fails.
func testCopyFile(t *testing.T, b Backend) {
	copier := fileCopier(t, b)
	ctx := context.Background()
	dir := t.TempDir()
	digest, _, err := b.Store.Put(ctx, StreamOf(6, b.LargeSize))
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := copier.CopyFile(ctx, digest, good, 0o600); err != nil {
		t.Fatalf("CopyFile: %v", err)
	}
	if got := DigestOf(mustRead(t, good)); got != digest {
		t.Errorf("copied file has digest %s, want %s", got, digest)
	}
	if err := copier.CopyFile(ctx, digest, good, 0o600); err == nil {
		t.Error("CopyFile overwrote an existing file")
	}
	missing := filepath.Join(dir, "missing")
	if err := copier.CopyFile(ctx, DigestOf([]byte("never stored")), missing, 0o600); !wharf.IsNotFound(err) {
		t.Errorf("CopyFile of a missing blob: %v, want ENOTFOUND", err)
	}
	b.Rewrite(t, digest, func(b []byte) []byte { b[len(b)/3] ^= 1; return b })
	bad := filepath.Join(dir, "bad")
	if err := copier.CopyFile(ctx, digest, bad, 0o600); wharf.ErrorCode(err) != wharf.EINTERNAL || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("CopyFile of a corrupt blob: %v, want EINTERNAL corrupt", err)
	}
	AssertNoFile(t, missing)
	AssertNoFile(t, bad)
}

// fileCopier is the store as a BlobFileCopier, or skips the test for a
// store that does not copy blobs to files.
func fileCopier(t *testing.T, b Backend) wharf.BlobFileCopier {
	t.Helper()
	copier, ok := b.Store.(wharf.BlobFileCopier)
	if !ok {
		t.Skip("the store does not copy blobs to files")
	}
	return copier
}

// AssertNoFile fails the test if anything is at path, where a failed copy
// must leave nothing.
func AssertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind after a failed copy: %v", path, err)
	}
}

// testCopyFileDamaged: a blob damaged anywhere, cut short or grown is
// refused as corrupt when it is copied to a file, and the file is removed.
func testCopyFileDamaged(t *testing.T, b Backend) {
	copier := fileCopier(t, b)
	ctx := context.Background()
	for name, edit := range map[string]func([]byte) []byte{
		"last byte":       func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b },
		"one byte short":  func(b []byte) []byte { return b[:len(b)-1] },
		"half":            func(b []byte) []byte { return b[:len(b)/2] },
		"one byte longer": func(b []byte) []byte { return append(b, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			digest, _, err := b.Store.Put(ctx, StreamOf(8, b.LargeSize))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Store.Delete(ctx, digest)
			b.Rewrite(t, digest, edit)
			path := filepath.Join(t.TempDir(), "copy")
			err = copier.CopyFile(ctx, digest, path, 0o600)
			if wharf.ErrorCode(err) != wharf.EINTERNAL || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), digest) {
				t.Errorf("CopyFile of a damaged blob: %v, want EINTERNAL saying %s is corrupt", err, digest)
			}
			AssertNoFile(t, path)
		})
	}
}

// testCopyFileCanceledMidway: a copy cancelled once the file has started to
// fill returns the cancellation and leaves no file, whole or partial.
func testCopyFileCanceledMidway(t *testing.T, b Backend) {
	copier := fileCopier(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The streamed size takes long enough to copy, anywhere, for the
	// first bytes of the file to be seen well before the last.
	digest, _, err := b.Store.Put(ctx, StreamOf(10, b.StreamSize))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy")
	started := make(chan struct{})
	go func() {
		defer close(started)
		for ctx.Err() == nil {
			if info, err := os.Stat(path); err == nil && info.Size() > 0 {
				cancel()
				return
			}
			runtime.Gosched()
		}
	}()
	err = copier.CopyFile(ctx, digest, path, 0o600)
	cancel()
	<-started
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CopyFile cancelled once the file had bytes: %v, want context.Canceled", err)
	}
	AssertNoFile(t, path)
}
