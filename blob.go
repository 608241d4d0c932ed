package wharf

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// BlobStore keeps immutable content addressed by its SHA-256 digest, written
// "sha256:<64 lowercase hex>". Naming content by its hash makes writes
// idempotent (the same bytes stored twice are one blob) and lets every reader
// check that it got exactly what was stored, so model files and dataset
// snapshots can be shared between runs without trusting the disk they sat on.
//
// A digest that is not in that form is refused with EINVALID; a well-formed
// digest that is not stored gives ENOTFOUND. Implementations are safe for
// concurrent use.
type BlobStore interface {
	// Put streams r into the store and returns its digest and size. It
	// never holds the whole content in memory, so blobs may be larger than
	// RAM, and a blob becomes visible only once it is complete.
	Put(ctx context.Context, r io.Reader) (digest string, size int64, err error)
	// Open returns a reader over the content and its size. Reading it to
	// the end verifies the digest: if the stored bytes no longer match,
	// the final Read returns an EINTERNAL error saying the blob is corrupt
	// instead of io.EOF, so damage is never passed on silently. The caller
	// must close the reader.
	Open(ctx context.Context, digest string) (io.ReadCloser, int64, error)
	// Stat returns the size of a stored blob without reading it.
	Stat(ctx context.Context, digest string) (size int64, err error)
	// Delete removes a blob, so later Open, Stat and Delete calls report
	// ENOTFOUND until the same content is Put again.
	Delete(ctx context.Context, digest string) error
}

// BlobFileCopier is a BlobStore that can write a blob to a local file faster
// than Open and a copy through user space. Staging a job's input is on the
// path between a request and the job starting, and for a blob of hundreds of
// megabytes reading, hashing and writing one buffer at a time costs the sum
// of the three; a store with the blob on a local disk can let the kernel copy
// while it hashes a second read in parallel. Callers use it when the store
// has it and fall back to Open otherwise.
type BlobFileCopier interface {
	// CopyFile writes the blob's content to a new file at path, created
	// with mode perm (less the umask), and verifies the digest. path must
	// not exist yet: an existing file is left alone and an error returned,
	// so a copy never clobbers what it did not create. On any error,
	// including cancellation of ctx and a digest mismatch (the same
	// EINTERNAL "corrupt" error Open's reader gives), the file at path is
	// removed, so damaged content is never left there looking like a good
	// copy. An unknown digest gives ENOTFOUND.
	CopyFile(ctx context.Context, digest, path string, perm fs.FileMode) error
}

// BlobFileLinker is a BlobStore whose blobs are local files that can be
// given to a job without copying them: a hard link to the stored file. A
// link is the stored content itself, so it is only for readers known not to
// write (Wharf's own batch scoring), and since nothing is copied nothing is
// hashed on the way: the caller verifies (in parallel with the reading) and
// discards whatever it made from the file if that fails.
type BlobFileLinker interface {
	// LinkFile makes path, which must not exist, a hard link to the blob.
	// An unknown digest gives ENOTFOUND; a path on another filesystem
	// gives an error wrapping the link's, after which the caller copies.
	LinkFile(ctx context.Context, digest, path string) error
	// Verify reads the whole blob and returns the same EINTERNAL
	// "corrupt" error Open's reader gives if it does not match its digest.
	Verify(ctx context.Context, digest string) error
}

// BlobStagingSweeper is a BlobStore that stages content where a crash can
// leave it behind: a temporary file, an object under tmp/, or an object
// store's multipart upload that was never completed. Nothing refers to
// what is staged, so it only costs space, but it would accumulate.
type BlobStagingSweeper interface {
	// SweepStaged deletes what uploads staged and last wrote before
	// cutoff, and returns how much it deleted. An upload in progress
	// writes within the last hours, so a cutoff older than any upload
	// takes never touches one. Several servers may sweep one store at
	// once: what another deleted first is not an error.
	SweepStaged(ctx context.Context, cutoff time.Time) (int, error)
}

// BlobRefService records which workspaces reference which blobs. The blob
// store is shared by the whole server and deduplicates by content, so a
// digest alone grants nothing: a workspace reads a blob through its content
// routes, or names it in a job or an asset, only once it references it —
// the blob was uploaded through that workspace, or the server wrote it
// there (a job's outputs and the files of their snapshots, an artifact
// logged to one of its runs, a data asset, a datastore path, a model's
// snapshot). A digest learnt from another workspace's job or log therefore
// opens nothing here.
type BlobRefService interface {
	// AddBlobRefs records that the workspace references the digests;
	// recording a reference again is no error. The workspace must exist.
	AddBlobRefs(ctx context.Context, workspace string, digests []string) error
	// UnreferencedBlobs returns those of the digests the workspace does
	// not reference, in their order: none when it may read them all.
	UnreferencedBlobs(ctx context.Context, workspace string, digests []string) ([]string, error)
	// NamedBlobs returns every blob digest that the workspace's records
	// name: assets and their specs, artifacts, datastore paths, jobs,
	// schedules and deployments. It is for recording the references of
	// data stored before references were.
	NamedBlobs(ctx context.Context, workspace string) ([]string, error)
}
