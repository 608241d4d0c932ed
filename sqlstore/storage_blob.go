package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

// PutStorageBlob records a blob's content and properties at its path.
func (db *DB) PutStorageBlob(ctx context.Context, b *wharf.StorageBlob) error {
	p, err := wharf.CleanDatastorePath(b.Path)
	if err != nil {
		return err
	}
	b.Path = p
	md, err := metadataJSON(b.Metadata)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.inTx(ctx, func(c conn) error {
		if err := db.putDatastoreFile(ctx, c, &b.DatastoreFile, now); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO storage_blob_properties (workspace, datastore, path, content_type, metadata, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace, datastore, path) DO UPDATE SET content_type = excluded.content_type,
				metadata = excluded.metadata, updated_at = excluded.updated_at`,
			b.Workspace, b.Datastore, b.Path, b.ContentType, md, now.UnixMilli()); err != nil {
			return err
		}
		_, err := c.exec(ctx, `DELETE FROM storage_blocks WHERE workspace = ? AND datastore = ? AND path = ?`,
			b.Workspace, b.Datastore, b.Path)
		return err
	})
	if err != nil {
		return wrapErr("put storage blob", err)
	}
	b.CreatedAt = time.UnixMilli(now.UnixMilli()).UTC()
	b.UpdatedAt = b.CreatedAt
	return nil
}

// storageBlobColumns are what a storage blob is read from, the file joined
// with its properties, which a job's output lacks.
const storageBlobColumns = `f.path, f.digest, f.kind, f.created_at, COALESCE(p.content_type, ''), COALESCE(p.metadata, '{}'),
	COALESCE(p.updated_at, f.created_at)
	FROM datastore_files f LEFT JOIN storage_blob_properties p
		ON p.workspace = f.workspace AND p.datastore = f.datastore AND p.path = f.path`

func scanStorageBlob(sc rowScanner, workspace, datastore string) (*wharf.StorageBlob, error) {
	b := &wharf.StorageBlob{DatastoreFile: wharf.DatastoreFile{Workspace: workspace, Datastore: datastore}}
	var created, updated int64
	var md string
	if err := sc.Scan(&b.Path, &b.Digest, &b.Kind, &created, &b.ContentType, &md, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(md), &b.Metadata); err != nil {
		return nil, err
	}
	b.CreatedAt, b.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return b, nil
}

// FindStorageBlob returns the file at a path with its properties.
func (db *DB) FindStorageBlob(ctx context.Context, workspace, datastore, path string) (*wharf.StorageBlob, error) {
	p, err := wharf.CleanDatastorePath(path)
	if err != nil {
		return nil, err
	}
	b, err := scanStorageBlob(db.reader().queryRow(ctx, `SELECT `+storageBlobColumns+`
		WHERE f.workspace = ? AND f.datastore = ? AND f.path = ?`, workspace, datastore, p), workspace, datastore)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "nothing is stored at azureml://datastores/%s/paths/%s in workspace %q", datastore, p, workspace)
	}
	return b, wrapErr("find storage blob", err)
}

// ListStorageBlobs returns the files below a string prefix, by path.
func (db *DB) ListStorageBlobs(ctx context.Context, workspace, datastore, prefix, marker string, limit int) ([]*wharf.StorageBlob, error) {
	// substr compares characters exactly in both dialects (see
	// ListDatastoreFiles); so does the marker's comparison once both
	// sides are the same byte strings, which paths of one file are.
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.StorageBlob, error) {
		return scanStorageBlob(s, workspace, datastore)
	}, `SELECT `+storageBlobColumns+`
		WHERE f.workspace = ? AND f.datastore = ? AND f.kind = 'file' AND substr(f.path, 1, ?) = ? AND f.path > ?
		ORDER BY f.path LIMIT ?`,
		workspace, datastore, utf8.RuneCountInString(prefix), prefix, marker, limit)
	return out, wrapErr("list storage blobs", err)
}

// SetStorageBlobMetadata replaces a blob's metadata.
func (db *DB) SetStorageBlobMetadata(ctx context.Context, workspace, datastore, path string, metadata map[string]string) error {
	p, err := wharf.CleanDatastorePath(path)
	if err != nil {
		return err
	}
	md, err := metadataJSON(metadata)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.inTx(ctx, func(c conn) error {
		if _, err := db.FindDatastoreFile(ctx, workspace, datastore, p); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO storage_blob_properties (workspace, datastore, path, content_type, metadata, updated_at)
			VALUES (?, ?, ?, '', ?, ?)
			ON CONFLICT (workspace, datastore, path) DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at`,
			workspace, datastore, p, md, now.UnixMilli())
		return err
	})
	return wrapErr("set storage blob metadata", err)
}

// PutStorageBlock records an uncommitted block.
func (db *DB) PutStorageBlock(ctx context.Context, b *wharf.StorageBlock) error {
	p, err := wharf.CleanDatastorePath(b.Path)
	if err != nil {
		return err
	}
	b.Path = p
	err = db.inTx(ctx, func(c conn) error {
		if _, err := db.FindDatastore(ctx, b.Workspace, b.Datastore); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO storage_blocks (workspace, datastore, path, block_id, digest, size, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace, datastore, path, block_id) DO UPDATE SET digest = excluded.digest, size = excluded.size,
				created_at = excluded.created_at`,
			b.Workspace, b.Datastore, b.Path, b.ID, b.Digest, b.Size, db.now().UnixMilli()); err != nil {
			return err
		}
		// The block's content is the workspace's, as an upload's is.
		return addBlobRefs(ctx, c, b.Workspace, b.Digest)
	})
	return wrapErr("put storage block", err)
}

// StorageBlocks returns a blob's uncommitted blocks.
func (db *DB) StorageBlocks(ctx context.Context, workspace, datastore, path string) ([]*wharf.StorageBlock, error) {
	p, err := wharf.CleanDatastorePath(path)
	if err != nil {
		return nil, err
	}
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.StorageBlock, error) {
		b := &wharf.StorageBlock{Workspace: workspace, Datastore: datastore, Path: p}
		return b, s.Scan(&b.ID, &b.Digest, &b.Size)
	}, `SELECT block_id, digest, size FROM storage_blocks WHERE workspace = ? AND datastore = ? AND path = ?`, workspace, datastore, p)
	return out, wrapErr("list storage blocks", err)
}

func metadataJSON(md map[string]string) (string, error) {
	if md == nil {
		md = map[string]string{}
	}
	b, err := json.Marshal(md)
	return string(b), err
}
