package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

const workspaceColumns = `name, display_name, description, location, resource_group, key_vault,
	application_insights, storage_account, tags, created_at, updated_at`

// FindWorkspace returns the workspace called name.
func (db *DB) FindWorkspace(ctx context.Context, name string) (*wharf.Workspace, error) {
	row := db.reader().queryRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces WHERE name = ?`, name)
	w, err := scanWorkspace(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find workspace: %w", err)
	}
	return w, nil
}

// ListWorkspaces returns every workspace, ordered by name.
func (db *DB) ListWorkspaces(ctx context.Context) ([]*wharf.Workspace, error) {
	out, err := queryList(ctx, db.reader(), scanWorkspace, `SELECT `+workspaceColumns+` FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list workspaces: %w", err)
	}
	return out, nil
}

// PutWorkspace creates or updates w. Insert-or-nothing followed by an update
// is race-free on both engines: a concurrent creator makes the insert a
// no-op, and the update then sees the committed row.
func (db *DB) PutWorkspace(ctx context.Context, w *wharf.Workspace) (bool, error) {
	now := db.now()
	tags, err := encodeTags(w.Tags)
	if err != nil {
		return false, err
	}
	var created bool
	createdAt := now
	err = db.inTx(ctx, func(c conn) error {
		created, err = inserted(ctx, c, `INSERT INTO workspaces (`+workspaceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			w.Name, w.DisplayName, w.Description, w.Location, w.ResourceGroup, w.KeyVault,
			w.ApplicationInsights, w.StorageAccount, tags, db.timeArg(now), db.timeArg(now))
		if err != nil || created {
			return err
		}
		return c.queryRow(ctx, `UPDATE workspaces SET display_name = ?, description = ?, location = ?,
			resource_group = ?, key_vault = ?, application_insights = ?, storage_account = ?,
			tags = ?, updated_at = ? WHERE name = ? RETURNING created_at`,
			w.DisplayName, w.Description, w.Location, w.ResourceGroup, w.KeyVault,
			w.ApplicationInsights, w.StorageAccount, tags, db.timeArg(now), w.Name,
		).Scan(timeDest{&createdAt})
	})
	if err != nil {
		return false, wrapErr("put workspace", err)
	}
	w.CreatedAt, w.UpdatedAt = createdAt, now
	return created, nil
}

// DeleteWorkspace removes the workspace with its datastores, computes, blob
// references, and the secrets and role assignments at its scope or below,
// all in one transaction so that a failure leaves nothing half-deleted.
// Child rows are deleted explicitly, not only by the foreign keys' cascade,
// so the result does not hinge on a connection setting.
func (db *DB) DeleteWorkspace(ctx context.Context, name string) error {
	scope := wharf.WorkspaceScope(name)
	below, belowArgs := scopeAtOrBelow("scope", scope)
	err := db.inTx(ctx, func(c conn) error {
		for _, q := range []string{
			`DELETE FROM datastores WHERE workspace = ?`,
			`DELETE FROM computes WHERE workspace = ?`,
			`DELETE FROM blob_refs WHERE workspace = ?`,
		} {
			if _, err := c.exec(ctx, q, name); err != nil {
				return err
			}
		}
		for _, table := range []string{"secrets", "role_assignments"} {
			if _, err := c.exec(ctx, `DELETE FROM `+table+` WHERE `+below, belowArgs...); err != nil {
				return err
			}
		}
		// A missing workspace rolls back: nothing can have been scoped to a
		// workspace that does not exist, but a stray row is not ours to drop.
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", name),
			`DELETE FROM workspaces WHERE name = ?`, name)
	})
	return wrapErr("delete workspace", err)
}

// scopeAtOrBelow returns a condition matching col equal to scope or nested
// under it, with its arguments. LIKE is avoided: '_' is a wildcard, names
// may contain it, and SQLite's LIKE ignores case.
func scopeAtOrBelow(col, scope string) (string, []any) {
	prefix := scope + "/"
	return "(" + col + " = ? OR substr(" + col + ", 1, ?) = ?)",
		[]any{scope, utf8.RuneCountInString(prefix), prefix}
}

// workspaceExists reports whether the workspace is there, within c's
// transaction.
func workspaceExists(ctx context.Context, c conn, name string) (bool, error) {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM workspaces WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func scanWorkspace(s interface{ Scan(...any) error }) (*wharf.Workspace, error) {
	var w wharf.Workspace
	var tags string
	if err := s.Scan(&w.Name, &w.DisplayName, &w.Description, &w.Location, &w.ResourceGroup,
		&w.KeyVault, &w.ApplicationInsights, &w.StorageAccount, &tags,
		timeDest{&w.CreatedAt}, timeDest{&w.UpdatedAt}); err != nil {
		return nil, err
	}
	var err error
	w.Tags, err = decodeTags(tags)
	return &w, err
}

// encodeTags stores tags as JSON text; a nil map is stored as {} so that
// reads always return a map.
func encodeTags(tags map[string]string) (string, error) {
	if tags == nil {
		return "{}", nil
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode tags: %w", err)
	}
	return string(b), nil
}

func decodeTags(s string) (map[string]string, error) {
	tags := map[string]string{}
	if s == "" {
		return tags, nil
	}
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("sqlstore: decode tags: %w", err)
	}
	return tags, nil
}

// wrapErr passes wharf errors through unchanged and wraps the rest, which
// then stay internal: ErrorCode reports them as EINTERNAL and their text
// never reaches a client.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var we *wharf.Error
	if errors.As(err, &we) {
		return err
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
