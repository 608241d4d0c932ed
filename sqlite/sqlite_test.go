package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sqlstore"
	"github.com/wharfml/wharf/storetest"
)

func openTest(t *testing.T) wharf.Store {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "sub", "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Sealer = storetest.NewSealer(t)
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, openTest)
}

func TestTracking(t *testing.T) {
	storetest.RunTracking(t, openTest)
}

func TestTraces(t *testing.T) {
	storetest.RunTraces(t, openTest)
}

func TestRegistry(t *testing.T) {
	storetest.RunRegistry(t, openTest)
}

func TestJobs(t *testing.T) {
	storetest.RunJobs(t, openTest)
}

func TestLeases(t *testing.T) {
	storetest.RunLeases(t, openTest)
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wharf.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w := &wharf.Workspace{Name: "ws"}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening again applies nothing and keeps the data.
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if _, err := db.FindWorkspace(ctx, "ws"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if n := count(t, path, `SELECT COUNT(*) FROM schema_migrations`); n != numMigrations(t) {
		t.Errorf("schema_migrations has %d rows, want %d", n, numMigrations(t))
	}
}

func TestNewerDatabase(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wharf.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	exec(t, path, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (9999, 'from_the_future', '2099-01-01T00:00:00.000000Z')`)
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("open of a newer database: err = %v, want a version error", err)
	}
}

// TestPragmas checks that every connection, on both handles, runs with the
// settings Open promises, and that the read handle refuses writes.
func TestPragmas(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wharf.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, write := range []bool{true, false} {
		h, err := sql.Open("sqlite", dsn(path, write))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		// temp_store: 2 (memory) for the writer's statement journals,
		// the default 0 for readers.
		tempStore := "0"
		if write {
			tempStore = "2"
		}
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000",
			"temp_store": tempStore,
		} {
			var got string
			if err := h.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("write=%v: %s = %s, want %s", write, pragma, got, want)
			}
		}
		_, err = h.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('k', 'v')`)
		if write && err != nil {
			t.Errorf("write handle: %v", err)
		}
		if !write && err == nil {
			t.Error("read handle accepted a write")
		}
	}
}

func TestBadPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=ro", "file:x.db"} {
		if db, err := Open(context.Background(), p); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func numMigrations(t *testing.T) int {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func exec(t *testing.T, path, q string) {
	t.Helper()
	h, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.ExecContext(t.Context(), q); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, path, q string) int {
	t.Helper()
	h, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var n int
	if err := h.QueryRowContext(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigrationAtomic runs a migration that fails halfway: its first
// statement must be rolled back with it, and the version stay unrecorded,
// so fixing the file and migrating again succeeds.
func TestMigrationAtomic(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	h, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.SetMaxOpenConns(1)
	fsys := fstest.MapFS{
		"0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER);`)},
		"0002_two.sql": {Data: []byte(`CREATE TABLE two (x INTEGER); INSERT INTO nowhere VALUES (1);`)},
	}
	if err := sqlstore.Migrate(ctx, h, Dialect(), fsys); err == nil {
		t.Fatal("broken migration applied")
	}
	var n int
	if err := h.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'two'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the failed migration's first statement was kept")
	}
	if err := h.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("schema at version %d, want 1", n)
	}
	fsys["0002_two.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE two (x INTEGER);`)}
	if err := sqlstore.Migrate(ctx, h, Dialect(), fsys); err != nil {
		t.Fatalf("after fixing the migration: %v", err)
	}
	if err := sqlstore.Migrate(ctx, h, Dialect(), fsys); err != nil {
		t.Fatalf("migrating an up-to-date database: %v", err)
	}
}
