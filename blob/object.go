package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
)

// Object-store tuning. A blob that fits in one part is hashed first and
// written once, under its final name; a larger one streams in parts of
// partSize, partConcurrency at a time, which bounds the memory an upload
// holds to their product whatever the blob's size.
const (
	partSize        = 8 << 20
	partConcurrency = 4
	// retryAttempts is how often the SDKs try a request that failed in a
	// way worth retrying (a dropped connection, 5xx, throttling), with
	// exponential backoff and jitter between tries.
	retryAttempts = 6
	// copyPollInterval is how often a server-side copy still pending is
	// looked at again.
	copyPollInterval = 200 * time.Millisecond
)

// errNoObject is what an objectAPI returns for a key that does not exist,
// so that ObjectStore can name the digest in its ENOTFOUND.
var errNoObject = errors.New("no such object")

// objectAPI is the handful of operations ObjectStore needs from a bucket or
// container: one implementation per service SDK. Every error other than
// errNoObject is already described for a person, naming the datastore.
type objectAPI interface {
	// putSmall writes content, held in memory, to key in one request.
	putSmall(ctx context.Context, key string, content []byte) error
	// putStream writes r to key in parts, concurrently, never holding
	// more than a few parts in memory.
	putStream(ctx context.Context, key string, r io.Reader) error
	// putFile writes the regular file f, from its start, to key in parts
	// read and sent concurrently, as azcopy does.
	putFile(ctx context.Context, key string, f *os.File) error
	// getRange starts reading count bytes of key from off, and says how
	// many the response holds: fewer when the object is shorter than
	// off+count, none (with errShortObject) when it ends before off.
	getRange(ctx context.Context, key string, off, count int64) (body io.ReadCloser, length int64, err error)
	// copy makes dst a copy of src on the server side.
	copy(ctx context.Context, src, dst string, size int64) error
	// copyIsCheap reports whether copy completes at once on the
	// service, so that staging an upload and copying it costs about
	// what writing it under its name would.
	copyIsCheap() bool
	get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	head(ctx context.Context, key string) (int64, error)
	delete(ctx context.Context, key string) error
	// check asks the service whether the container or bucket exists and
	// the credentials may use it.
	check(ctx context.Context) error
	// list calls fn with the name and last-modified time of every object
	// whose name starts with prefix.
	list(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error
	// abortUploads cancels the uploads under prefix started before
	// cutoff and never completed, whose parts the service keeps (and
	// bills) until told, and returns how many it cancelled.
	abortUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error)
	// describe turns an SDK's error into errNoObject for a missing
	// object, or an error for a person that names the datastore and what
	// to check.
	describe(err error, what string) error
}

// ObjectStore is a BlobStore in an object store: an Azure Blob Storage
// container (NewAzure) or an S3-compatible bucket (NewS3), below an optional
// prefix. A blob is the object <prefix>sha256/<64 hex>; a large upload is
// staged at <prefix>tmp/<uuid> while it is hashed, then copied to its name
// on the server side, so a reader never sees a partial blob.
//
// The SDKs retry failed requests with backoff; errors that remain name the
// datastore and say whether the credentials, the container or bucket, or
// throttling is to blame. ObjectStore is safe for concurrent use, also by
// several servers sharing the container.
type ObjectStore struct {
	api    objectAPI
	prefix string
	// rangeSize is the size of the ranges CopyFile fetches; 0 means
	// partSize.
	rangeSize int64
}

var (
	_ wharf.BlobStore          = (*ObjectStore)(nil)
	_ wharf.BlobFileCopier     = (*ObjectStore)(nil)
	_ wharf.BlobStagingSweeper = (*ObjectStore)(nil)
)

func (s *ObjectStore) blobKey(sum string) string { return s.prefix + "sha256/" + sum }

// stagingPrefix is where Put stages large uploads.
func (s *ObjectStore) stagingPrefix() string { return s.prefix + "tmp/" }

// Put streams r into the store and returns its digest and size.
//
// Content that fits in one part is read whole, hashed and written under its
// final name in one request. Larger content is hashed while it is uploaded
// in parts to a temporary object, which is then copied to its final name
// unless that blob already exists, and deleted; on any error, including
// cancellation of ctx, nothing is published and the temporary object is
// removed.
func (s *ObjectStore) Put(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	if f, ok := r.(*os.File); ok {
		if digest, size, done, err := s.putFile(ctx, f); done {
			return digest, size, err
		}
	}
	r = ctxReader{ctx, r}
	// Reading one byte past a part tells a small blob from a large one;
	// the buffer grows with what arrives, so a small blob costs little.
	head, err := io.ReadAll(io.LimitReader(r, partSize+1))
	if err != nil {
		return "", 0, s.putError(ctx, fmt.Errorf("blob: write: %w", err))
	}
	if len(head) <= partSize {
		sum := sha256.Sum256(head)
		hexSum := hex.EncodeToString(sum[:])
		if err := s.api.putSmall(ctx, s.blobKey(hexSum), head); err != nil {
			return "", 0, s.putError(ctx, err)
		}
		return digestPrefix + hexSum, int64(len(head)), nil
	}

	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(io.MultiReader(bytes.NewReader(head), r), h)}
	tmp := s.stagingPrefix() + uuid.NewString()
	// The temporary object goes whatever happens, even when ctx is what
	// ended the upload.
	defer func() {
		if derr := s.api.delete(context.WithoutCancel(ctx), tmp); derr != nil && !errors.Is(derr, errNoObject) && err == nil {
			err = derr
		}
	}()
	if err := s.api.putStream(ctx, tmp, counted); err != nil {
		return "", 0, s.putError(ctx, err)
	}
	// Last chance to honour cancellation before the blob becomes visible.
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	hexSum := hex.EncodeToString(h.Sum(nil))
	final := s.blobKey(hexSum)
	if stored, err := s.api.head(ctx, final); err == nil && stored == counted.n {
		// Same digest, same bytes: keep the copy that is already there.
		return digestPrefix + hexSum, counted.n, nil
	} else if err != nil && !errors.Is(err, errNoObject) {
		return "", 0, s.putError(ctx, err)
	}
	if err := s.api.copy(ctx, tmp, final, counted.n); err != nil {
		return "", 0, s.putError(ctx, err)
	}
	return digestPrefix + hexSum, counted.n, nil
}

// putFile stores a large regular file read from its start, its parts read
// and sent concurrently. Where the service copies an object at once
// (copyIsCheap), the file is hashed while it is sent to a staged name
// and then copied to its final one; elsewhere it is hashed first (a local
// read, far faster than the upload) and sent under its final name, which
// saves S3 a copy of every byte. Either way nothing is sent when the blob is
// already stored. done is false, and nothing read, for anything else (a
// small file, a pipe, a file already partly read), which Put streams.
//
// A file that changes between the hash and the upload would be stored
// under the wrong digest, so its size and modification time are compared
// before and after, and a changed file's blob is not kept.
func (s *ObjectStore) putFile(ctx context.Context, f *os.File) (digest string, size int64, done bool, err error) {
	before, err := f.Stat()
	if err != nil || !before.Mode().IsRegular() || before.Size() <= partSize {
		return "", 0, false, nil
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		return "", 0, false, nil
	}
	if s.api.copyIsCheap() {
		digest, size, err := s.putFileStaged(ctx, f, before)
		return digest, size, true, err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, 0, before.Size())}, make([]byte, copyBufSize))
	if err != nil {
		return "", 0, true, s.putError(ctx, fmt.Errorf("blob: read: %w", err))
	}
	hexSum := hex.EncodeToString(h.Sum(nil))
	digest, final := digestPrefix+hexSum, s.blobKey(hexSum)
	if stored, err := s.api.head(ctx, final); err == nil && stored == n {
		return digest, n, true, nil
	} else if err != nil && !errors.Is(err, errNoObject) {
		return "", 0, true, s.putError(ctx, err)
	}
	if err := s.api.putFile(ctx, final, f); err != nil {
		return "", 0, true, s.putError(ctx, err)
	}
	after, err := f.Stat()
	if err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || n != before.Size() {
		_ = s.api.delete(context.WithoutCancel(ctx), final)
		return "", 0, true, wharf.Errorf(wharf.ECONFLICT, "file %s changed while it was stored; store it again once it is complete", f.Name())
	}
	return digest, n, true, nil
}

// putFileStaged sends a large file to a staged name while a second reader
// hashes it, then copies it to its digest's name unless that is stored
// already, and deletes the staged object whatever happens.
func (s *ObjectStore) putFileStaged(ctx context.Context, f *os.File, before fs.FileInfo) (digest string, size int64, err error) {
	tmp := s.stagingPrefix() + uuid.NewString()
	defer func() {
		if derr := s.api.delete(context.WithoutCancel(ctx), tmp); derr != nil && !errors.Is(derr, errNoObject) && err == nil {
			err = derr
		}
	}()
	type hashed struct {
		sum string
		n   int64
		err error
	}
	hashing := make(chan hashed, 1)
	go func() {
		h := sha256.New()
		n, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, 0, before.Size())}, make([]byte, copyBufSize))
		hashing <- hashed{hex.EncodeToString(h.Sum(nil)), n, err}
	}()
	err = s.api.putFile(ctx, tmp, f)
	sum := <-hashing
	if err != nil {
		return "", 0, s.putError(ctx, err)
	}
	if sum.err != nil {
		return "", 0, s.putError(ctx, fmt.Errorf("blob: read: %w", sum.err))
	}
	after, err := f.Stat()
	if err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || sum.n != before.Size() {
		return "", 0, wharf.Errorf(wharf.ECONFLICT, "file %s changed while it was stored; store it again once it is complete", f.Name())
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	final := s.blobKey(sum.sum)
	if stored, err := s.api.head(ctx, final); err == nil && stored == sum.n {
		return digestPrefix + sum.sum, sum.n, nil
	} else if err != nil && !errors.Is(err, errNoObject) {
		return "", 0, s.putError(ctx, err)
	}
	if err := s.api.copy(ctx, tmp, final, sum.n); err != nil {
		return "", 0, s.putError(ctx, err)
	}
	return digestPrefix + sum.sum, sum.n, nil
}

// CopyFile writes a blob to a new file at path, which must not exist yet,
// downloading ranges of it concurrently while the part of the file already
// complete from its start is hashed: the copy is kept only if it matches
// the digest. On any error, cancellation included, the file is removed.
func (s *ObjectStore) CopyFile(ctx context.Context, digest, path string, perm fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	size, err := s.api.head(ctx, s.blobKey(sum))
	if errors.Is(err, errNoObject) {
		return notFound(digest)
	}
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("blob: copy %s: %w", digest, err)
	}
	defer func() {
		if err != nil {
			dst.Close()
			os.Remove(path)
		}
	}()
	rangeSize := s.rangeSize
	if rangeSize == 0 {
		rangeSize = partSize
	}
	err = downloadFile(ctx, s.api, s.blobKey(sum), dst, size, rangeSize, sum)
	switch {
	case errors.Is(err, errDigestMismatch), errors.Is(err, errShortObject):
		return corrupt(digest)
	case errors.Is(err, errNoObject):
		return notFound(digest)
	case err != nil:
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	return dst.Close()
}

// errDigestMismatch is what a download reports for content that is not
// what its digest names.
var errDigestMismatch = errors.New("digest mismatch")

// putError prefers the context's error, which is why an upload that was
// cancelled failed, over whatever the SDK made of it.
func (s *ObjectStore) putError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// Open returns a reader over a blob and its size. The reader hashes what it
// reads and, at the end, returns an EINTERNAL "corrupt" error instead of
// io.EOF if the bytes do not match the digest. The SDKs resume a download
// whose connection drops.
func (s *ObjectStore) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return nil, 0, err
	}
	body, size, err := s.api.get(ctx, s.blobKey(sum))
	if errors.Is(err, errNoObject) {
		return nil, 0, notFound(digest)
	}
	if err != nil {
		return nil, 0, err
	}
	return &verifyingReader{f: body, h: sha256.New(), want: sum, digest: digest}, size, nil
}

// Stat returns the size of a blob without reading it.
func (s *ObjectStore) Stat(ctx context.Context, digest string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return 0, err
	}
	size, err := s.api.head(ctx, s.blobKey(sum))
	if errors.Is(err, errNoObject) {
		return 0, notFound(digest)
	}
	return size, err
}

// Delete removes a blob. Readers that already started a download may see
// it fail, as they would on any object store.
func (s *ObjectStore) Delete(ctx context.Context, digest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	err = s.api.delete(ctx, s.blobKey(sum))
	if errors.Is(err, errNoObject) {
		return notFound(digest)
	}
	return err
}

// Verify reads a whole blob and checks it against its digest, returning the
// same corruption error a reader would.
func (s *ObjectStore) Verify(ctx context.Context, digest string) error {
	return verify(ctx, s, digest)
}

// Check asks the service whether the container or bucket exists and the
// credentials may use it, so that a mistake shows when a store is set up
// rather than at the first upload. (A missing blob and a missing bucket
// look the same to S3's HEAD, which has no body to say which.)
func (s *ObjectStore) Check(ctx context.Context) error {
	return s.api.check(ctx)
}

// SweepStaged deletes the objects under tmp/ written before cutoff, which a
// server that crashed between staging a large upload and publishing it left
// behind, and cancels the multipart uploads under the store's prefix (staged
// or straight to a blob's name) started before cutoff and never completed.
// A staged object lives for the moments between its upload and its copy;
// an upload in progress writes its last part within the hours it takes, so
// a cutoff a day back touches neither.
func (s *ObjectStore) SweepStaged(ctx context.Context, cutoff time.Time) (int, error) {
	removed := 0
	err := s.api.list(ctx, s.stagingPrefix(), func(key string, modified time.Time) error {
		if !modified.Before(cutoff) {
			return nil
		}
		if err := s.api.delete(ctx, key); err != nil && !errors.Is(err, errNoObject) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, err
	}
	aborted, err := s.api.abortUploads(ctx, s.prefix, cutoff)
	return removed + aborted, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// storageError is an object store's failure described for a person: which
// datastore, and what to check.
func storageError(datastore, what string, code string, cause error) error {
	return wharf.Errorf(code, "datastore %s: %s: %v", datastore, what, cause)
}

// needsDescribing reports whether an SDK's error is one to explain: not
// success, and not the caller's own cancellation, which is passed on as it
// is.
func needsDescribing(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
