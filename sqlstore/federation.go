package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wharfml/wharf"
)

const fedColumns = `id, principal_id, name, issuer, subject, audience, description, created_at`

// lockPrincipal makes the principal's row part of the transaction's writes,
// so that concurrent changes to one principal's federated credentials run
// one after the other and the count limit holds (a row lock in PostgreSQL,
// the database write lock in SQLite). ENOTFOUND without the principal.
func lockPrincipal(ctx context.Context, c conn, appID string) error {
	return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", appID),
		`UPDATE service_principals SET app_id = app_id WHERE app_id = ?`, appID)
}

// fedConflict checks the rules Entra ID enforces on a principal's federated
// credentials other than the one with id except: unique names, a unique
// issuer and subject pair and, for a new one, at most
// wharf.MaxFederatedCredentials.
func fedConflict(ctx context.Context, c conn, fc *wharf.FederatedCredential, except string) error {
	n := 0
	err := eachRow(ctx, c, `SELECT id, name, issuer, subject FROM federated_credentials WHERE principal_id = ?`, []any{fc.PrincipalID}, func(s rowScanner) error {
		var id, name, issuer, subject string
		if err := s.Scan(&id, &name, &issuer, &subject); err != nil {
			return err
		}
		if id == except {
			return nil
		}
		n++
		switch {
		case name == fc.Name:
			return wharf.Errorf(wharf.ECONFLICT, "service principal %q already has a federated credential named %q", fc.PrincipalID, fc.Name).WithField("name")
		case issuer == fc.Issuer && subject == fc.Subject:
			return wharf.Errorf(wharf.ECONFLICT, "federated credential %q already trusts issuer %q with subject %q; an issuer and subject pair may appear once per service principal", name, fc.Issuer, fc.Subject).WithField("subject")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if except == "" && n >= wharf.MaxFederatedCredentials {
		return wharf.Errorf(wharf.ECONFLICT, "service principal %q already has %d federated credentials, the most allowed; delete one first", fc.PrincipalID, wharf.MaxFederatedCredentials)
	}
	return nil
}

// CreateFederatedCredential stores fc, enforcing the limits in one
// transaction with the principal locked.
func (db *DB) CreateFederatedCredential(ctx context.Context, fc *wharf.FederatedCredential) error {
	now := db.now()
	err := db.inTx(ctx, func(c conn) error {
		if err := lockPrincipal(ctx, c, fc.PrincipalID); err != nil {
			return err
		}
		if err := fedConflict(ctx, c, fc, ""); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO federated_credentials (`+fedColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			fc.ID, fc.PrincipalID, fc.Name, fc.Issuer, fc.Subject, fedAudience(fc), fc.Description, db.timeArg(now))
		return err
	})
	switch {
	case err == nil:
	case db.isUnique(err):
		return wharf.Errorf(wharf.ECONFLICT, "federated credential %q conflicts with an existing one", fc.Name)
	case db.isForeignKey(err):
		return wharf.Errorf(wharf.ENOTFOUND, "service principal %q not found", fc.PrincipalID)
	default:
		return wrapErr("create federated credential", err)
	}
	fc.CreatedAt = now
	return nil
}

func fedAudience(fc *wharf.FederatedCredential) string {
	if len(fc.Audiences) == 0 {
		return wharf.DefaultFederatedAudience
	}
	return fc.Audiences[0]
}

func scanFed(sc interface{ Scan(...any) error }) (*wharf.FederatedCredential, error) {
	var fc wharf.FederatedCredential
	var aud string
	if err := sc.Scan(&fc.ID, &fc.PrincipalID, &fc.Name, &fc.Issuer, &fc.Subject, &aud, &fc.Description,
		timeDest{&fc.CreatedAt}); err != nil {
		return nil, err
	}
	fc.Audiences = []string{aud}
	return &fc, nil
}

// FindFederatedCredential finds a credential by id or name; an id wins.
func (db *DB) FindFederatedCredential(ctx context.Context, appID, idOrName string) (*wharf.FederatedCredential, error) {
	fc, err := scanFed(db.reader().queryRow(ctx, `SELECT `+fedColumns+` FROM federated_credentials
		WHERE principal_id = ? AND (id = ? OR name = ?) ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1`,
		appID, idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "federated credential %q not found for service principal %q", idOrName, appID)
	}
	if err != nil {
		return nil, wrapErr("find federated credential", err)
	}
	return fc, nil
}

// ListFederatedCredentials returns the principal's credentials ordered by
// name; ENOTFOUND without the principal.
func (db *DB) ListFederatedCredentials(ctx context.Context, appID string) ([]*wharf.FederatedCredential, error) {
	c := db.reader()
	out, err := queryList(ctx, c, scanFed, `SELECT `+fedColumns+` FROM federated_credentials WHERE principal_id = ? ORDER BY name`, appID)
	out, err = unlessOwnerMissing(ctx, c, out, err, mustPrincipal, appID)
	return out, wrapErr("list federated credentials", err)
}

// UpdateFederatedCredential replaces everything but the id, name and
// principal of the credential with fc.ID.
func (db *DB) UpdateFederatedCredential(ctx context.Context, fc *wharf.FederatedCredential) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := lockPrincipal(ctx, c, fc.PrincipalID); err != nil {
			return err
		}
		var name string
		err := c.queryRow(ctx, `SELECT name FROM federated_credentials WHERE principal_id = ? AND id = ?`,
			fc.PrincipalID, fc.ID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return wharf.Errorf(wharf.ENOTFOUND, "federated credential %q not found for service principal %q", fc.ID, fc.PrincipalID)
		} else if err != nil {
			return err
		}
		if name != fc.Name {
			return wharf.Errorf(wharf.EINVALID, "the name of federated credential %q cannot be changed", name).WithField("name")
		}
		if err := fedConflict(ctx, c, fc, fc.ID); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE federated_credentials SET issuer = ?, subject = ?, audience = ?, description = ?
			WHERE principal_id = ? AND id = ?`, fc.Issuer, fc.Subject, fedAudience(fc), fc.Description, fc.PrincipalID, fc.ID)
		return err
	})
	if db.isUnique(err) {
		return wharf.Errorf(wharf.ECONFLICT, "federated credential %q conflicts with an existing one", fc.Name)
	}
	return wrapErr("update federated credential", err)
}

// DeleteFederatedCredential removes one credential, named by id or name.
func (db *DB) DeleteFederatedCredential(ctx context.Context, appID, idOrName string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustPrincipal(ctx, c, appID); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "federated credential %q not found for service principal %q", idOrName, appID),
			`DELETE FROM federated_credentials WHERE principal_id = ? AND id = (
			SELECT id FROM federated_credentials WHERE principal_id = ? AND (id = ? OR name = ?)
			ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1)`, appID, appID, idOrName, idOrName, idOrName)
	})
	return wrapErr("delete federated credential", err)
}
