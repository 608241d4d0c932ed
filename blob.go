package wharf

import (
	"context"
	"io"
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
