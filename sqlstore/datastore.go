package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wharfml/wharf"
)

const datastoreColumns = `workspace, name, type, is_default, account_name, container_name,
	endpoint, protocol, bucket, region, path_style, credentials, description, tags, created_at, updated_at`

// FindDatastore returns the datastore called name in workspace.
func (db *DB) FindDatastore(ctx context.Context, workspace, name string) (*wharf.Datastore, error) {
	row := db.reader().queryRow(ctx, `SELECT `+datastoreColumns+` FROM datastores
		WHERE workspace = ? AND name = ?`, workspace, name)
	d, err := scanDatastore(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "datastore %q not found in workspace %q", name, workspace)
	}
	return d, wrapErr("find datastore", err)
}

// ListDatastores returns the workspace's datastores ordered by name;
// ENOTFOUND if the workspace does not exist.
func (db *DB) ListDatastores(ctx context.Context, workspace string) ([]*wharf.Datastore, error) {
	c := db.reader()
	out, err := queryList(ctx, c, scanDatastore, `SELECT `+datastoreColumns+` FROM datastores
		WHERE workspace = ? ORDER BY name`, workspace)
	out, err = unlessOwnerMissing(ctx, c, out, err, mustWorkspace, workspace)
	return out, wrapErr("list datastores", err)
}

// PutDatastore creates or updates a datastore. When it is the default, the
// flag is first cleared on the workspace's other datastores in the same
// transaction; a partial unique index backs this up, so two concurrent
// writers can never leave two defaults (the loser gets ECONFLICT).
func (db *DB) PutDatastore(ctx context.Context, d *wharf.Datastore) (bool, error) {
	now := db.now()
	tags, err := encodeTags(d.Tags)
	if err != nil {
		return false, err
	}
	var created bool
	createdAt := now
	err = db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, d.Workspace); err != nil {
			return err
		}
		if d.IsDefault {
			if _, err := c.exec(ctx, `UPDATE datastores SET is_default = ?
				WHERE workspace = ? AND name <> ? AND is_default = ?`,
				false, d.Workspace, d.Name, true); err != nil {
				return err
			}
		}
		created, err = inserted(ctx, c, `INSERT INTO datastores (`+datastoreColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace, name) DO NOTHING`,
			d.Workspace, d.Name, d.Type, d.IsDefault, d.AccountName, d.ContainerName,
			d.Endpoint, d.Protocol, d.Bucket, d.Region, d.PathStyle, d.Credentials,
			d.Description, tags, db.timeArg(now), db.timeArg(now))
		if err != nil || created {
			return err
		}
		// The object versions recorded in another container or bucket
		// say nothing of the one the datastore now names.
		if _, err := c.exec(ctx, `DELETE FROM datastore_objects WHERE workspace = ? AND datastore = ? AND EXISTS (
			SELECT 1 FROM datastores WHERE workspace = ? AND name = ?
				AND (type <> ? OR account_name <> ? OR container_name <> ? OR endpoint <> ? OR bucket <> ?))`,
			d.Workspace, d.Name, d.Workspace, d.Name, d.Type, d.AccountName, d.ContainerName, d.Endpoint, d.Bucket); err != nil {
			return err
		}
		return c.queryRow(ctx, `UPDATE datastores SET type = ?, is_default = ?, account_name = ?,
			container_name = ?, endpoint = ?, protocol = ?, bucket = ?, region = ?, path_style = ?,
			credentials = ?, description = ?, tags = ?, updated_at = ?
			WHERE workspace = ? AND name = ? RETURNING created_at`,
			d.Type, d.IsDefault, d.AccountName, d.ContainerName, d.Endpoint, d.Protocol, d.Bucket,
			d.Region, d.PathStyle, d.Credentials, d.Description, tags, db.timeArg(now), d.Workspace, d.Name,
		).Scan(timeDest{&createdAt})
	})
	switch {
	case err == nil:
	case db.isForeignKey(err):
		return false, wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", d.Workspace)
	case db.isUnique(err):
		return false, wharf.Errorf(wharf.ECONFLICT,
			"datastore %q could not be made the default of workspace %q: another datastore was made default at the same time; retry",
			d.Name, d.Workspace)
	default:
		return false, wrapErr("put datastore", err)
	}
	d.CreatedAt, d.UpdatedAt = createdAt, now
	return created, nil
}

// DeleteDatastore removes a datastore.
func (db *DB) DeleteDatastore(ctx context.Context, workspace, name string) error {
	return wrapErr("delete datastore", mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "datastore %q not found in workspace %q", name, workspace),
		`DELETE FROM datastores WHERE workspace = ? AND name = ?`, workspace, name))
}

func scanDatastore(s interface{ Scan(...any) error }) (*wharf.Datastore, error) {
	var d wharf.Datastore
	var tags string
	if err := s.Scan(&d.Workspace, &d.Name, &d.Type, &d.IsDefault, &d.AccountName,
		&d.ContainerName, &d.Endpoint, &d.Protocol, &d.Bucket, &d.Region, &d.PathStyle, &d.Credentials, &d.Description, &tags,
		timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt}); err != nil {
		return nil, err
	}
	var err error
	d.Tags, err = decodeTags(tags)
	return &d, err
}
