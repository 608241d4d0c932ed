package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wharfml/wharf"
)

const computeColumns = `workspace, name, type, size, min_instances, max_instances, tier,
	idle_time_before_scale_down, location, description, tags, provisioning_state,
	created_at, updated_at, address, sandbox, sandbox_read_only_paths`

// FindCompute returns the compute called name in workspace.
func (db *DB) FindCompute(ctx context.Context, workspace, name string) (*wharf.Compute, error) {
	row := db.reader().queryRow(ctx, `SELECT `+computeColumns+` FROM computes
		WHERE workspace = ? AND name = ?`, workspace, name)
	c, err := scanCompute(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "compute %q not found in workspace %q", name, workspace)
	}
	return c, wrapErr("find compute", err)
}

// ListComputes returns the workspace's computes ordered by name; ENOTFOUND
// if the workspace does not exist, so that a typo is not mistaken for an
// empty workspace.
func (db *DB) ListComputes(ctx context.Context, workspace string) ([]*wharf.Compute, error) {
	c := db.reader()
	out, err := queryList(ctx, c, scanCompute, `SELECT `+computeColumns+` FROM computes
		WHERE workspace = ? ORDER BY name`, workspace)
	out, err = unlessOwnerMissing(ctx, c, out, err, mustWorkspace, workspace)
	return out, wrapErr("list computes", err)
}

// PutCompute creates or updates a compute; see PutWorkspace for why
// insert-or-nothing then update is race-free.
func (db *DB) PutCompute(ctx context.Context, cp *wharf.Compute) (bool, error) {
	now := db.now()
	tags, err := encodeTags(cp.Tags)
	if err != nil {
		return false, err
	}
	readOnly, err := encodePaths(cp.SandboxReadOnlyPaths)
	if err != nil {
		return false, err
	}
	var created bool
	createdAt := now
	err = db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, cp.Workspace); err != nil {
			return err
		}
		created, err = inserted(ctx, c, `INSERT INTO computes (`+computeColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace, name) DO NOTHING`,
			cp.Workspace, cp.Name, cp.Type, cp.Size, cp.MinInstances, cp.MaxInstances, cp.Tier,
			cp.IdleTimeBeforeScaleDown, cp.Location, cp.Description, tags, cp.ProvisioningState,
			db.timeArg(now), db.timeArg(now), cp.Address, sandboxed(cp), readOnly)
		if err != nil || created {
			return err
		}
		return c.queryRow(ctx, `UPDATE computes SET type = ?, size = ?, min_instances = ?,
			max_instances = ?, tier = ?, idle_time_before_scale_down = ?, location = ?,
			description = ?, tags = ?, provisioning_state = ?, updated_at = ?, address = ?, sandbox = ?,
			sandbox_read_only_paths = ?
			WHERE workspace = ? AND name = ? RETURNING created_at`,
			cp.Type, cp.Size, cp.MinInstances, cp.MaxInstances, cp.Tier,
			cp.IdleTimeBeforeScaleDown, cp.Location, cp.Description, tags, cp.ProvisioningState,
			db.timeArg(now), cp.Address, sandboxed(cp), readOnly, cp.Workspace, cp.Name,
		).Scan(timeDest{&createdAt})
	})
	if err != nil {
		if db.isForeignKey(err) {
			// The workspace was deleted between the check and the insert.
			return false, wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", cp.Workspace)
		}
		return false, wrapErr("put compute", err)
	}
	cp.CreatedAt, cp.UpdatedAt = createdAt, now
	return created, nil
}

// DeleteCompute removes a compute.
func (db *DB) DeleteCompute(ctx context.Context, workspace, name string) error {
	return wrapErr("delete compute", mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "compute %q not found in workspace %q", name, workspace),
		`DELETE FROM computes WHERE workspace = ? AND name = ?`, workspace, name))
}

func scanCompute(s interface{ Scan(...any) error }) (*wharf.Compute, error) {
	var c wharf.Compute
	var tags string
	var sandbox bool
	var readOnly string
	if err := s.Scan(&c.Workspace, &c.Name, &c.Type, &c.Size, &c.MinInstances, &c.MaxInstances,
		&c.Tier, &c.IdleTimeBeforeScaleDown, &c.Location, &c.Description, &tags,
		&c.ProvisioningState, timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}, &c.Address, &sandbox, &readOnly); err != nil {
		return nil, err
	}
	if c.Type == wharf.ComputeTypeRay {
		c.Sandbox = &sandbox
	}
	if err := json.Unmarshal([]byte(readOnly), &c.SandboxReadOnlyPaths); err != nil {
		return nil, fmt.Errorf("sqlstore: decode sandbox_read_only_paths: %w", err)
	}
	if len(c.SandboxReadOnlyPaths) == 0 {
		c.SandboxReadOnlyPaths = nil
	}
	var err error
	c.Tags, err = decodeTags(tags)
	return &c, err
}

// encodePaths is a compute's sandbox_read_only_paths column: a JSON
// array, empty when there are none.
func encodePaths(paths []string) (string, error) {
	if len(paths) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(paths)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode sandbox_read_only_paths: %w", err)
	}
	return string(b), nil
}

// sandboxed is the compute's sandbox column: true unless it says false.
func sandboxed(c *wharf.Compute) bool { return c.Sandbox == nil || *c.Sandbox }

// mustWorkspace returns ENOTFOUND naming the workspace if it is missing.
func mustWorkspace(ctx context.Context, c conn, workspace string) error {
	ok, err := workspaceExists(ctx, c, workspace)
	if err != nil {
		return err
	}
	if !ok {
		return wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", workspace)
	}
	return nil
}
