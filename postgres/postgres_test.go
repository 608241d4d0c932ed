package postgres

import (
	"database/sql"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/pgtest"
	"github.com/wharfml/wharf/sqlstore"
	"github.com/wharfml/wharf/storetest"
)

func baseURL(t *testing.T) string { return pgtest.BaseURL(t) }

func freshDatabase(t *testing.T) string { return pgtest.FreshDatabase(t) }

func openTest(t *testing.T) wharf.Store {
	t.Helper()
	db, err := Open(t.Context(), freshDatabase(t))
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
	u := freshDatabase(t)
	db, err := Open(ctx, u)
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
	db.Close()

	db, err = Open(ctx, u)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if _, err := db.FindWorkspace(ctx, "ws"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, u, `SELECT COUNT(*) FROM schema_migrations`); n != len(entries) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(entries))
	}
}

// TestConcurrentOpen starts several servers on one new database at once:
// the advisory lock must make them migrate one after the other.
func TestConcurrentOpen(t *testing.T) {
	u := freshDatabase(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			db, err := Open(t.Context(), u)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
}

func TestNewerDatabase(t *testing.T) {
	ctx := t.Context()
	u := freshDatabase(t)
	db, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	h, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (9999, 'from_the_future', now())`); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, u)
	if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("open of a newer database: err = %v, want a version error", err)
	}
}

func queryInt(t *testing.T, u, q string) int {
	t.Helper()
	h, err := sql.Open("pgx", u)
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

// TestMigrationAtomic: PostgreSQL's DDL is transactional too, so a
// migration that fails halfway leaves nothing behind.
func TestMigrationAtomic(t *testing.T) {
	ctx := t.Context()
	u := freshDatabase(t)
	h, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fsys := fstest.MapFS{
		"0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER);`)},
		"0002_two.sql": {Data: []byte(`CREATE TABLE two (x INTEGER); INSERT INTO nowhere VALUES (1);`)},
	}
	if err := sqlstore.Migrate(ctx, h, Dialect(), fsys); err == nil {
		t.Fatal("broken migration applied")
	}
	var n int
	if err := h.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_tables WHERE tablename = 'two'`).Scan(&n); err != nil {
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
}
