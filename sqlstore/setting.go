package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// Setting returns the value of key and whether it is set.
func (db *DB) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.reader().queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrapErr("setting", err)
	}
	return v, true, nil
}

// InitSetting sets key to value unless it is set, and returns the value in
// force. Insert-or-nothing then select is race-free on both engines: the
// losing insert waits for the winner and does nothing, and the select then
// reads the winner's value.
func (db *DB) InitSetting(ctx context.Context, key, value string) (string, error) {
	var v string
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
			return err
		}
		return c.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	})
	if err != nil {
		return "", wrapErr("init setting", err)
	}
	return v, nil
}
