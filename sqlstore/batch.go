package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// docRow names one JSON document row: its table, key columns and values.
type docRow struct {
	table string
	cols  []string
	vals  []any
}

func (r docRow) where() string {
	parts := make([]string, len(r.cols))
	for i, c := range r.cols {
		parts[i] = c + " = ?"
	}
	return strings.Join(parts, " AND ")
}

// putDoc inserts or replaces a document in one transaction; stamp sets
// the document's creation and update times, keeping the first creation.
func (db *DB) putDoc(ctx context.Context, r docRow, mustParent func(c conn) error, doc any, stamp func(created time.Time, now time.Time)) (bool, error) {
	now := db.now()
	var created bool
	err := db.inTx(ctx, func(c conn) error {
		if err := mustParent(c); err != nil {
			return err
		}
		var old string
		err := c.queryRow(ctx, `SELECT doc FROM `+r.table+` WHERE `+r.where(), r.vals...).Scan(&old)
		first := now
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
		case err != nil:
			return err
		default:
			var prev struct {
				CreatedAt time.Time `json:"created_at"`
			}
			if json.Unmarshal([]byte(old), &prev) == nil && !prev.CreatedAt.IsZero() {
				first = prev.CreatedAt
			}
		}
		stamp(first, now)
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if created {
			cols := append(append([]string{}, r.cols...), "doc")
			_, err = c.exec(ctx, `INSERT INTO `+r.table+` (`+strings.Join(cols, ", ")+`) VALUES (`+
				strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+`)`, append(append([]any{}, r.vals...), string(b))...)
		} else {
			_, err = c.exec(ctx, `UPDATE `+r.table+` SET doc = ? WHERE `+r.where(), append([]any{string(b)}, r.vals...)...)
		}
		return err
	})
	return created, err
}

// getDoc decodes one document into v, or returns ENOTFOUND with notFound.
func (db *DB) getDoc(ctx context.Context, r docRow, v any, notFound error) error {
	var doc string
	err := db.reader().queryRow(ctx, `SELECT doc FROM `+r.table+` WHERE `+r.where(), r.vals...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(doc), v)
}

// listDocs decodes every matching document, in name order.
func listDocs[T any](ctx context.Context, db *DB, r docRow) ([]*T, error) {
	return queryList(ctx, db.reader(), func(s rowScanner) (*T, error) {
		var doc string
		if err := s.Scan(&doc); err != nil {
			return nil, err
		}
		v := new(T)
		return v, json.Unmarshal([]byte(doc), v)
	}, `SELECT doc FROM `+r.table+` WHERE `+r.where()+` ORDER BY name`, r.vals...)
}

// rowScanner is what *sql.Row and *sql.Rows have in common, so that one
// scan function reads a row found by key and the rows of a list alike.
type rowScanner = interface{ Scan(...any) error }

// queryList runs a query and scans each row with scan. Every list reads
// its rows through it so that none forgets to close them or to check
// rows.Err, whose omission passes a broken read off as a short list. The
// slice is empty rather than nil when nothing matches, so that a list
// encodes as [] and not null.
func queryList[T any](ctx context.Context, c conn, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	out := []T{}
	err := eachRow(ctx, c, query, args, func(s rowScanner) error {
		v, err := scan(s)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unlessOwnerMissing returns list or, when it is empty, the error must
// gives if the list's owner (a workspace, a principal) does not exist:
// only an empty list needs telling apart from a missing owner, so that a
// typo in a name is not mistaken for an owner with nothing in it.
func unlessOwnerMissing[T any](ctx context.Context, c conn, list []T, err error, must func(context.Context, conn, string) error, owner string) ([]T, error) {
	if err == nil && len(list) == 0 {
		err = must(ctx, c, owner)
	}
	if err != nil {
		return nil, err
	}
	return list, nil
}

// eachRow runs a query and calls fn for each row, for reads that fold
// rows into something other than a list.
func eachRow(ctx context.Context, c conn, query string, args []any, fn func(rowScanner) error) error {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// mustChange runs a statement that must change a row and returns unchanged
// when it changed none: an UPDATE or DELETE by key learns that the key is
// absent, and an upsert with a condition that the condition failed, only
// from its count of changed rows.
func mustChange(ctx context.Context, c conn, unchanged error, query string, args ...any) error {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := rowsAffected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return unchanged
	}
	return nil
}

// inserted runs an INSERT ... ON CONFLICT DO NOTHING and reports whether
// it added the row. Creating a row this way, then reading or updating the
// one that was there, is race-free on both engines: a concurrent creator
// makes the insert a no-op, and what follows sees the committed row.
func inserted(ctx context.Context, c conn, query string, args ...any) (bool, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := rowsAffected(res)
	return n == 1, err
}

func (db *DB) deleteDoc(ctx context.Context, r docRow, notFound error) error {
	return mustChange(ctx, db.writer(), notFound, `DELETE FROM `+r.table+` WHERE `+r.where(), r.vals...)
}

func batchEndpointRow(ws, name string) docRow {
	return docRow{"batch_endpoints", []string{"workspace", "name"}, []any{ws, name}}
}

func batchDeploymentRow(ws, ep, name string) docRow {
	return docRow{"batch_deployments", []string{"workspace", "endpoint", "name"}, []any{ws, ep, name}}
}

func errBatchEndpoint(ws, name string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "batch endpoint %q not found in workspace %q", name, ws)
}

// PutBatchEndpoint creates or replaces a batch endpoint.
func (db *DB) PutBatchEndpoint(ctx context.Context, e *wharf.BatchEndpoint) (bool, error) {
	if err := wharf.ValidateName("name", e.Name); err != nil {
		return false, err
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	created, err := db.putDoc(ctx, batchEndpointRow(e.Workspace, e.Name), func(c conn) error {
		if err := mustWorkspace(ctx, c, e.Workspace); err != nil {
			return err
		}
		if e.DefaultDeployment == "" {
			return nil
		}
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM batch_deployments WHERE workspace = ? AND endpoint = ? AND name = ?`,
			e.Workspace, e.Name, e.DefaultDeployment).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.Errorf(wharf.EINVALID, "default deployment %q is not a deployment of %s", e.DefaultDeployment, e.Name).WithField("defaults.deployment_name")
		}
		return err
	}, e, func(first, now time.Time) { e.CreatedAt, e.UpdatedAt = first, now })
	return created, wrapErr("put batch endpoint", err)
}

// FindBatchEndpoint returns one batch endpoint.
func (db *DB) FindBatchEndpoint(ctx context.Context, workspace, name string) (*wharf.BatchEndpoint, error) {
	var e wharf.BatchEndpoint
	if err := db.getDoc(ctx, batchEndpointRow(workspace, name), &e, errBatchEndpoint(workspace, name)); err != nil {
		return nil, wrapErr("find batch endpoint", err)
	}
	e.Workspace = workspace
	return &e, nil
}

// ListBatchEndpoints returns a workspace's batch endpoints.
func (db *DB) ListBatchEndpoints(ctx context.Context, workspace string) ([]*wharf.BatchEndpoint, error) {
	out, err := listDocs[wharf.BatchEndpoint](ctx, db, docRow{"batch_endpoints", []string{"workspace"}, []any{workspace}})
	if err == nil && len(out) == 0 {
		err = mustWorkspace(ctx, db.reader(), workspace)
	}
	for _, e := range out {
		e.Workspace = workspace
	}
	return out, wrapErr("list batch endpoints", err)
}

// DeleteBatchEndpoint removes an endpoint with its deployments.
func (db *DB) DeleteBatchEndpoint(ctx context.Context, workspace, name string) error {
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM batch_deployments WHERE workspace = ? AND endpoint = ?`, workspace, name); err != nil {
			return err
		}
		return mustChange(ctx, c, errBatchEndpoint(workspace, name),
			`DELETE FROM batch_endpoints WHERE workspace = ? AND name = ?`, workspace, name)
	})
	return wrapErr("delete batch endpoint", err)
}

// PutBatchDeployment creates or replaces a batch deployment.
func (db *DB) PutBatchDeployment(ctx context.Context, d *wharf.BatchDeployment) (bool, error) {
	if err := wharf.ValidateName("name", d.Name); err != nil {
		return false, err
	}
	created, err := db.putDoc(ctx, batchDeploymentRow(d.Workspace, d.Endpoint, d.Name), func(c conn) error {
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM batch_endpoints WHERE workspace = ? AND name = ?`, d.Workspace, d.Endpoint).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return errBatchEndpoint(d.Workspace, d.Endpoint)
		}
		return err
	}, d, func(first, now time.Time) { d.CreatedAt, d.UpdatedAt = first, now })
	return created, wrapErr("put batch deployment", err)
}

// FindBatchDeployment returns one batch deployment.
func (db *DB) FindBatchDeployment(ctx context.Context, workspace, endpoint, name string) (*wharf.BatchDeployment, error) {
	var d wharf.BatchDeployment
	nf := wharf.Errorf(wharf.ENOTFOUND, "deployment %q not found in batch endpoint %q", name, endpoint)
	if err := db.getDoc(ctx, batchDeploymentRow(workspace, endpoint, name), &d, nf); err != nil {
		return nil, wrapErr("find batch deployment", err)
	}
	d.Workspace = workspace
	return &d, nil
}

// ListBatchDeployments returns an endpoint's deployments.
func (db *DB) ListBatchDeployments(ctx context.Context, workspace, endpoint string) ([]*wharf.BatchDeployment, error) {
	if _, err := db.FindBatchEndpoint(ctx, workspace, endpoint); err != nil {
		return nil, err
	}
	out, err := listDocs[wharf.BatchDeployment](ctx, db, docRow{"batch_deployments", []string{"workspace", "endpoint"}, []any{workspace, endpoint}})
	for _, d := range out {
		d.Workspace = workspace
	}
	return out, wrapErr("list batch deployments", err)
}

// DeleteBatchDeployment removes a deployment that is not the default.
func (db *DB) DeleteBatchDeployment(ctx context.Context, workspace, endpoint, name string) error {
	e, err := db.FindBatchEndpoint(ctx, workspace, endpoint)
	if err != nil {
		return err
	}
	if e.DefaultDeployment == name {
		return wharf.Errorf(wharf.ECONFLICT, "deployment %s is the default of batch endpoint %s; set another default first", name, endpoint)
	}
	return wrapErr("delete batch deployment", db.deleteDoc(ctx, batchDeploymentRow(workspace, endpoint, name),
		wharf.Errorf(wharf.ENOTFOUND, "deployment %q not found in batch endpoint %q", name, endpoint)))
}
