package wharf

import (
	"context"
	"time"
)

// StorageBlob is a datastore file as Azure's Blob Storage API shows it to
// the clients that speak it (the Azure ML SDK uploads code, data and models
// that way): the content recorded at the path, with the properties that
// API keeps beside it. A datastore file written otherwise (a job's output)
// has empty properties.
type StorageBlob struct {
	DatastoreFile
	ContentType string `json:"content_type"`
	// Metadata are the blob's x-ms-meta-* values: the SDK marks an upload
	// complete with them and skips content already marked so.
	Metadata  map[string]string `json:"metadata"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// StorageBlock is a block uploaded for a blob and not yet committed: the
// Blob API's way of sending a large file in parts, which a block list
// then joins into the blob.
type StorageBlock struct {
	Workspace string
	Datastore string
	Path      string
	// ID is the client's block id, as sent (base64).
	ID     string
	Digest string
	Size   int64
}

// StorageBlobService keeps the Blob API's view of datastore files.
type StorageBlobService interface {
	// PutStorageBlob records b's content at its datastore path with its
	// properties, replacing what was there, and forgets the path's
	// uncommitted blocks, in one transaction: a failed put leaves the
	// path as it was.
	PutStorageBlob(ctx context.Context, b *StorageBlob) error
	// FindStorageBlob returns the file at a datastore path with its
	// properties, or ENOTFOUND.
	FindStorageBlob(ctx context.Context, workspace, datastore, path string) (*StorageBlob, error)
	// ListStorageBlobs returns the files (not folders) whose path starts
	// with prefix, a plain string prefix as the Blob API's, ordered by
	// path, at most limit of them after the path marker (exclusive; empty
	// starts at the beginning).
	ListStorageBlobs(ctx context.Context, workspace, datastore, prefix, marker string, limit int) ([]*StorageBlob, error)
	// SetStorageBlobMetadata replaces the metadata of the file at a path;
	// ENOTFOUND when nothing is there.
	SetStorageBlobMetadata(ctx context.Context, workspace, datastore, path string, metadata map[string]string) error
	// PutStorageBlock records an uncommitted block of the blob at a path,
	// replacing a block of the same id.
	PutStorageBlock(ctx context.Context, b *StorageBlock) error
	// StorageBlocks returns the uncommitted blocks of the blob at a path,
	// in no particular order: a block list says which to join, in order.
	StorageBlocks(ctx context.Context, workspace, datastore, path string) ([]*StorageBlock, error)
}
