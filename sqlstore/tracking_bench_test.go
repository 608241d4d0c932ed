package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/postgres"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
)

// benchEngine is one engine the tracking benchmarks run on: it opens a
// fresh store and a raw handle on the same database for bulk loading.
type benchEngine struct {
	name string
	open func(b testing.TB) (*sqlstore.DB, *sql.DB)
	// series is a FROM clause yielding integers i in [0, n) as column i.
	series func(n int) string
	// hex32 formats integer expression e as 32 lowercase hex characters.
	hex32 func(e string) string
}

func benchEngines() []benchEngine {
	engines := []benchEngine{{
		name: "sqlite",
		open: func(b testing.TB) (*sqlstore.DB, *sql.DB) {
			path := filepath.Join(b.TempDir(), "wharf.db")
			db, err := sqlite.Open(b.Context(), path)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { raw.Close() })
			return db, raw
		},
		series: func(n int) string {
			return fmt.Sprintf("(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s) AS g", n-1)
		},
		hex32: func(e string) string { return "printf('%032x', " + e + ")" },
	}}
	if u := os.Getenv("WHARF_TEST_POSTGRES_URL"); u != "" {
		engines = append(engines, benchEngine{
			name: "postgres",
			open: func(b testing.TB) (*sqlstore.DB, *sql.DB) {
				dbURL := freshPostgres(b, u)
				db, err := postgres.Open(b.Context(), dbURL)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				raw, err := sql.Open("pgx", dbURL)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { raw.Close() })
				return db, raw
			},
			series: func(n int) string { return fmt.Sprintf("generate_series(0, %d) AS g(i)", n-1) },
			hex32:  func(e string) string { return "lpad(to_hex(" + e + "), 32, '0')" },
		})
	}
	return engines
}

// freshPostgres creates a database for one benchmark and drops it after.
func freshPostgres(b testing.TB, base string) string {
	name := fmt.Sprintf("wharf_bench_%d", rand.Uint32())
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(b.Context(), `CREATE DATABASE `+name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err == nil {
			admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
			admin.Close()
		}
	})
	pu, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	pu.Path = "/" + name
	return pu.String()
}

// BenchmarkLogBatch logs batches of 1000 metrics (10 keys, 100 steps each)
// to one run, the shape of a training loop's flush.
func BenchmarkLogBatch(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			db, _ := eng.open(b)
			ctx := b.Context()
			if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
				b.Fatal(err)
			}
			r := &wharf.Run{Workspace: "ws", ExperimentID: "0"}
			if err := db.CreateRun(ctx, r); err != nil {
				b.Fatal(err)
			}
			ms := make([]*wharf.Metric, 1000)
			for i := range ms {
				ms[i] = &wharf.Metric{Key: fmt.Sprintf("metric_%d", i%10)}
			}
			step := int64(0)
			for b.Loop() {
				for i, m := range ms {
					m.Step = step + int64(i/10)
					m.Timestamp = 1_700_000_000_000 + m.Step
					m.Value = rand.Float64()
				}
				step += 100
				if err := db.LogBatch(ctx, "ws", r.ID, ms, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ms))/b.Elapsed().Seconds(), "metrics/s")
		})
	}
}

// BenchmarkSearchRuns searches an experiment of 100,000 runs, each with 5
// params, 5 tags and 5 metrics, the way the MLflow UI and clients do.
func BenchmarkSearchRuns(b *testing.B) {
	const runs = 100_000
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			db, raw := eng.open(b)
			ctx := b.Context()
			if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
				b.Fatal(err)
			}
			e := &wharf.Experiment{Workspace: "ws", Name: "big"}
			if err := db.CreateExperiment(ctx, e); err != nil {
				b.Fatal(err)
			}
			populate(b, ctx, raw, eng, runs)
			for _, q := range []struct{ name, filter, order string }{
				{"all", "", ""},
				{"metric", "metrics.acc > 0.9", ""},
				{"param", "params.model = 'model-7'", ""},
				{"tag+metric", "tags.team = 'team-3' AND metrics.loss < 0.5", ""},
				{"trackload", "metrics.loss < 0.5 and params.lr = '0.1'", "metrics.loss ASC"},
				{"like", "params.model LIKE 'model-1%'", ""},
				{"order_metric", "metrics.acc > 0.5", "metrics.acc DESC"},
				{"order_param", "", "params.lr ASC"},
				{"status_page100", "attributes.status = 'FINISHED'", ""},
			} {
				b.Run(q.name, func(b *testing.B) {
					sq := wharf.SearchQuery{ExperimentIDs: []string{e.ID}, Filter: q.filter}
					if q.order != "" {
						sq.OrderBy = []string{q.order}
					}
					if q.name == "status_page100" || q.name == "trackload" {
						sq.MaxResults = 100
					}
					var n int
					for b.Loop() {
						found, _, err := db.SearchRuns(ctx, "ws", sq)
						if err != nil {
							b.Fatal(err)
						}
						n = len(found)
					}
					b.ReportMetric(float64(n), "runs")
				})
			}
		})
	}
}

// populate bulk-loads runs straight into the tables, far faster than the
// API would, with values spread so that filters select varied fractions.
func populate(b testing.TB, ctx context.Context, raw *sql.DB, eng benchEngine, n int) {
	b.Helper()
	id := eng.hex32("i + 4096")
	stmts := []string{
		`INSERT INTO runs (run_id, workspace, experiment_id, name, user_id, status, start_time, end_time,
			artifact_uri, lifecycle_stage)
		SELECT ` + id + `, 'ws', 1, 'run-' || i, 'alice', CASE WHEN i % 4 = 0 THEN 'RUNNING' ELSE 'FINISHED' END,
			1700000000000 + i, NULL, 'mlflow-artifacts:/1/' || ` + id + ` || '/artifacts', 'active'
		FROM ` + eng.series(n),
	}
	// A run's rows are inserted together, as LogBatch writes them, so
	// that the tables' physical order is a server's.
	kv := func(table string, values map[string]string) string {
		var sel []string
		for _, k := range sortedKeys(values) {
			sel = append(sel, `SELECT `+id+` AS run_id, i, '`+k+`' AS key, `+values[k]+` AS value FROM `+eng.series(n))
		}
		return `INSERT INTO ` + table + ` (run_id, workspace, experiment_id, key, value)
			SELECT run_id, 'ws', 1, key, value FROM (` +
			strings.Join(sel, " UNION ALL ") + `) AS u ORDER BY i, key`
	}
	stmts = append(stmts,
		kv("params", map[string]string{
			"lr": "'0.' || (i % 10)", "batch": "'' || (16 * (1 + i % 4))", "model": "'model-' || (i % 100)",
			"optimizer": "'adam'", "seed": "'' || i",
		}),
		kv("tags", map[string]string{
			"mlflow.runName": "'run-' || i", "team": "'team-' || (i % 10)", "env": "'prod'",
			"mlflow.user": "'alice'", "commit": "'c' || i",
		}))
	var sel []string
	for _, k := range []string{"acc", "f1", "loss", "precision", "recall"} {
		v := map[string]string{
			"acc": "(i % 1000) / 1000.0", "loss": "((i * 7) % 1000) / 1000.0", "f1": "(i % 97) / 97.0",
			"precision": "0.5", "recall": "(i % 3) / 3.0",
		}[k]
		sel = append(sel, `SELECT `+id+` AS run_id, i, '`+k+`' AS key, `+v+` AS value FROM `+eng.series(n))
	}
	stmts = append(stmts, `INSERT INTO latest_metrics (run_id, workspace, experiment_id, key, value, is_nan, timestamp, step)
		SELECT run_id, 'ws', 1, key, value, FALSE, 1700000000000 + i, 10 FROM (`+strings.Join(sel, " UNION ALL ")+
		`) AS u ORDER BY i, key`)
	if eng.name == "postgres" {
		// What autovacuum does to a table seeded over minutes.
		stmts = append(stmts, `VACUUM ANALYZE`)
	}
	for _, s := range stmts {
		if _, err := raw.ExecContext(ctx, s); err != nil {
			b.Fatalf("%v\n%s", err, s)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
