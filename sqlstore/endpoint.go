package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wharfml/wharf"
)

// PutOnlineEndpoint creates or replaces an endpoint. Traffic must name
// existing deployments, checked in the same transaction.
func (db *DB) PutOnlineEndpoint(ctx context.Context, e *wharf.OnlineEndpoint) (bool, error) {
	if err := wharf.ValidateName("name", e.Name); err != nil {
		return false, err
	}
	now := db.now()
	var created bool
	err := db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, e.Workspace); err != nil {
			return err
		}
		var old string
		err := c.queryRow(ctx, `SELECT doc FROM online_endpoints WHERE workspace = ? AND name = ?`, e.Workspace, e.Name).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			e.CreatedAt = now
		case err != nil:
			return err
		default:
			var prev wharf.OnlineEndpoint
			if err := json.Unmarshal([]byte(old), &prev); err != nil {
				return err
			}
			e.CreatedAt = prev.CreatedAt
		}
		e.UpdatedAt = now
		for _, m := range []map[string]int{e.Traffic, e.MirrorTraffic} {
			for d := range m {
				var one int
				err := c.queryRow(ctx, `SELECT 1 FROM online_deployments WHERE workspace = ? AND endpoint = ? AND name = ?`,
					e.Workspace, e.Name, d).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					return wharf.Errorf(wharf.EINVALID, "traffic names deployment %q, which endpoint %s does not have", d, e.Name).WithField("traffic")
				}
				if err != nil {
					return err
				}
			}
		}
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if created {
			_, err = c.exec(ctx, `INSERT INTO online_endpoints (workspace, name, doc) VALUES (?, ?, ?)`, e.Workspace, e.Name, string(doc))
		} else {
			_, err = c.exec(ctx, `UPDATE online_endpoints SET doc = ? WHERE workspace = ? AND name = ?`, string(doc), e.Workspace, e.Name)
		}
		return err
	})
	return created, wrapErr("put online endpoint", err)
}

// FindOnlineEndpoint returns one endpoint.
func (db *DB) FindOnlineEndpoint(ctx context.Context, workspace, name string) (*wharf.OnlineEndpoint, error) {
	var doc string
	err := db.reader().queryRow(ctx, `SELECT doc FROM online_endpoints WHERE workspace = ? AND name = ?`, workspace, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "online endpoint %q not found in workspace %q", name, workspace)
	}
	if err != nil {
		return nil, wrapErr("find online endpoint", err)
	}
	return decodeEndpoint(workspace, doc)
}

// ListOnlineEndpoints returns a workspace's endpoints by name.
func (db *DB) ListOnlineEndpoints(ctx context.Context, workspace string) ([]*wharf.OnlineEndpoint, error) {
	c := db.reader()
	out, err := queryList(ctx, c, func(s rowScanner) (*wharf.OnlineEndpoint, error) {
		var doc string
		if err := s.Scan(&doc); err != nil {
			return nil, err
		}
		return decodeEndpoint(workspace, doc)
	}, `SELECT doc FROM online_endpoints WHERE workspace = ? ORDER BY name`, workspace)
	out, err = unlessOwnerMissing(ctx, c, out, err, mustWorkspace, workspace)
	return out, wrapErr("list online endpoints", err)
}

// DeleteOnlineEndpoint removes an endpoint and its deployments.
func (db *DB) DeleteOnlineEndpoint(ctx context.Context, workspace, name string) error {
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM online_deployments WHERE workspace = ? AND endpoint = ?`, workspace, name); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "online endpoint %q not found in workspace %q", name, workspace),
			`DELETE FROM online_endpoints WHERE workspace = ? AND name = ?`, workspace, name)
	})
	return wrapErr("delete online endpoint", err)
}

// PutOnlineDeployment creates or replaces a deployment.
func (db *DB) PutOnlineDeployment(ctx context.Context, d *wharf.OnlineDeployment) (bool, error) {
	if err := wharf.ValidateName("name", d.Name); err != nil {
		return false, err
	}
	now := db.now()
	var created bool
	err := db.inTx(ctx, func(c conn) error {
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM online_endpoints WHERE workspace = ? AND name = ?`, d.Workspace, d.Endpoint).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.Errorf(wharf.ENOTFOUND, "online endpoint %q not found in workspace %q", d.Endpoint, d.Workspace)
		}
		if err != nil {
			return err
		}
		var old string
		err = c.queryRow(ctx, `SELECT doc FROM online_deployments WHERE workspace = ? AND endpoint = ? AND name = ?`,
			d.Workspace, d.Endpoint, d.Name).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			d.CreatedAt = now
		case err != nil:
			return err
		default:
			var prev wharf.OnlineDeployment
			if err := json.Unmarshal([]byte(old), &prev); err != nil {
				return err
			}
			d.CreatedAt = prev.CreatedAt
		}
		d.UpdatedAt = now
		doc, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if created {
			_, err = c.exec(ctx, `INSERT INTO online_deployments (workspace, endpoint, name, doc) VALUES (?, ?, ?, ?)`,
				d.Workspace, d.Endpoint, d.Name, string(doc))
		} else {
			_, err = c.exec(ctx, `UPDATE online_deployments SET doc = ? WHERE workspace = ? AND endpoint = ? AND name = ?`,
				string(doc), d.Workspace, d.Endpoint, d.Name)
		}
		return err
	})
	return created, wrapErr("put online deployment", err)
}

// FindOnlineDeployment returns one deployment.
func (db *DB) FindOnlineDeployment(ctx context.Context, workspace, endpoint, name string) (*wharf.OnlineDeployment, error) {
	var doc string
	err := db.reader().queryRow(ctx, `SELECT doc FROM online_deployments WHERE workspace = ? AND endpoint = ? AND name = ?`,
		workspace, endpoint, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "deployment %q not found in online endpoint %q", name, endpoint)
	}
	if err != nil {
		return nil, wrapErr("find online deployment", err)
	}
	return decodeDeployment(workspace, doc)
}

// ListOnlineDeployments returns an endpoint's deployments by name.
func (db *DB) ListOnlineDeployments(ctx context.Context, workspace, endpoint string) ([]*wharf.OnlineDeployment, error) {
	if _, err := db.FindOnlineEndpoint(ctx, workspace, endpoint); err != nil {
		return nil, err
	}
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.OnlineDeployment, error) {
		var doc string
		if err := s.Scan(&doc); err != nil {
			return nil, err
		}
		return decodeDeployment(workspace, doc)
	}, `SELECT doc FROM online_deployments WHERE workspace = ? AND endpoint = ? ORDER BY name`, workspace, endpoint)
	return out, wrapErr("list online deployments", err)
}

// DeleteOnlineDeployment removes a deployment that takes no traffic.
func (db *DB) DeleteOnlineDeployment(ctx context.Context, workspace, endpoint, name string) error {
	err := db.inTx(ctx, func(c conn) error {
		var doc string
		err := c.queryRow(ctx, `SELECT doc FROM online_endpoints WHERE workspace = ? AND name = ?`, workspace, endpoint).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.Errorf(wharf.ENOTFOUND, "online endpoint %q not found in workspace %q", endpoint, workspace)
		}
		if err != nil {
			return err
		}
		e, err := decodeEndpoint(workspace, doc)
		if err != nil {
			return err
		}
		if e.Traffic[name] > 0 || e.MirrorTraffic[name] > 0 {
			return wharf.Errorf(wharf.ECONFLICT, "deployment %s still takes traffic on endpoint %s; shift its traffic to 0 first", name, endpoint)
		}
		err = mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "deployment %q not found in online endpoint %q", name, endpoint),
			`DELETE FROM online_deployments WHERE workspace = ? AND endpoint = ? AND name = ?`, workspace, endpoint, name)
		if err != nil {
			return err
		}
		if _, ok := e.Traffic[name]; ok {
			delete(e.Traffic, name)
			delete(e.MirrorTraffic, name)
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = c.exec(ctx, `UPDATE online_endpoints SET doc = ? WHERE workspace = ? AND name = ?`, string(b), workspace, endpoint)
			return err
		}
		return nil
	})
	return wrapErr("delete online deployment", err)
}

func decodeEndpoint(workspace, doc string) (*wharf.OnlineEndpoint, error) {
	var e wharf.OnlineEndpoint
	if err := json.Unmarshal([]byte(doc), &e); err != nil {
		return nil, fmt.Errorf("decode online endpoint: %w", err)
	}
	e.Workspace = workspace
	if e.Traffic == nil {
		e.Traffic = map[string]int{}
	}
	if e.MirrorTraffic == nil {
		e.MirrorTraffic = map[string]int{}
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	return &e, nil
}

func decodeDeployment(workspace, doc string) (*wharf.OnlineDeployment, error) {
	var d wharf.OnlineDeployment
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("decode online deployment: %w", err)
	}
	d.Workspace = workspace
	return &d, nil
}
