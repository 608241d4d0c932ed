package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wharfml/wharf"
)

const userCols = `object_id, user_principal_name, display_name, password_hash,
	force_change_password, password_changed_at, created_at`

func scanUser(row interface{ Scan(...any) error }) (*wharf.User, error) {
	var u wharf.User
	err := row.Scan(&u.ObjectID, &u.UserPrincipalName, &u.DisplayName, &u.PasswordHash,
		&u.ForceChangePassword, timeDest{&u.PasswordChangedAt}, timeDest{&u.CreatedAt})
	return &u, err
}

// CreateUser stores a new user and sets its CreatedAt and
// PasswordChangedAt. A user's object id must not be a service principal's
// app id either, since role assignments name both alike.
func (db *DB) CreateUser(ctx context.Context, u *wharf.User) error {
	now := db.now()
	err := db.inTx(ctx, func(c conn) error {
		var objectID, upn string
		err := c.queryRow(ctx, `SELECT object_id, user_principal_name FROM users
			WHERE object_id = ? OR user_principal_name = ? LIMIT 1`, u.ObjectID, u.UserPrincipalName).Scan(&objectID, &upn)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case objectID == u.ObjectID:
			return wharf.Errorf(wharf.ECONFLICT, "a user with object id %q already exists", u.ObjectID)
		default:
			return wharf.Errorf(wharf.ECONFLICT, "a user named %q already exists", u.UserPrincipalName)
		}
		if _, _, err := principalName(ctx, c, u.ObjectID); err == nil {
			return wharf.Errorf(wharf.ECONFLICT, "id %q already names a service principal", u.ObjectID)
		}
		_, err = c.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ObjectID, u.UserPrincipalName, u.DisplayName, u.PasswordHash, u.ForceChangePassword,
			db.timeArg(now), db.timeArg(now))
		return err
	})
	if db.isUnique(err) {
		return wharf.Errorf(wharf.ECONFLICT, "user %q conflicts with one created at the same time", u.UserPrincipalName)
	}
	if err != nil {
		return wrapErr("create user", err)
	}
	u.CreatedAt, u.PasswordChangedAt = now, now
	return nil
}

// FindUser looks a user up by object id or user principal name.
func (db *DB) FindUser(ctx context.Context, id string) (*wharf.User, error) {
	u, err := scanUser(db.reader().queryRow(ctx, `SELECT `+userCols+` FROM users
		WHERE object_id = ? OR user_principal_name = ?
		ORDER BY CASE WHEN object_id = ? THEN 0 ELSE 1 END LIMIT 1`, id, id, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "user %q not found", id)
	}
	if err != nil {
		return nil, wrapErr("find user", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by user principal name.
func (db *DB) ListUsers(ctx context.Context) ([]*wharf.User, error) {
	out, err := queryList(ctx, db.reader(), scanUser, `SELECT `+userCols+` FROM users ORDER BY user_principal_name`)
	return out, wrapErr("list users", err)
}

// DeleteUser removes the user, its sessions and its role assignments in one
// transaction.
func (db *DB) DeleteUser(ctx context.Context, objectID string) error {
	err := db.inTx(ctx, func(c conn) error {
		for _, q := range []string{
			`DELETE FROM user_sessions WHERE user_id = ?`,
			`DELETE FROM role_assignments WHERE principal_id = ?`,
		} {
			if _, err := c.exec(ctx, q, objectID); err != nil {
				return err
			}
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "user %q not found", objectID),
			`DELETE FROM users WHERE object_id = ?`, objectID)
	})
	return wrapErr("delete user", err)
}

// SetUserPassword replaces the user's password hash and ends its sessions.
func (db *DB) SetUserPassword(ctx context.Context, objectID, hash string, force bool) error {
	now := db.now()
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "user %q not found", objectID),
			`UPDATE users SET password_hash = ?, force_change_password = ?,
			password_changed_at = ? WHERE object_id = ?`, hash, force, db.timeArg(now), objectID)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `DELETE FROM user_sessions WHERE user_id = ?`, objectID)
		return err
	})
	return wrapErr("set user password", err)
}

// CreateSession stores s; its times are the caller's, whose clock decides
// expiry.
func (db *DB) CreateSession(ctx context.Context, s *wharf.Session) error {
	_, err := db.writer().exec(ctx, `INSERT INTO user_sessions (id_hash, user_id, created_at, last_seen_at)
		VALUES (?, ?, ?, ?)`, s.IDHash, s.UserID, db.timeArg(normTime(s.CreatedAt)), db.timeArg(normTime(s.LastSeenAt)))
	switch {
	case err == nil:
		return nil
	case db.isForeignKey(err):
		return wharf.Errorf(wharf.ENOTFOUND, "user %q not found", s.UserID)
	case db.isUnique(err):
		return wharf.Errorf(wharf.ECONFLICT, "session already exists")
	}
	return wrapErr("create session", err)
}

// FindSession returns the session whose id hashes to idHash.
func (db *DB) FindSession(ctx context.Context, idHash string) (*wharf.Session, error) {
	var s wharf.Session
	err := db.reader().queryRow(ctx, `SELECT id_hash, user_id, created_at, last_seen_at
		FROM user_sessions WHERE id_hash = ?`, idHash).Scan(&s.IDHash, &s.UserID,
		timeDest{&s.CreatedAt}, timeDest{&s.LastSeenAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "session not found")
	}
	if err != nil {
		return nil, wrapErr("find session", err)
	}
	return &s, nil
}

// TouchSession records activity on a session, for its idle expiry.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	err := mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "session not found"),
		`UPDATE user_sessions SET last_seen_at = ? WHERE id_hash = ?`, db.timeArg(normTime(at)), idHash)
	return wrapErr("touch session", err)
}

// DeleteSession ends a session; ending one that is gone is not an error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.writer().exec(ctx, `DELETE FROM user_sessions WHERE id_hash = ?`, idHash)
	return wrapErr("delete session", err)
}

// FindUserGrants reads the user whose object id is objectID joined to its
// role assignments, one row per assignment (or one with NULL assignment
// columns when it has none), in one statement. Nothing is cached, so an
// assignment removed is gone from the next request's read.
func (db *DB) FindUserGrants(ctx context.Context, objectID string) (*wharf.UserGrants, error) {
	g, err := db.userGrants(ctx, false, `FROM users u
		LEFT JOIN role_assignments ra ON ra.principal_id = u.object_id
		WHERE u.object_id = ?`, objectID)
	if err != nil {
		return nil, wrapErr("find user grants", err)
	}
	if g == nil {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "user %q not found", objectID)
	}
	return g, nil
}

// FindSessionGrants reads the session whose id hashes to idHash joined to
// its user and the user's role assignments in one statement, as
// FindUserGrants does for a user. A session whose user is gone is not
// found.
func (db *DB) FindSessionGrants(ctx context.Context, idHash string) (*wharf.UserGrants, error) {
	g, err := db.userGrants(ctx, true, `FROM user_sessions s
		JOIN users u ON u.object_id = s.user_id
		LEFT JOIN role_assignments ra ON ra.principal_id = u.object_id
		WHERE s.id_hash = ?`, idHash)
	if err != nil {
		return nil, wrapErr("find session grants", err)
	}
	if g == nil {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "session not found")
	}
	return g, nil
}

// userGrants runs the one statement of FindUserGrants or, with session,
// FindSessionGrants: from is its FROM and WHERE clauses, whose one
// parameter is arg. It returns nil when no row matched.
func (db *DB) userGrants(ctx context.Context, session bool, from, arg string) (*wharf.UserGrants, error) {
	cols := `SELECT u.object_id, u.user_principal_name, u.display_name, u.password_hash,
		u.force_change_password, u.password_changed_at, u.created_at, ` + grantCols
	if session {
		cols += `, s.id_hash, s.created_at, s.last_seen_at`
	}
	var g *wharf.UserGrants
	err := eachRow(ctx, db.reader(), cols+" "+from+" ORDER BY ra.scope, ra.role_name, ra.id", []any{arg}, func(s rowScanner) error {
		var u wharf.User
		var gr grantRow
		var sess wharf.Session
		dest := append([]any{&u.ObjectID, &u.UserPrincipalName, &u.DisplayName, &u.PasswordHash,
			&u.ForceChangePassword, timeDest{&u.PasswordChangedAt}, timeDest{&u.CreatedAt}}, gr.dest()...)
		if session {
			dest = append(dest, &sess.IDHash, timeDest{&sess.CreatedAt}, timeDest{&sess.LastSeenAt})
		}
		if err := s.Scan(dest...); err != nil {
			return err
		}
		if g == nil {
			g = &wharf.UserGrants{User: &u, Assignments: []*wharf.RoleAssignment{}}
			if session {
				sess.UserID = u.ObjectID
				g.Session = &sess
			}
		}
		if a := gr.assignment(u.ObjectID, u.UserPrincipalName); a != nil {
			g.Assignments = append(g.Assignments, a)
		}
		return nil
	})
	return g, err
}
