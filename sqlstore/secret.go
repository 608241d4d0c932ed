package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/wharfml/wharf"
)

// errNoKey refuses secret values when no Sealer is configured: storing them
// in clear is never an acceptable fallback.
func errNoKey() error { return wharf.Errorf(wharf.EINTERNAL, "secret store has no key") }

// secretAD binds a sealed value to the row it belongs in, so that a
// ciphertext copied to another scope, name or version fails to open. NUL
// separators keep ("a", "bc") and ("ab", "c") apart.
func secretAD(scope, name, version string) []byte {
	return []byte(scope + "\x00" + name + "\x00" + version)
}

// newVersion returns a random version id: 32 lowercase hex characters, the
// form Key Vault uses, so versions reveal nothing about order or count.
func newVersion() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sqlstore: secret version: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// SetSecret seals value and stores it as a new version of the secret.
func (db *DB) SetSecret(ctx context.Context, scope, name string, value []byte, contentType string) (*wharf.Secret, error) {
	if db.Sealer == nil {
		return nil, errNoKey()
	}
	version, err := newVersion()
	if err != nil {
		return nil, err
	}
	sealed, err := db.Sealer.Seal(value, secretAD(scope, name, version))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: seal secret: %w", err)
	}
	now := db.now()
	_, err = db.writer().exec(ctx, `INSERT INTO secrets
		(scope, name, version, seq, value, content_type, enabled, created_at)
		VALUES (?, ?, ?, `+db.dialect.NextSecretSeq+`, ?, ?, ?, ?)`,
		scope, name, version, sealed, contentType, true, db.timeArg(now))
	if err != nil {
		return nil, wrapErr("set secret", err)
	}
	return &wharf.Secret{
		Scope:       scope,
		Name:        name,
		Version:     version,
		ContentType: contentType,
		Enabled:     true,
		CreatedAt:   now,
	}, nil
}

// secretOrder sorts versions newest first. The sequence breaks ties
// between versions written within the same microsecond.
const secretOrder = ` ORDER BY created_at DESC, seq DESC`

// GetSecret returns a version with its value opened; an empty version
// selects the newest enabled one.
func (db *DB) GetSecret(ctx context.Context, scope, name, version string) (*wharf.Secret, error) {
	if db.Sealer == nil {
		return nil, errNoKey()
	}
	const cols = `SELECT scope, name, version, value, content_type, enabled, created_at FROM secrets`
	var row *sql.Row
	if version == "" {
		row = db.reader().queryRow(ctx, cols+` WHERE scope = ? AND name = ? AND enabled = ?`+
			secretOrder+` LIMIT 1`, scope, name, true)
	} else {
		row = db.reader().queryRow(ctx, cols+` WHERE scope = ? AND name = ? AND version = ?`,
			scope, name, version)
	}
	var s wharf.Secret
	var sealed []byte
	err := row.Scan(&s.Scope, &s.Name, &s.Version, &sealed, &s.ContentType, &s.Enabled, timeDest{&s.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		if version != "" {
			return nil, wharf.Errorf(wharf.ENOTFOUND, "version %q of secret %q not found in scope %q", version, name, scope)
		}
		return nil, wharf.Errorf(wharf.ENOTFOUND, "secret %q not found in scope %q", name, scope)
	}
	if err != nil {
		return nil, wrapErr("get secret", err)
	}
	s.Value, err = db.Sealer.Open(sealed, secretAD(s.Scope, s.Name, s.Version))
	if err != nil {
		// Wrong key or a tampered row: an operator problem, reported
		// as internal without detail.
		return nil, fmt.Errorf("sqlstore: open secret %q version %q: %w", name, s.Version, err)
	}
	return &s, nil
}

// ListSecretVersions lists every version of the secret, newest first,
// without values; ENOTFOUND when the secret has none.
func (db *DB) ListSecretVersions(ctx context.Context, scope, name string) ([]*wharf.Secret, error) {
	out, err := db.listSecrets(ctx, `SELECT scope, name, version, content_type, enabled, created_at
		FROM secrets WHERE scope = ? AND name = ?`+secretOrder, scope, name)
	if err != nil {
		return nil, wrapErr("list secret versions", err)
	}
	if len(out) == 0 {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "secret %q not found in scope %q", name, scope)
	}
	return out, nil
}

// ListSecrets lists the newest version of each secret in scope, ordered by
// name, without values.
func (db *DB) ListSecrets(ctx context.Context, scope string) ([]*wharf.Secret, error) {
	out, err := db.listSecrets(ctx, `SELECT scope, name, version, content_type, enabled, created_at
		FROM (SELECT scope, name, version, content_type, enabled, created_at,
			ROW_NUMBER() OVER (PARTITION BY name`+secretOrder+`) AS rn
			FROM secrets WHERE scope = ?) newest
		WHERE rn = 1 ORDER BY name`, scope)
	return out, wrapErr("list secrets", err)
}

func (db *DB) listSecrets(ctx context.Context, q string, args ...any) ([]*wharf.Secret, error) {
	return queryList(ctx, db.reader(), func(row rowScanner) (*wharf.Secret, error) {
		var s wharf.Secret
		return &s, row.Scan(&s.Scope, &s.Name, &s.Version, &s.ContentType, &s.Enabled, timeDest{&s.CreatedAt})
	}, q, args...)
}

// DeleteSecret removes every version of the secret.
func (db *DB) DeleteSecret(ctx context.Context, scope, name string) error {
	return wrapErr("delete secret", mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "secret %q not found in scope %q", name, scope),
		`DELETE FROM secrets WHERE scope = ? AND name = ?`, scope, name))
}

// RawSecretValue returns the stored (sealed) bytes of one secret version,
// bypassing the Sealer. It exists for tests that check values are never
// stored in clear; the server has no use for it.
func (db *DB) RawSecretValue(ctx context.Context, scope, name, version string) ([]byte, error) {
	var b []byte
	err := db.reader().queryRow(ctx, `SELECT value FROM secrets WHERE scope = ? AND name = ? AND version = ?`,
		scope, name, version).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "version %q of secret %q not found in scope %q", version, name, scope)
	}
	return b, wrapErr("raw secret value", err)
}
