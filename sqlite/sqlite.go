// Package sqlite opens Wharf's metadata store on an SQLite database file,
// the default engine for a single server. It uses modernc.org/sqlite, a
// pure-Go driver, so the server builds without cgo.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/wharfml/wharf/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// Dialect describes SQLite to the shared store.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "sqlite",
		TimeAsText: true,
		// Writes are serialised on one connection inside a write
		// transaction, so max+1 cannot race.
		NextSecretSeq:         "(SELECT COALESCE(MAX(seq), 0) + 1 FROM secrets)",
		IsUniqueViolation:     isUniqueViolation,
		IsForeignKeyViolation: isForeignKeyViolation,
	}
}

// readConns is the size of the read pool: WAL lets readers proceed in
// parallel with each other and with the one writer.
var readConns = max(4, runtime.NumCPU())

// Open opens (creating it and its directory if need be) the database at
// path and migrates it to the current schema.
//
// Every connection runs with journal_mode=WAL, so readers never block the
// writer; synchronous=NORMAL, which in WAL mode keeps every committed
// transaction across a crash of the process but may lose the last ones on
// power loss or an OS crash (the guarantee Wharf makes, in exchange for not
// syncing on every commit); foreign_keys=ON; and busy_timeout=5000 so that
// another process holding the lock is waited for rather than failed. The
// writer keeps its temporary files (statement journals) in memory,
// temp_store=MEMORY.
//
// Writes go through a handle with a single connection whose transactions
// begin IMMEDIATE: writers queue in Go instead of failing with SQLITE_BUSY
// when one tries to upgrade a read lock. Reads use a separate pool.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: database path is empty")
	}
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		// The driver would read what follows '?' as parameters, and a
		// file: prefix as a URI.
		return nil, fmt.Errorf("sqlite: database path %q must be a plain file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}
	if err := restrictFiles(path); err != nil {
		return nil, err
	}

	write, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	// Migrate on the write handle first: it switches the file to WAL
	// before any reader connects.
	if err := sqlstore.Migrate(ctx, write, Dialect(), migrationFiles()); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	read.SetConnMaxIdleTime(0)
	read.SetConnMaxLifetime(0)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return sqlstore.New(read, write, Dialect()), nil
}

// dsn returns the driver's connection string for path. The settings are
// DSN parameters, not statements run after opening, so that every
// connection the pool opens, now or after a reconnect, gets them.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if write {
		q.Set("_txlock", "immediate")
		// A statement that may fail halfway inside a transaction (a
		// multi-row insert) keeps a statement journal to undo itself;
		// past 64 KiB SQLite spills it to a temporary file, written and
		// never read when the statement succeeds. In memory it costs the
		// pages of one statement, and durability is the WAL's either way.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		// A read connection that tried to write would take the write
		// lock behind the write handle's back.
		q.Add("_pragma", "query_only(ON)")
	}
	return path + "?" + q.Encode()
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// restrictFiles makes the database readable by its owner only. SQLite
// creates files with the process's umask (usually 0644) and gives the -wal
// and -shm files the database's mode, so creating the database 0600 first
// covers all three; files an older version left open to others are
// narrowed.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite: restrict %s: %w", p, err)
		}
	}
	return nil
}
