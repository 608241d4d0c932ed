// Package sqlstore implements wharf.Store over database/sql. It is the one
// implementation shared by the SQLite and PostgreSQL engines: the engine
// packages open the handles, supply a Dialect describing what differs, and
// run the migrations; everything else (queries, transactions, error mapping)
// lives here so both engines behave identically.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// Dialect describes what differs between the SQL engines the store runs on.
// The engine packages (sqlite, postgres) provide one; the store itself never
// imports a driver.
type Dialect struct {
	// Name identifies the engine in wrapped error messages.
	Name string
	// NumberedPlaceholders makes the store rewrite the '?' placeholders it
	// writes queries with into $1, $2, ..., which PostgreSQL requires.
	NumberedPlaceholders bool
	// TimeAsText stores timestamps as fixed-width RFC 3339 text (SQLite has
	// no timestamp type); otherwise time.Time values are passed to the
	// driver as they are (PostgreSQL TIMESTAMPTZ). Either way values are
	// UTC with microsecond precision, so both engines round-trip exactly.
	TimeAsText bool
	// NextSecretSeq is the SQL expression, used in an INSERT's VALUES list,
	// that yields the next secret sequence number. The sequence orders
	// versions written within the same microsecond.
	NextSecretSeq string
	// IsUniqueViolation reports whether err is a unique or primary key
	// constraint violation; those become wharf.ECONFLICT.
	IsUniqueViolation func(err error) bool
	// IsForeignKeyViolation reports whether err is a foreign key violation,
	// the sign that a parent row vanished under a concurrent delete.
	IsForeignKeyViolation func(err error) bool
	// LockMigrations, if set, takes a lock held on conn for the duration of
	// Migrate, so that servers starting at once do not migrate twice. The
	// returned function releases it.
	LockMigrations func(ctx context.Context, conn *sql.Conn) (unlock func() error, err error)
	// ShareLock ends a SELECT that must hold its rows against updates
	// until the transaction ends (" FOR SHARE"); empty where a write
	// transaction already excludes every other writer (SQLite).
	ShareLock string
	// Clock is the SQL expression of the database's current time, which
	// leases are measured by so that servers' clocks need not agree;
	// empty to use the store's own clock (one server, one clock).
	Clock string
	// Notify is the SQL statement that sends a notification (channel,
	// payload) to the other servers sharing the database; empty where no
	// other server can share it.
	Notify string
}

// DB is the metadata store. It is safe for concurrent use.
type DB struct {
	read, write *sql.DB
	dialect     Dialect

	// Now returns the current time; tests replace it. The store converts
	// its result to UTC and truncates it to microseconds, the precision
	// both engines keep.
	Now func() time.Time
	// Sealer encrypts secret values. Without one, secret operations fail
	// with EINTERNAL rather than store values in clear.
	Sealer wharf.Sealer

	// statistics paces the checks of PostgreSQL's planner statistics
	// before a run search (see freshenStatistics).
	statistics statisticsCheck

	// prepared holds multi-row statements prepared on the write handle
	// (see rowStatements).
	prepared preparedRows

	// audit group-commits audit records (see RecordAuditEvent).
	audit auditQueue
}

var _ wharf.Store = (*DB)(nil)

// New returns a store over already opened handles. Writes and transactions
// go to write and plain reads to read; they may be the same pool. For
// SQLite, write should allow a single open connection so that writers queue
// in Go instead of failing with SQLITE_BUSY. The schema must already be
// migrated (see Migrate).
func New(read, write *sql.DB, dialect Dialect) *DB {
	return &DB{read: read, write: write, dialect: dialect, Now: time.Now}
}

// Ping reports whether both handles can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	if db.read != db.write {
		if err := db.read.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping: %w", err)
		}
	}
	return nil
}

// Close closes the handles. The read handle goes first so that, for
// SQLite, the last connection to close is the writer, which checkpoints
// the WAL.
func (db *DB) Close() error {
	db.prepared.closeAll()
	var errs []error
	if db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	return errors.Join(errs...)
}

// now returns the store's notion of the current time in the stored form.
func (db *DB) now() time.Time {
	return normTime(db.Now())
}

// normTime converts t to the precision and zone the store keeps.
func normTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// timeLayout is fixed-width so that text timestamps sort chronologically.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// timeArg converts t into the value bound for a timestamp column.
func (db *DB) timeArg(t time.Time) any { return db.dialect.timeArg(t) }

func (d *Dialect) timeArg(t time.Time) any {
	t = normTime(t)
	if d.TimeAsText {
		return t.Format(timeLayout)
	}
	return t
}

// timeDest scans a timestamp column stored either natively or as text.
type timeDest struct{ t *time.Time }

// Scan implements sql.Scanner.
func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*d.t = normTime(v)
		return nil
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	case nil:
		*d.t = time.Time{}
		return nil
	}
	return fmt.Errorf("sqlstore: cannot scan %T into a timestamp", src)
}

func (d timeDest) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("sqlstore: bad timestamp %q: %w", s, err)
	}
	*d.t = normTime(t)
	return nil
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with '?' placeholders on a querier, rebinding
// them for the dialect.
type conn struct {
	q  querier
	db *DB
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.db.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.db.rebind(query), args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.db.rebind(query), args...)
}

// reader returns a conn on the read handle, for statements outside a
// transaction.
func (db *DB) reader() conn { return conn{q: db.read, db: db} }

// writer returns a conn on the write handle, for single statements that
// need no transaction of their own.
func (db *DB) writer() conn { return conn{q: db.write, db: db} }

// inTx runs fn in a transaction on the write handle, committing if fn
// returns nil and rolling back otherwise. A ctx fenced by a lease (see
// wharf.WithFence) first checks, in the same transaction, that the lease
// is still its holder's. A ctx with an armed audit record (see
// wharf.PendingAudit) has it written in the transaction, after fn, so
// that the one commit makes both durable.
func (db *DB) inTx(ctx context.Context, fn func(c conn) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	c := conn{q: tx, db: db}
	if err := db.checkFence(ctx, c); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := fn(c); err != nil {
		_ = tx.Rollback()
		return err
	}
	audited, err := db.writePendingAudit(ctx, c)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		audited(false)
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	audited(true)
	return nil
}

// rebind rewrites '?' placeholders as $n when the dialect needs it. The
// store's queries hold no '?' inside literals, but quoted text is skipped
// anyway so that a future literal cannot be corrupted.
func (db *DB) rebind(query string) string { return db.dialect.rebind(query) }

func (d *Dialect) rebind(query string) string {
	if !d.NumberedPlaceholders || !strings.Contains(query, "?") {
		return query
	}
	return rebindNumbered(query)
}

func rebindNumbered(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func (db *DB) isUnique(err error) bool {
	return db.dialect.IsUniqueViolation != nil && db.dialect.IsUniqueViolation(err)
}

func (db *DB) isForeignKey(err error) bool {
	return db.dialect.IsForeignKeyViolation != nil && db.dialect.IsForeignKeyViolation(err)
}

// rowsAffected returns the number of rows res changed.
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: rows affected: %w", err)
	}
	return n, nil
}
