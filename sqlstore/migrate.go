package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// migrationRE is the name of a migration file: a four-digit version and a
// descriptive name, applied in version order.
var migrationRE = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

// Migrate brings the schema of db up to date with the migrations in fsys
// (NNNN_name.sql files at its root). Each migration runs in its own
// transaction together with its row in schema_migrations, so a crash leaves
// the schema at the previous version, never halfway. Applied migrations are
// skipped, so Migrate is idempotent. A database that records a version
// this binary does not know was migrated by a newer program; Migrate then
// refuses to touch it rather than run against a schema it does not
// understand.
func Migrate(ctx context.Context, db *sql.DB, dialect Dialect, fsys fs.FS) (err error) {
	migs, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	// One connection throughout: PostgreSQL's advisory lock belongs to
	// the session that took it.
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer c.Close()
	if dialect.LockMigrations != nil {
		unlock, err := dialect.LockMigrations(ctx, c)
		if err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
		defer func() {
			if uerr := unlock(); uerr != nil && err == nil {
				err = fmt.Errorf("sqlstore: migrate: unlock: %w", uerr)
			}
		}()
	}
	tsType := "TIMESTAMPTZ"
	if dialect.TimeAsText {
		tsType = "TEXT"
	}
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at `+tsType+` NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}

	applied, err := appliedVersions(ctx, c)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, m := range migs {
		known[m.version] = true
	}
	for _, v := range applied {
		if !known[v] {
			return fmt.Errorf("sqlstore: database schema is at version %04d, which this program does not know (it knows up to %04d): the database was migrated by a newer wharf; upgrade wharf", v, lastVersion(migs))
		}
	}
	for _, m := range migs {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := applyMigration(ctx, c, &dialect, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, c *sql.Conn, d *Dialect, m migration) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %04d_%s: %w", m.version, m.name, err)
	}
	defer tx.Rollback()
	// Checked again inside the transaction: another process may have
	// applied it since the versions were read (SQLite has no advisory
	// lock; its write transaction is the lock).
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`),
		m.version).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: migrate %04d_%s: %w", m.version, m.name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("sqlstore: migrate %04d_%s: %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (?, ?, ?)`), m.version, m.name, d.timeArg(time.Now())); err != nil {
		return fmt.Errorf("sqlstore: migrate %04d_%s: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migrate %04d_%s: commit: %w", m.version, m.name, err)
	}
	return nil
}

func appliedVersions(ctx context.Context, c *sql.Conn) ([]int, error) {
	rows, err := c.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlstore: migrate: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return out, nil
}

// readMigrations loads the migrations in fsys in version order. A .sql file
// with a malformed name or a repeated version is an error, not something to
// skip silently: either would apply the schema out of order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var migs []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !isSQL(e.Name()) {
			continue
		}
		m := migrationRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: migration file %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlstore: migrations %q and %q share version %04d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration: %w", err)
		}
		migs = append(migs, migration{version: v, name: m[2], sql: string(b)})
	}
	if len(migs) == 0 {
		return nil, errors.New("sqlstore: no migrations found")
	}
	slices.SortFunc(migs, func(a, b migration) int { return a.version - b.version })
	return migs, nil
}

func isSQL(name string) bool {
	return len(name) > 4 && name[len(name)-4:] == ".sql"
}

func lastVersion(migs []migration) int {
	return migs[len(migs)-1].version
}
