package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
)

// CreateServicePrincipal stores a new principal and sets its CreatedAt.
// ECONFLICT names whichever identifier is already taken: app id, object id
// and display name are all unique, since each can be used to look the
// principal up.
func (db *DB) CreateServicePrincipal(ctx context.Context, sp *wharf.ServicePrincipal) error {
	now := db.now()
	err := db.inTx(ctx, func(c conn) error {
		var appID, objectID, displayName string
		err := c.queryRow(ctx, `SELECT app_id, object_id, display_name FROM service_principals
			WHERE app_id = ? OR object_id = ? OR display_name = ? LIMIT 1`,
			sp.AppID, sp.ObjectID, sp.DisplayName).Scan(&appID, &objectID, &displayName)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case appID == sp.AppID:
			return wharf.Errorf(wharf.ECONFLICT, "a service principal with app id %q already exists", sp.AppID)
		case objectID == sp.ObjectID:
			return wharf.Errorf(wharf.ECONFLICT, "a service principal with object id %q already exists", sp.ObjectID)
		default:
			return wharf.Errorf(wharf.ECONFLICT, "a service principal named %q already exists", sp.DisplayName)
		}
		_, err = c.exec(ctx, `INSERT INTO service_principals (app_id, object_id, display_name, created_at)
			VALUES (?, ?, ?, ?)`, sp.AppID, sp.ObjectID, sp.DisplayName, db.timeArg(now))
		return err
	})
	if db.isUnique(err) {
		// Lost a race with a concurrent create of the same principal.
		return wharf.Errorf(wharf.ECONFLICT, "service principal %q conflicts with one created at the same time", sp.DisplayName)
	}
	if err != nil {
		return wrapErr("create service principal", err)
	}
	sp.CreatedAt = now
	return nil
}

// FindServicePrincipal looks a principal up by app id, object id or display
// name. Should one principal's display name equal another's id, the id
// wins, so a principal can always be reached by its id.
func (db *DB) FindServicePrincipal(ctx context.Context, id string) (*wharf.ServicePrincipal, error) {
	var sp wharf.ServicePrincipal
	err := db.reader().queryRow(ctx, `SELECT app_id, object_id, display_name, created_at
		FROM service_principals WHERE app_id = ? OR object_id = ? OR display_name = ?
		ORDER BY CASE WHEN app_id = ? THEN 0 WHEN object_id = ? THEN 1 ELSE 2 END LIMIT 1`,
		id, id, id, id, id).Scan(&sp.AppID, &sp.ObjectID, &sp.DisplayName, timeDest{&sp.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", id)
	}
	if err != nil {
		return nil, wrapErr("find service principal", err)
	}
	return &sp, nil
}

// ListServicePrincipals returns every principal ordered by display name.
func (db *DB) ListServicePrincipals(ctx context.Context) ([]*wharf.ServicePrincipal, error) {
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.ServicePrincipal, error) {
		var sp wharf.ServicePrincipal
		return &sp, s.Scan(&sp.AppID, &sp.ObjectID, &sp.DisplayName, timeDest{&sp.CreatedAt})
	}, `SELECT app_id, object_id, display_name, created_at FROM service_principals ORDER BY display_name`)
	if err != nil {
		return nil, wrapErr("list service principals", err)
	}
	return out, nil
}

// DeleteServicePrincipal removes the principal, its credentials and its
// role assignments in one transaction. The children are deleted explicitly
// as well as by cascade, so the result does not hinge on a connection
// setting.
func (db *DB) DeleteServicePrincipal(ctx context.Context, appID string) error {
	err := db.inTx(ctx, func(c conn) error {
		for _, q := range []string{
			`DELETE FROM password_credentials WHERE principal_id = ?`,
			`DELETE FROM federated_credentials WHERE principal_id = ?`,
			`DELETE FROM role_assignments WHERE principal_id = ?`,
		} {
			if _, err := c.exec(ctx, q, appID); err != nil {
				return err
			}
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", appID),
			`DELETE FROM service_principals WHERE app_id = ?`, appID)
	})
	return wrapErr("delete service principal", err)
}

// AddCredential stores c for its principal; with replace, the principal's
// other credentials are removed in the same transaction, so there is no
// moment at which the principal has none or both.
func (db *DB) AddCredential(ctx context.Context, cr *wharf.PasswordCredential, replace bool) error {
	start, end := normTime(cr.StartDate), normTime(cr.EndDate)
	err := db.inTx(ctx, func(c conn) error {
		if err := mustPrincipal(ctx, c, cr.PrincipalID); err != nil {
			return err
		}
		if replace {
			if _, err := c.exec(ctx, `DELETE FROM password_credentials
				WHERE principal_id = ? AND key_id <> ?`, cr.PrincipalID, cr.KeyID); err != nil {
				return err
			}
		}
		return db.insertCredential(ctx, c, cr, start, end)
	})
	switch {
	case err == nil:
	case db.isUnique(err):
		return wharf.Errorf(wharf.ECONFLICT, "credential %q already exists", cr.KeyID)
	case db.isForeignKey(err):
		return wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", cr.PrincipalID)
	default:
		return wrapErr("add credential", err)
	}
	cr.StartDate, cr.EndDate = start, end
	return nil
}

// insertCredential writes one credential row, its dates already
// normalised.
func (db *DB) insertCredential(ctx context.Context, c conn, cr *wharf.PasswordCredential, start, end time.Time) error {
	_, err := c.exec(ctx, `INSERT INTO password_credentials
		(key_id, principal_id, hint, secret_hash, start_date, end_date)
		VALUES (?, ?, ?, ?, ?, ?)`,
		cr.KeyID, cr.PrincipalID, cr.Hint, cr.SecretHash, db.timeArg(start), db.timeArg(end))
	return err
}

// CreateFirstOwner implements wharf.PrincipalService.
//
// Servers starting at once on an empty database all find no principal; the
// unique display name is what lets only one through: a second insert of
// the same name waits for the first transaction and fails once it commits,
// and SQLite's single writer orders them the same way. The loser's
// transaction is rolled back whole, so it leaves nothing behind.
func (db *DB) CreateFirstOwner(ctx context.Context, sp *wharf.ServicePrincipal, cr *wharf.PasswordCredential) (bool, error) {
	now := db.now()
	start, end := normTime(cr.StartDate), normTime(cr.EndDate)
	created := false
	err := db.inTx(ctx, func(c conn) error {
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM service_principals LIMIT 1`).Scan(&one)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO service_principals (app_id, object_id, display_name, created_at)
			VALUES (?, ?, ?, ?)`, sp.AppID, sp.ObjectID, sp.DisplayName, db.timeArg(now)); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO role_assignments (id, principal_id, principal_type, role_name, scope, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, uuid.NewString(), sp.AppID, wharf.PrincipalTypeServicePrincipal,
			wharf.RoleOwner, wharf.ServerScope, db.timeArg(now)); err != nil {
			return err
		}
		cr.PrincipalID = sp.AppID
		if err := db.insertCredential(ctx, c, cr, start, end); err != nil {
			return err
		}
		created = true
		return nil
	})
	switch {
	case db.isUnique(err):
		// Another server created the first Owner first.
		return false, nil
	case err != nil:
		return false, wrapErr("create the first owner", err)
	case created:
		sp.CreatedAt, cr.StartDate, cr.EndDate = now, start, end
	}
	return created, nil
}

// ListCredentials returns the principal's credentials, oldest first.
func (db *DB) ListCredentials(ctx context.Context, appID string) ([]*wharf.PasswordCredential, error) {
	c := db.reader()
	out, err := queryList(ctx, c, func(s rowScanner) (*wharf.PasswordCredential, error) {
		var cr wharf.PasswordCredential
		return &cr, s.Scan(&cr.KeyID, &cr.PrincipalID, &cr.Hint, &cr.SecretHash,
			timeDest{&cr.StartDate}, timeDest{&cr.EndDate})
	}, `SELECT key_id, principal_id, hint, secret_hash, start_date, end_date
		FROM password_credentials WHERE principal_id = ? ORDER BY start_date, key_id`, appID)
	out, err = unlessOwnerMissing(ctx, c, out, err, mustPrincipal, appID)
	return out, wrapErr("list credentials", err)
}

// DeleteCredential removes one credential of a principal.
func (db *DB) DeleteCredential(ctx context.Context, appID, keyID string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustPrincipal(ctx, c, appID); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "credential %q not found for service principal %q", keyID, appID),
			`DELETE FROM password_credentials WHERE principal_id = ? AND key_id = ?`,
			appID, keyID)
	})
	return wrapErr("delete credential", err)
}

// mustPrincipal returns ENOTFOUND if no principal has that app id.
func mustPrincipal(ctx context.Context, c conn, appID string) error {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM service_principals WHERE app_id = ?`, appID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", appID)
	}
	return err
}
