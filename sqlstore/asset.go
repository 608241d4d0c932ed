package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
)

const assetColumns = `workspace, kind, name, version, spec, digest, description, tags, created_by, created_at`

// CreateAsset stores a new asset version; see wharf.AssetService.
func (db *DB) CreateAsset(ctx context.Context, a *wharf.Asset) error {
	if err := wharf.ValidateAssetName("name", a.Name); err != nil {
		return err
	}
	if a.Version == wharf.LatestVersion {
		return wharf.Errorf(wharf.EINVALID, "%q is a label, not a version", a.Version).WithField("version")
	}
	if len(a.Spec) == 0 {
		a.Spec = []byte("{}")
	}
	tags, err := encodeTags(a.Tags)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, a.Workspace); err != nil {
			return err
		}
		// The counter row doubles as the name's lock, so concurrent
		// creations of one name number their versions one after another.
		var last int64
		err := c.queryRow(ctx, `INSERT INTO asset_counters (workspace, kind, name, last) VALUES (?, ?, ?, 0)
			ON CONFLICT (workspace, kind, name) DO UPDATE SET last = asset_counters.last
			RETURNING last`, a.Workspace, a.Kind, a.Name).Scan(&last)
		if err != nil {
			return err
		}
		if a.Version == "" {
			last++
			a.Version = strconv.FormatInt(last, 10)
		} else {
			existing, err := scanAsset(c.queryRow(ctx, `SELECT `+assetColumns+` FROM assets
				WHERE workspace = ? AND kind = ? AND name = ? AND version = ?`,
				a.Workspace, a.Kind, a.Name, a.Version))
			switch {
			case err == nil:
				if existing.Digest == a.Digest && jsonEqual(existing.Spec, a.Spec) {
					*a = *existing
					return errAssetUnchanged
				}
				return wharf.Errorf(wharf.ECONFLICT,
					"%s %s version %s already exists with different content; versions never change, create a new one",
					kindNoun(a.Kind), a.Name, a.Version).WithField("version")
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if n, err := strconv.ParseInt(a.Version, 10, 64); err == nil && n > last {
				last = n
			}
		}
		if _, err := c.exec(ctx, `UPDATE asset_counters SET last = ? WHERE workspace = ? AND kind = ? AND name = ?`,
			last, a.Workspace, a.Kind, a.Name); err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO assets (`+assetColumns+`, seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
				(SELECT COALESCE(MAX(seq), 0) + 1 FROM assets WHERE workspace = ? AND kind = ? AND name = ?))`,
			a.Workspace, a.Kind, a.Name, a.Version, string(a.Spec), a.Digest, a.Description, tags,
			a.CreatedBy, now.UnixMilli(), a.Workspace, a.Kind, a.Name)
		if err != nil {
			return err
		}
		// The asset's content is the workspace's from now on, whatever
		// else names it (see wharf.BlobRefService).
		return addBlobRefs(ctx, c, a.Workspace, a.Digest)
	})
	if errors.Is(err, errAssetUnchanged) {
		return nil
	}
	if err != nil {
		return wrapErr("create asset", err)
	}
	a.CreatedAt = time.UnixMilli(now.UnixMilli()).UTC()
	if a.Tags == nil {
		a.Tags = map[string]string{}
	}
	return nil
}

// errAssetUnchanged ends the transaction of a create that found the same
// version already there.
var errAssetUnchanged = errors.New("asset exists unchanged")

// FindAsset returns one version; see wharf.AssetService.
func (db *DB) FindAsset(ctx context.Context, workspace, kind, name, version string) (*wharf.Asset, error) {
	var row *sql.Row
	if version == "" || version == wharf.LatestVersion {
		row = db.reader().queryRow(ctx, `SELECT `+assetColumns+` FROM assets
			WHERE workspace = ? AND kind = ? AND name = ? ORDER BY seq DESC LIMIT 1`, workspace, kind, name)
	} else {
		row = db.reader().queryRow(ctx, `SELECT `+assetColumns+` FROM assets
			WHERE workspace = ? AND kind = ? AND name = ? AND version = ?`, workspace, kind, name, version)
	}
	a, err := scanAsset(row)
	if errors.Is(err, sql.ErrNoRows) {
		if version == "" {
			version = wharf.LatestVersion
		}
		return nil, wharf.Errorf(wharf.ENOTFOUND, "%s %s version %s not found in workspace %q",
			kindNoun(kind), name, version, workspace)
	}
	return a, wrapErr("find asset", err)
}

// ListAssets lists versions or names; see wharf.AssetService.
func (db *DB) ListAssets(ctx context.Context, workspace, kind, name string) ([]*wharf.Asset, error) {
	c := db.reader()
	var out []*wharf.Asset
	var err error
	if name != "" {
		out, err = queryList(ctx, c, scanAsset, `SELECT `+assetColumns+` FROM assets
			WHERE workspace = ? AND kind = ? AND name = ? ORDER BY seq DESC`, workspace, kind, name)
	} else {
		out, err = queryList(ctx, c, scanAsset, `SELECT `+assetColumns+` FROM assets a
			WHERE workspace = ? AND kind = ? AND seq = (SELECT MAX(seq) FROM assets b
				WHERE b.workspace = a.workspace AND b.kind = a.kind AND b.name = a.name)
			ORDER BY name`, workspace, kind)
	}
	if err != nil {
		return nil, wrapErr("list assets", err)
	}
	if len(out) == 0 {
		if err := mustWorkspace(ctx, c, workspace); err != nil {
			return nil, wrapErr("list assets", err)
		}
		if name != "" {
			return nil, wharf.Errorf(wharf.ENOTFOUND, "%s %s not found in workspace %q", kindNoun(kind), name, workspace)
		}
	}
	return out, nil
}

func scanAsset(s interface{ Scan(...any) error }) (*wharf.Asset, error) {
	var a wharf.Asset
	var spec, tags string
	var created int64
	if err := s.Scan(&a.Workspace, &a.Kind, &a.Name, &a.Version, &spec, &a.Digest, &a.Description,
		&tags, &a.CreatedBy, &created); err != nil {
		return nil, err
	}
	a.Spec = []byte(spec)
	var err error
	if a.Tags, err = decodeTags(tags); err != nil {
		return nil, err
	}
	a.CreatedAt = time.UnixMilli(created).UTC()
	return &a, nil
}

// kindNoun names an asset kind in messages as az ml does.
func kindNoun(kind string) string {
	switch kind {
	case wharf.AssetData:
		return "data asset"
	case wharf.AssetEnvironment:
		return "environment"
	case wharf.AssetComponent:
		return "component"
	}
	return kind
}

// jsonEqual compares two JSON documents by value, so that key order and
// spacing do not make an unchanged spec look changed.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
