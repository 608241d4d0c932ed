package sqlstore

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

// PutDatastoreObjects records the versions of datastore objects.
func (db *DB) PutDatastoreObjects(ctx context.Context, objects []*wharf.DatastoreObject) error {
	if len(objects) == 0 {
		return nil
	}
	now := db.now()
	for _, o := range objects {
		p, err := wharf.CleanDatastorePath(o.Path)
		if err != nil {
			return err
		}
		o.Path = p
	}
	err := db.inTx(ctx, func(c conn) error {
		for _, o := range objects {
			if _, err := c.exec(ctx, `INSERT INTO datastore_objects (workspace, datastore, path, etag, size, digest, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (workspace, datastore, path) DO UPDATE SET etag = excluded.etag, size = excluded.size,
					digest = excluded.digest, updated_at = excluded.updated_at`,
				o.Workspace, o.Datastore, o.Path, o.ETag, o.Size, o.Digest, now.UnixMilli()); err != nil {
				return err
			}
			// The content read from a workspace's datastore is the
			// workspace's (see wharf.BlobRefService).
			if err := addBlobRefs(ctx, c, o.Workspace, o.Digest); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapErr("put datastore objects", err)
	}
	for _, o := range objects {
		o.UpdatedAt = time.UnixMilli(now.UnixMilli()).UTC()
	}
	return nil
}

// ListDatastoreObjects returns the objects recorded at or below a prefix.
func (db *DB) ListDatastoreObjects(ctx context.Context, workspace, datastore, prefix string) ([]*wharf.DatastoreObject, error) {
	at, below := "", ""
	if strings.Trim(prefix, "/") != "" {
		p, err := wharf.CleanDatastorePath(prefix)
		if err != nil {
			return nil, err
		}
		at, below = p, p+"/"
	}
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.DatastoreObject, error) {
		o := &wharf.DatastoreObject{Workspace: workspace, Datastore: datastore}
		var updated int64
		err := s.Scan(&o.Path, &o.ETag, &o.Size, &o.Digest, &updated)
		o.UpdatedAt = time.UnixMilli(updated).UTC()
		return o, err
	}, `SELECT path, etag, size, digest, updated_at FROM datastore_objects
		WHERE workspace = ? AND datastore = ? AND (path = ? OR substr(path, 1, ?) = ?) ORDER BY path`,
		workspace, datastore, at, utf8.RuneCountInString(below), below)
	return out, wrapErr("list datastore objects", err)
}
