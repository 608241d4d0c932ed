package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/wharfml/wharf"
)

// CreateRoleAssignment stores a; it fills ID (when empty), CreatedAt and
// PrincipalName and PrincipalType. The principal is a service principal's
// app id or a user's object id.
func (db *DB) CreateRoleAssignment(ctx context.Context, a *wharf.RoleAssignment) error {
	now := db.now()
	id := a.ID
	if id == "" {
		id = uuid.NewString()
	}
	var name, ptype string
	err := db.inTx(ctx, func(c conn) error {
		var err error
		if name, ptype, err = principalName(ctx, c, a.PrincipalID); err != nil {
			return err
		}
		var one int
		err = c.queryRow(ctx, `SELECT 1 FROM role_assignments
			WHERE principal_id = ? AND role_name = ? AND scope = ?`,
			a.PrincipalID, a.RoleName, a.Scope).Scan(&one)
		if err == nil {
			return wharf.Errorf(wharf.ECONFLICT, "principal %q already has role %q at scope %q",
				a.PrincipalID, a.RoleName, a.Scope)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO role_assignments (id, principal_id, principal_type, role_name, scope, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, id, a.PrincipalID, ptype, a.RoleName, a.Scope, db.timeArg(now))
		return err
	})
	switch {
	case err == nil:
	case db.isUnique(err):
		// Same id, or the same grant made concurrently.
		return wharf.Errorf(wharf.ECONFLICT, "role assignment %q conflicts with an existing one", id)
	default:
		return wrapErr("create role assignment", err)
	}
	a.ID, a.CreatedAt, a.PrincipalName, a.PrincipalType = id, now, name, ptype
	return nil
}

// ListRoleAssignments returns the assignments matching f, ordered by scope,
// role and principal. The principal's name is joined in rather than copied,
// so it is never stale.
func (db *DB) ListRoleAssignments(ctx context.Context, f wharf.RoleAssignmentFilter) ([]*wharf.RoleAssignment, error) {
	var where []string
	var args []any
	for _, cond := range []struct{ col, val string }{
		{"ra.principal_id", f.PrincipalID},
		{"ra.scope", f.Scope},
		{"ra.role_name", f.RoleName},
	} {
		if cond.val != "" {
			where = append(where, cond.col+" = ?")
			args = append(args, cond.val)
		}
	}
	q := `SELECT ra.id, ra.principal_id, COALESCE(sp.display_name, u.user_principal_name), ra.principal_type,
			ra.role_name, ra.scope, ra.created_at
		FROM role_assignments ra
		LEFT JOIN service_principals sp ON sp.app_id = ra.principal_id
		LEFT JOIN users u ON u.object_id = ra.principal_id
		WHERE (sp.app_id IS NOT NULL OR u.object_id IS NOT NULL)`
	if len(where) > 0 {
		q += " AND " + strings.Join(where, " AND ")
	}
	q += " ORDER BY ra.scope, ra.role_name, ra.principal_id, ra.id"
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.RoleAssignment, error) {
		var a wharf.RoleAssignment
		return &a, s.Scan(&a.ID, &a.PrincipalID, &a.PrincipalName, &a.PrincipalType, &a.RoleName, &a.Scope,
			timeDest{&a.CreatedAt})
	}, q, args...)
	if err != nil {
		return nil, wrapErr("list role assignments", err)
	}
	return out, nil
}

// FindCallerGrants reads a principal and its role assignments in one
// statement: the principal (a service principal by app id, else a user by
// object id) joined to its assignments, one row per assignment, or one row
// with NULL assignment columns when it has none. Nothing is cached, so an
// assignment removed is gone from the next request's read.
func (db *DB) FindCallerGrants(ctx context.Context, id string) (*wharf.CallerGrants, error) {
	var g *wharf.CallerGrants
	err := eachRow(ctx, db.reader(), `SELECT p.kind, p.name, `+grantCols+`
		FROM (SELECT 0 AS kind, app_id AS id, display_name AS name FROM service_principals WHERE app_id = ?
			UNION ALL
			SELECT 1, object_id, user_principal_name FROM users WHERE object_id = ?) p
		LEFT JOIN role_assignments ra ON ra.principal_id = p.id
		ORDER BY p.kind, ra.scope, ra.role_name, ra.id`, []any{id, id}, func(s rowScanner) error {
		var kind int
		var name string
		var gr grantRow
		if err := s.Scan(append([]any{&kind, &name}, gr.dest()...)...); err != nil {
			return err
		}
		if g == nil {
			g = &wharf.CallerGrants{
				Caller:      &wharf.Caller{PrincipalID: id, DisplayName: name, User: kind == 1},
				Assignments: []*wharf.RoleAssignment{},
			}
		} else if g.Caller.User != (kind == 1) {
			// A user's object id that is also a service principal's app
			// id cannot be made (CreateUser refuses it); the service
			// principal, read first, is the caller.
			return nil
		}
		if a := gr.assignment(id, name); a != nil {
			g.Assignments = append(g.Assignments, a)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("find caller grants", err)
	}
	if g == nil {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "principal %q not found", id)
	}
	return g, nil
}

// grantCols are the role assignment columns of a principal LEFT JOINed to
// its assignments as ra, which grantRow scans.
const grantCols = `ra.id, ra.principal_type, ra.role_name, ra.scope, ra.created_at`

// grantRow is one row's role assignment columns (grantCols), NULL where
// the principal has no assignment.
type grantRow struct {
	id, ptype, role, scope sql.NullString
	created                time.Time
}

// dest returns the scan destinations of grantCols.
func (r *grantRow) dest() []any {
	return []any{&r.id, &r.ptype, &r.role, &r.scope, timeDest{&r.created}}
}

// assignment returns the row's assignment of the principal id named name,
// or nil when the row has none.
func (r *grantRow) assignment(id, name string) *wharf.RoleAssignment {
	if !r.id.Valid {
		return nil
	}
	return &wharf.RoleAssignment{ID: r.id.String, PrincipalID: id, PrincipalName: name,
		PrincipalType: r.ptype.String, RoleName: r.role.String, Scope: r.scope.String, CreatedAt: r.created}
}

// DeleteRoleAssignment removes the assignment with that id.
func (db *DB) DeleteRoleAssignment(ctx context.Context, id string) error {
	return wrapErr("delete role assignment", mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "role assignment %q not found", id),
		`DELETE FROM role_assignments WHERE id = ?`, id))
}

// principalName returns the name and type of the principal a role
// assignment names: a service principal's app id or a user's object id.
func principalName(ctx context.Context, c conn, id string) (name, ptype string, err error) {
	err = c.queryRow(ctx, `SELECT display_name FROM service_principals WHERE app_id = ?`, id).Scan(&name)
	if err == nil {
		return name, wharf.PrincipalTypeServicePrincipal, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", "", err
	}
	err = c.queryRow(ctx, `SELECT user_principal_name FROM users WHERE object_id = ?`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", wharf.Errorf(wharf.ENOTFOUND, "principal %q not found", id)
	}
	return name, wharf.PrincipalTypeUser, err
}
