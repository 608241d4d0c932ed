// Package blob stores immutable, content-addressed blobs (model files,
// dataset snapshots, run outputs) in a local folder (FS), in an Azure Blob
// Storage container or in an S3-compatible bucket (ObjectStore).
//
// Blobs are written so that a reader never sees a partial one and a crash
// leaves at most a stray temporary file, and every read is checked against
// the digest, so a damaged disk shows up as an error rather than as a model
// that quietly behaves differently.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/wharfml/wharf"
)

const (
	// digestPrefix names the only hash the store speaks; it is part of
	// the digest so another algorithm can be added without ambiguity.
	digestPrefix = "sha256:"
	hexLen       = sha256.Size * 2

	// staleTempAge is how long staged content (a temporary file, an
	// object under tmp/, an incomplete multipart upload) must have been
	// left untouched before it is swept. A live Put keeps writing, which
	// keeps its file or its upload's last part fresh, so only abandoned
	// ones are this old.
	staleTempAge = time.Hour

	// copyBufSize is large enough to keep syscalls per megabyte low
	// and small enough that many concurrent uploads stay cheap.
	copyBufSize = 256 << 10

	// copyFileChunk is how much CopyFile hands the kernel at a time:
	// large enough that the syscalls cost nothing next to the copy, small
	// enough that a cancelled context is noticed within tens of
	// milliseconds rather than after the whole blob.
	copyFileChunk = 32 << 20

	dirPerm  = 0o750
	blobPerm = 0o444
)

// FS is a BlobStore in a local folder. Blobs live at
// root/sha256/ab/cdef… (the first two hex digits name a subfolder, so no
// folder grows past a manageable size) and are staged in root/tmp, which is on
// the same filesystem so publishing a blob is a single atomic rename.
//
// FS is safe for concurrent use, also by several processes sharing root.
type FS struct {
	blobs string // root/sha256
	tmp   string // root/tmp
}

var (
	_ wharf.BlobStore          = (*FS)(nil)
	_ wharf.BlobFileCopier     = (*FS)(nil)
	_ wharf.BlobFileLinker     = (*FS)(nil)
	_ wharf.BlobStagingSweeper = (*FS)(nil)
)

// NewFS opens the store at root, creating its folders if needed, and deletes
// temporary files older than an hour: they are left by Puts that were
// interrupted by a crash and would otherwise accumulate forever.
func NewFS(root string) (*FS, error) {
	s := &FS{
		blobs: filepath.Join(root, "sha256"),
		tmp:   filepath.Join(root, "tmp"),
	}
	for _, dir := range []string{s.blobs, s.tmp} {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return nil, fmt.Errorf("blob: create store folder: %w", err)
		}
	}
	if _, err := s.SweepStaged(context.Background(), time.Now().Add(-staleTempAge)); err != nil {
		return nil, err
	}
	return s, nil
}

// SweepStaged deletes regular files in the temp folder last modified
// before cutoff. A live Put keeps writing, which keeps its file's
// modification time fresh.
func (s *FS) SweepStaged(ctx context.Context, cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, fmt.Errorf("blob: list temp folder: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // another process cleaned it up first
		}
		if err != nil {
			return removed, fmt.Errorf("blob: inspect temp file: %w", err)
		}
		if info.ModTime().After(cutoff) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		err = os.Remove(filepath.Join(s.tmp, e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("blob: remove stale temp file: %w", err)
		}
		if err == nil {
			removed++
		}
	}
	return removed, nil
}

// Put streams r into the store and returns its digest and size.
//
// The content is hashed while it is written to a temp file, which is synced,
// made read-only and renamed into place, after which the folder is synced so
// the rename survives a crash. If the blob already exists the temp file is
// dropped instead. On any error, including cancellation of ctx, the temp file
// is removed and nothing is published.
func (s *FS) Put(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("blob: create temp file: %w", err)
	}
	tmpName := f.Name()
	published := false
	defer func() {
		if !published {
			f.Close() // may already be closed; only the removal matters
			os.Remove(tmpName)
		}
	}()

	h := sha256.New()
	size, err = io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, make([]byte, copyBufSize))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", 0, ctxErr
		}
		return "", 0, fmt.Errorf("blob: write: %w", err)
	}
	if err := f.Chmod(blobPerm); err != nil {
		return "", 0, fmt.Errorf("blob: make temp file read-only: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("blob: sync temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("blob: close temp file: %w", err)
	}
	// Last chance to honour cancellation before the blob becomes visible.
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}

	sum := hex.EncodeToString(h.Sum(nil))
	digest = digestPrefix + sum
	final := s.path(sum)
	dir := filepath.Dir(final)

	if _, err := os.Lstat(final); err == nil {
		// Same digest, same bytes: keep the copy that is already there.
		return digest, size, nil
	}
	if err := s.ensureFanOut(dir); err != nil {
		return "", 0, err
	}
	// A concurrent Put of the same content may rename between the check
	// above and here; replacing a file with identical bytes is harmless and
	// readers holding the old one keep reading it.
	if err := os.Rename(tmpName, final); err != nil {
		return "", 0, fmt.Errorf("blob: publish: %w", err)
	}
	published = true
	if err := syncDir(dir); err != nil {
		return "", 0, err
	}
	return digest, size, nil
}

// ensureFanOut creates a fan-out folder if it is missing and syncs its parent,
// so the folder and the blob renamed into it both survive a crash. Fan-out
// folders are never removed, so this cannot race with Delete.
func (s *FS) ensureFanOut(dir string) error {
	err := os.Mkdir(dir, dirPerm)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: create fan-out folder: %w", err)
	}
	return syncDir(s.blobs)
}

// Open returns a reader over a blob and its size. The reader hashes what it
// reads and, at the end, returns an EINTERNAL "corrupt" error instead of
// io.EOF if the bytes do not match the digest.
func (s *FS) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, notFound(digest)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open %s: %w", digest, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob: stat %s: %w", digest, err)
	}
	return &verifyingReader{f: f, h: sha256.New(), want: sum, digest: digest}, info.Size(), nil
}

// CopyFile writes a blob to a new file at path, which must not exist yet.
//
// The kernel copies the bytes (copy_file_range where the filesystems allow
// it, so they never pass through this process) while a goroutine hashes a
// second, independent read of the blob, so the copy takes about as long as
// the slower of the two rather than their sum. The file is only kept once
// the hash matches the digest and the sizes agree; on any error, including a
// mismatch or cancellation of ctx, it is removed.
func (s *FS) CopyFile(ctx context.Context, digest, path string, perm fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	src, err := os.Open(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return notFound(digest)
	}
	if err != nil {
		return fmt.Errorf("blob: open %s: %w", digest, err)
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return fmt.Errorf("blob: stat %s: %w", digest, err)
	}
	// O_EXCL: the file removed on failure is then always one this call
	// created, never something that was already there.
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("blob: copy %s: %w", digest, err)
	}
	defer func() {
		if err != nil {
			dst.Close() // may already be closed; only the removal matters
			os.Remove(path)
		}
	}()

	// Whichever of the copy and the hash fails first stops the other, and
	// its error is the cause reported.
	cctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	type hashed struct {
		sum string
		n   int64
	}
	hashDone := make(chan hashed, 1)
	go func() {
		// A SectionReader reads with pread, so it shares no file offset
		// with the copy below.
		h := sha256.New()
		n, err := io.CopyBuffer(h, ctxReader{cctx, io.NewSectionReader(src, 0, math.MaxInt64)}, make([]byte, copyBufSize))
		if err != nil {
			stop(fmt.Errorf("blob: read %s: %w", digest, err))
		}
		hashDone <- hashed{hex.EncodeToString(h.Sum(nil)), n}
	}()
	copied, err := copyChunked(cctx, dst, src)
	if err != nil {
		stop(fmt.Errorf("blob: copy %s: %w", digest, err))
	}
	got := <-hashDone
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := context.Cause(cctx); err != nil {
		return err
	}
	if got.sum != sum {
		return corrupt(digest)
	}
	if copied != got.n || copied != info.Size() {
		return wharf.Errorf(wharf.EINTERNAL, "blob %s changed while it was copied: %d bytes stored, %d copied, %d hashed", digest, info.Size(), copied, got.n)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("blob: copy %s: %w", digest, err)
	}
	return nil
}

// LinkFile makes path a hard link to a blob: staging it costs nothing,
// whatever its size. The blob's mode (0444) keeps ordinary users from
// writing through the link, but not root, which is why it is only for
// readers that are known not to write.
func (s *FS) LinkFile(ctx context.Context, digest, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	err = os.Link(s.path(sum), path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(s.path(sum)); errors.Is(serr, fs.ErrNotExist) {
			return notFound(digest)
		}
	}
	if err != nil {
		return fmt.Errorf("blob: link %s: %w", digest, err)
	}
	return nil
}

// copyChunked copies src to dst until src ends, in chunks so that ctx is
// checked between them. Both being *os.File values is what lets each chunk
// go through the kernel's copy_file_range; Go falls back to an ordinary
// copy where that is not possible.
func copyChunked(ctx context.Context, dst, src *os.File) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.CopyN(dst, src, copyFileChunk)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Stat returns the size of a blob without reading it.
func (s *FS) Stat(ctx context.Context, digest string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return 0, err
	}
	info, err := os.Stat(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, notFound(digest)
	}
	if err != nil {
		return 0, fmt.Errorf("blob: stat %s: %w", digest, err)
	}
	return info.Size(), nil
}

// Delete removes a blob. On Unix, readers that already opened it can finish
// reading, since the file's data is freed only when they close it.
func (s *FS) Delete(ctx context.Context, digest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	err = os.Remove(s.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return notFound(digest)
	}
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", digest, err)
	}
	return nil
}

// Verify reads a whole blob and checks it against its digest, returning the
// same corruption error a reader would. It exists for scrubbing: finding
// damage on a schedule rather than when a training run needs the blob.
func (s *FS) Verify(ctx context.Context, digest string) error {
	return verify(ctx, s, digest)
}

// verify reads a whole blob of s through Open, which checks its digest.
func verify(ctx context.Context, s wharf.BlobStore, digest string) error {
	rc, _, err := s.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(io.Discard, ctxReader{ctx, rc}, make([]byte, copyBufSize)); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	return nil
}

// path returns where the blob with hex digest sum lives.
func (s *FS) path(sum string) string {
	return filepath.Join(s.blobs, sum[:2], sum[2:])
}

// parseDigest returns the hex part of a "sha256:<64 lowercase hex>" digest.
// Accepting nothing else is what keeps digests from naming paths outside the
// store, so it is checked character by character rather than cleaned.
func parseDigest(digest string) (string, error) {
	if len(digest) != len(digestPrefix)+hexLen || digest[:len(digestPrefix)] != digestPrefix {
		return "", invalidDigest(digest)
	}
	sum := digest[len(digestPrefix):]
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", invalidDigest(digest)
		}
	}
	return sum, nil
}

func invalidDigest(digest string) error {
	const maxShown = 100 // keep hostile input from bloating messages and logs
	if len(digest) > maxShown {
		digest = digest[:maxShown] + "..."
	}
	return wharf.Errorf(wharf.EINVALID, "digest %q is not valid: want %q followed by %d lowercase hex digits", digest, digestPrefix, hexLen).WithField("digest")
}

func notFound(digest string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "blob %s not found", digest)
}

func corrupt(digest string) error {
	return wharf.Errorf(wharf.EINTERNAL, "blob %s is corrupt: its stored content does not match its digest", digest)
}

// syncDir flushes a folder's entries, which is what makes a rename or a new
// subfolder durable; syncing the file alone does not.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: open folder for sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("blob: sync folder: %w", err)
	}
	return nil
}

// ctxReader stops a copy once ctx is done, so a cancelled upload or scrub
// does not run on until the source happens to end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// verifyingReader hashes a blob as it is read and turns the final io.EOF into
// a corruption error when the hash does not match.
type verifyingReader struct {
	f      io.ReadCloser
	h      hash.Hash
	want   string // lowercase hex
	digest string
	err    error // sticky: io.EOF or the corruption error once reached
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if hex.EncodeToString(v.h.Sum(nil)) != v.want {
			err = corrupt(v.digest)
		}
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) Close() error {
	return v.f.Close()
}
