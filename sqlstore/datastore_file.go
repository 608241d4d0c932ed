package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

// PutDatastoreFile records content at a datastore path.
func (db *DB) PutDatastoreFile(ctx context.Context, f *wharf.DatastoreFile) error {
	p, err := wharf.CleanDatastorePath(f.Path)
	if err != nil {
		return err
	}
	f.Path = p
	now := db.now()
	err = db.inTx(ctx, func(c conn) error {
		if err := db.putDatastoreFile(ctx, c, f, now); err != nil {
			return err
		}
		// Content written otherwise than through the Blob API has none
		// of the properties the old content had.
		_, err := c.exec(ctx, `DELETE FROM storage_blob_properties WHERE workspace = ? AND datastore = ? AND path = ?`,
			f.Workspace, f.Datastore, f.Path)
		return err
	})
	if err != nil {
		return wrapErr("put datastore file", err)
	}
	f.CreatedAt = time.UnixMilli(now.UnixMilli()).UTC()
	return nil
}

// putDatastoreFile records f at its clean path inside a caller's
// transaction, with the reference it gives the workspace.
func (db *DB) putDatastoreFile(ctx context.Context, c conn, f *wharf.DatastoreFile, now time.Time) error {
	if _, err := db.FindDatastore(ctx, f.Workspace, f.Datastore); err != nil {
		return err
	}
	_, err := c.exec(ctx, `INSERT INTO datastore_files (workspace, datastore, path, digest, kind, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace, datastore, path) DO UPDATE SET digest = excluded.digest, kind = excluded.kind,
			created_at = excluded.created_at`,
		f.Workspace, f.Datastore, f.Path, f.Digest, f.Kind, now.UnixMilli())
	if err != nil {
		return err
	}
	// What a datastore path of the workspace holds is its content
	// (see wharf.BlobRefService).
	return addBlobRefs(ctx, c, f.Workspace, f.Digest)
}

// FindDatastoreFile returns what is stored at a datastore path.
func (db *DB) FindDatastoreFile(ctx context.Context, workspace, datastore, path string) (*wharf.DatastoreFile, error) {
	p, err := wharf.CleanDatastorePath(path)
	if err != nil {
		return nil, err
	}
	f := &wharf.DatastoreFile{Workspace: workspace, Datastore: datastore, Path: p}
	var created int64
	err = db.reader().queryRow(ctx, `SELECT digest, kind, created_at FROM datastore_files
		WHERE workspace = ? AND datastore = ? AND path = ?`, workspace, datastore, p).Scan(&f.Digest, &f.Kind, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "nothing is stored at azureml://datastores/%s/paths/%s in workspace %q", datastore, p, workspace)
	}
	if err != nil {
		return nil, wrapErr("find datastore file", err)
	}
	f.CreatedAt = time.UnixMilli(created).UTC()
	return f, nil
}

// ListDatastoreFiles returns what is recorded below a datastore folder.
func (db *DB) ListDatastoreFiles(ctx context.Context, workspace, datastore, prefix string) ([]*wharf.DatastoreFile, error) {
	below := ""
	if strings.Trim(prefix, "/") != "" {
		p, err := wharf.CleanDatastorePath(prefix)
		if err != nil {
			return nil, err
		}
		below = p + "/"
	}
	// substr compares characters exactly in both dialects, where a range
	// would follow PostgreSQL's collation and LIKE SQLite's case folding.
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.DatastoreFile, error) {
		f := &wharf.DatastoreFile{Workspace: workspace, Datastore: datastore}
		var created int64
		err := s.Scan(&f.Path, &f.Digest, &f.Kind, &created)
		f.CreatedAt = time.UnixMilli(created).UTC()
		return f, err
	}, `SELECT path, digest, kind, created_at FROM datastore_files
		WHERE workspace = ? AND datastore = ? AND substr(path, 1, ?) = ? ORDER BY path`,
		workspace, datastore, utf8.RuneCountInString(below), below)
	return out, wrapErr("list datastore files", err)
}
