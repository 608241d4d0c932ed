// Package postgres opens Wharf's metadata store on a PostgreSQL database,
// the engine for servers that need a shared or managed database. It uses
// pgx through database/sql, so the store's SQL is shared with SQLite.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/wharfml/wharf/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationFiles returns the embedded migrations with the directory prefix
// stripped, as Migrate expects.
func migrationFiles() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// migrationLockID identifies Wharf's migration advisory lock; any constant
// works as long as nothing else sharing the database uses it.
const migrationLockID int64 = 0x5768_6172_664d_6967 // "WharfMig"

// maxConns caps the connection pool of one server.
const maxConns = 16

// SQLSTATE codes, from PostgreSQL's errcodes.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// Dialect describes PostgreSQL to the shared store.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:                  "postgres",
		NumberedPlaceholders:  true,
		NextSecretSeq:         "DEFAULT", // an identity column
		IsUniqueViolation:     func(err error) bool { return pgCode(err) == uniqueViolation },
		IsForeignKeyViolation: func(err error) bool { return pgCode(err) == foreignKeyViolation },
		LockMigrations:        lockMigrations,
		ShareLock:             " FOR SHARE",
		Clock:                 "clock_timestamp()",
		Notify:                "SELECT pg_notify(?, ?)",
	}
}

// Open connects to the database at url (a postgres:// URL or key=value
// connection string), checks that it answers and migrates it to the
// current schema. PostgreSQL handles concurrent writers itself, so reads
// and writes share one pool.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// Bounded, so that several servers stay well inside the server's
	// max_connections (100 by default); idle connections are kept, since
	// database/sql's default of 2 would reconnect constantly under load.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := sqlstore.Migrate(ctx, db, Dialect(), migrationFiles()); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return sqlstore.New(db, db, Dialect()), nil
}

// lockMigrations takes a session-level advisory lock on conn, so that two
// servers starting at once migrate one after the other; the second then
// finds nothing left to do.
func lockMigrations(ctx context.Context, conn *sql.Conn) (func() error, error) {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
		return nil, err
	}
	return func() error {
		// Not ctx: the lock must be released even if ctx is done.
		_, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockID)
		if err != nil {
			// A session lock outlives the connection's return to the
			// pool; discard the connection so the lock goes with it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}, nil
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
