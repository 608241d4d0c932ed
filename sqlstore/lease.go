package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wharfml/wharf"
)

var _ wharf.LeaseService = (*DB)(nil)

// checkFence refuses a transaction whose ctx is fenced by a lease that has
// since passed to another holder. The row stays share-locked until the
// transaction ends, so a takeover (which updates the row) waits for writes
// already checked, and every write that starts after it sees the new token.
func (db *DB) checkFence(ctx context.Context, c conn) error {
	l := wharf.FenceFromContext(ctx)
	if l == nil {
		return nil
	}
	var token int64
	err := c.queryRow(ctx, `SELECT token FROM leases WHERE name = ?`+db.dialect.ShareLock, l.Name).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) || err == nil && token != l.Token {
		return wharf.ErrFenced
	}
	return err
}

// clock returns the time leases are measured by: the database's clock
// where the dialect names one, else the store's.
func (db *DB) clock(ctx context.Context, c conn) (time.Time, error) {
	if db.dialect.Clock == "" {
		return db.now(), nil
	}
	var t time.Time
	err := c.queryRow(ctx, `SELECT `+db.dialect.Clock).Scan(timeDest{&t})
	return t, err
}

// lockLease locks a lease's row and reads it; nil when there is none.
func (db *DB) lockLease(ctx context.Context, c conn, name string) (*wharf.Lease, error) {
	// The no-op update takes the row lock on PostgreSQL before the read;
	// SQLite's write transaction already excludes other writers.
	if _, err := c.exec(ctx, `UPDATE leases SET token = token WHERE name = ?`, name); err != nil {
		return nil, err
	}
	l := &wharf.Lease{Name: name}
	err := c.queryRow(ctx, `SELECT holder, token, expires_at FROM leases WHERE name = ?`, name).
		Scan(&l.Holder, &l.Token, timeDest{&l.Expires})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return l, err
}

// AcquireLease implements wharf.LeaseService.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*wharf.Lease, error) {
	var out *wharf.Lease
	err := db.inTx(ctx, func(c conn) error {
		now, err := db.clock(ctx, c)
		if err != nil {
			return err
		}
		cur, err := db.lockLease(ctx, c, name)
		if err != nil {
			return err
		}
		next := &wharf.Lease{Name: name, Holder: holder, Token: 1, Expires: normTime(now.Add(ttl))}
		switch {
		case cur == nil:
			_, err = c.exec(ctx, `INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)`,
				name, holder, next.Token, db.timeArg(next.Expires))
			if db.isUnique(err) {
				return wharf.Errorf(wharf.ECONFLICT, "lease %s was just taken by another server", name)
			}
		case cur.Expires.After(now):
			return wharf.Errorf(wharf.ECONFLICT, "lease %s is held by %s until %s", name, cur.Holder, cur.Expires.Format(time.RFC3339Nano))
		default:
			next.Token = cur.Token + 1
			_, err = c.exec(ctx, `UPDATE leases SET holder = ?, token = ?, expires_at = ? WHERE name = ?`,
				holder, next.Token, db.timeArg(next.Expires), name)
		}
		out = next
		return err
	})
	if err != nil {
		return nil, wrapErr("acquire lease", err)
	}
	return out, nil
}

// RenewLease implements wharf.LeaseService.
func (db *DB) RenewLease(ctx context.Context, l *wharf.Lease, ttl time.Duration) (*wharf.Lease, error) {
	var out *wharf.Lease
	err := db.inTx(ctx, func(c conn) error {
		now, err := db.clock(ctx, c)
		if err != nil {
			return err
		}
		cur, err := db.lockLease(ctx, c, l.Name)
		if err != nil {
			return err
		}
		if cur == nil || cur.Token != l.Token {
			return wharf.ErrFenced
		}
		cur.Expires = normTime(now.Add(ttl))
		_, err = c.exec(ctx, `UPDATE leases SET expires_at = ? WHERE name = ?`, db.timeArg(cur.Expires), l.Name)
		out = cur
		return err
	})
	if err != nil {
		return nil, wrapErr("renew lease", err)
	}
	return out, nil
}

// ReleaseLease implements wharf.LeaseService.
func (db *DB) ReleaseLease(ctx context.Context, l *wharf.Lease) error {
	err := db.inTx(ctx, func(c conn) error {
		now, err := db.clock(ctx, c)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND token = ?`, db.timeArg(now), l.Name, l.Token)
		return err
	})
	return wrapErr("release lease", err)
}

// FindLease implements wharf.LeaseService.
func (db *DB) FindLease(ctx context.Context, name string) (*wharf.Lease, error) {
	var out *wharf.Lease
	err := db.inTx(ctx, func(c conn) error {
		now, err := db.clock(ctx, c)
		if err != nil {
			return err
		}
		l := &wharf.Lease{Name: name}
		err = c.queryRow(ctx, `SELECT holder, token, expires_at FROM leases WHERE name = ?`, name).
			Scan(&l.Holder, &l.Token, timeDest{&l.Expires})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err == nil && l.Expires.After(now) {
			out = l
		}
		return err
	})
	if err != nil {
		return nil, wrapErr("find lease", err)
	}
	return out, nil
}

// Notify tells the other servers sharing the database of a change on
// channel (see postgres.Listen); a no-op on a database no other server
// shares.
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if db.dialect.Notify == "" {
		return nil
	}
	_, err := db.writer().exec(ctx, db.dialect.Notify, channel, payload)
	return wrapErr("notify", err)
}
