package sqlstore_test

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sqlstore"
)

// planRun is a run of the plan test's data set, as the brute-force
// evaluation sees it.
type planRun struct {
	id       string
	exp      int
	start    int64
	deleted  bool
	alpha    string
	model    string
	long     string // "" when not logged
	team     string
	rmse     float64
	acc      float64
	accState int // 0 a number, 1 NaN, 2 not logged
}

const planRuns = 8000

// planLong is the start of the long param values, longer than the prefix
// PostgreSQL indexes.
var planLong = strings.Repeat("x", 260)

func planData() []*planRun {
	out := make([]*planRun, planRuns)
	for i := range out {
		r := &planRun{
			id:      fmt.Sprintf("%032x", i+4096),
			exp:     1,
			start:   int64(1000 + i/4),
			deleted: i%37 == 0,
			alpha:   fmt.Sprintf("0.%d", i%10),
			model:   fmt.Sprintf("m%d", i%50),
			team:    fmt.Sprintf("t%d", i%5),
			rmse:    float64((i*7919)%6007) / 6007.0,
			acc:     float64(i%20) / 20.0,
		}
		if i%10 == 9 {
			r.exp = 2
		}
		if i%7 == 0 {
			r.long = planLong + fmt.Sprint(i%3)
		}
		switch {
		case i%11 == 0:
			r.accState = 2
		case i%13 == 0:
			r.accState = 1
		}
		out[i] = r
	}
	return out
}

// TestSearchRunsPlans checks every search plan against a brute-force
// evaluation on an experiment large enough for the planner to choose
// each: the same results, in the same order, on every page.
func TestSearchRunsPlans(t *testing.T) {
	for _, eng := range benchEngines() {
		t.Run(eng.name, func(t *testing.T) {
			db, raw := planStore(t, eng, "one", "two")
			ctx := t.Context()
			id := eng.hex32("i + 4096")
			exp := "CASE WHEN i % 10 = 9 THEN 2 ELSE 1 END"
			series := eng.series(planRuns)
			for _, q := range []string{
				`INSERT INTO runs (run_id, workspace, experiment_id, name, user_id, status, start_time, end_time,
					artifact_uri, lifecycle_stage)
				SELECT ` + id + `, 'ws', ` + exp + `, 'run-' || i, 'u', 'FINISHED', 1000 + i / 4, NULL, 'x',
					CASE WHEN i % 37 = 0 THEN 'deleted' ELSE 'active' END FROM ` + series,
				`INSERT INTO params (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'alpha', '0.' || (i % 10) FROM ` + series,
				`INSERT INTO params (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'model', 'm' || (i % 50) FROM ` + series,
				`INSERT INTO params (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'long', '` + planLong + `' || (i % 3) FROM ` + series + `
				WHERE i % 7 = 0`,
				`INSERT INTO tags (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'team', 't' || (i % 5) FROM ` + series,
				`INSERT INTO latest_metrics (run_id, workspace, experiment_id, key, value, is_nan, timestamp, step)
				SELECT ` + id + `, 'ws', ` + exp + `, 'rmse', ((i * 7919) % 6007) / 6007.0, FALSE, 1, 0 FROM ` + series,
				`INSERT INTO latest_metrics (run_id, workspace, experiment_id, key, value, is_nan, timestamp, step)
				SELECT ` + id + `, 'ws', ` + exp + `, 'acc', CASE WHEN i % 13 = 0 THEN 0 ELSE (i % 20) / 20.0 END,
					i % 13 = 0, 1, 0 FROM ` + series + ` WHERE i % 11 <> 0`,
			} {
				if _, err := raw.ExecContext(ctx, q); err != nil {
					t.Fatalf("%v\n%s", err, q)
				}
			}
			if eng.name == "postgres" {
				if _, err := raw.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
					t.Fatal(err)
				}
			}
			data := planData()

			// Comparators in MLflow's order, each ending with the
			// tie-breakers start_time DESC, run_id ASC.
			tie := func(a, b *planRun) int {
				return cmp.Or(cmp.Compare(b.start, a.start), strings.Compare(a.id, b.id))
			}
			accKey := func(r *planRun) (int, float64) {
				return r.accState, r.acc
			}
			for _, tc := range []struct {
				name    string
				q       wharf.SearchQuery
				match   func(*planRun) bool
				compare func(a, b *planRun) int
			}{
				{"drive", wharf.SearchQuery{Filter: "params.model = 'm7'"},
					func(r *planRun) bool { return r.model == "m7" }, tie},
				{"drive long value", wharf.SearchQuery{Filter: "params.long = '" + planLong + "1'"},
					func(r *planRun) bool { return r.long == planLong+"1" }, tie},
				{"walk list", wharf.SearchQuery{Filter: "metrics.rmse < 0.99"},
					func(r *planRun) bool { return r.rmse < 0.99 }, tie},
				{"walk probe", wharf.SearchQuery{Filter: "params.model LIKE 'm1%' AND tags.team != 't3'"},
					func(r *planRun) bool { return strings.HasPrefix(r.model, "m1") && r.team != "t3" }, tie},
				{"walk all", wharf.SearchQuery{}, func(*planRun) bool { return true }, tie},
				{"lead", wharf.SearchQuery{Filter: "metrics.rmse < 0.99 AND tags.team != 't3'", OrderBy: []string{"metrics.rmse ASC"}},
					func(r *planRun) bool { return r.rmse < 0.99 && r.team != "t3" },
					func(a, b *planRun) int { return cmp.Or(cmp.Compare(a.rmse, b.rmse), tie(a, b)) }},
				{"lead ties desc", wharf.SearchQuery{Filter: "metrics.acc >= 0", OrderBy: []string{"metrics.acc DESC"}},
					func(r *planRun) bool { return r.accState == 0 },
					func(a, b *planRun) int { return cmp.Or(cmp.Compare(b.acc, a.acc), tie(a, b)) }},
				{"sort by param", wharf.SearchQuery{Filter: "metrics.rmse < 0.99", OrderBy: []string{"params.alpha DESC"}},
					func(r *planRun) bool { return r.rmse < 0.99 },
					func(a, b *planRun) int { return cmp.Or(strings.Compare(b.alpha, a.alpha), tie(a, b)) }},
				{"sort by metric with NaN and missing", wharf.SearchQuery{OrderBy: []string{"metrics.acc ASC"}},
					func(*planRun) bool { return true },
					func(a, b *planRun) int {
						as, av := accKey(a)
						bs, bv := accKey(b)
						if as != bs {
							return cmp.Compare(as, bs)
						}
						if as == 0 {
							if c := cmp.Compare(av, bv); c != 0 {
								return c
							}
						}
						return tie(a, b)
					}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var want []string
					var matched []*planRun
					for _, r := range data {
						if r.exp == 1 && !r.deleted && tc.match(r) {
							matched = append(matched, r)
						}
					}
					slices.SortFunc(matched, tc.compare)
					for _, r := range matched {
						want = append(want, r.id)
					}
					for _, size := range []int{100, 1000, 3000} {
						q := tc.q
						q.ExperimentIDs = []string{"1"}
						q.MaxResults = size
						var got []string
						for pages := 0; ; pages++ {
							if pages > planRuns/size+2 {
								t.Fatal("paging does not end")
							}
							runs, next, err := db.SearchRuns(ctx, "ws", q)
							if err != nil {
								t.Fatal(err)
							}
							for _, r := range runs {
								got = append(got, r.ID)
							}
							if next == "" {
								break
							}
							q.PageToken = next
						}
						if !slices.Equal(got, want) {
							t.Fatalf("pages of %d: %d runs, want %d; first difference at %d",
								size, len(got), len(want), firstDiff(got, want))
						}
					}
				})
			}
		})
	}
}

// planStore opens a fresh store of engine eng with workspace ws and the
// named experiments in it, ids 1, 2, ... in order.
func planStore(t *testing.T, eng benchEngine, experiments ...string) (*sqlstore.DB, *sql.DB) {
	db, raw := eng.open(t)
	if _, err := db.PutWorkspace(t.Context(), &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range experiments {
		if err := db.CreateExperiment(t.Context(), &wharf.Experiment{Workspace: "ws", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	return db, raw
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSearchRunsPlansWithoutStatistics checks the plans of searches like
// the tracking benchmark's (bench/trackload) on tables just filled, before
// any ANALYZE and with autovacuum off: SQLite plans them with no
// statistics, held to the store's plan by its query shape; PostgreSQL,
// planning from none, would pick nested loops that reread a table for
// every run, so the store must gather them (see freshenStatistics). On
// PostgreSQL the rows every plan node reads are summed from EXPLAIN
// ANALYZE and bounded; on SQLite, which cannot count them, EXPLAIN QUERY
// PLAN must show no table read in full and no automatic index.
func TestSearchRunsPlansWithoutStatistics(t *testing.T) {
	const small, large = 4000, 60000
	for _, eng := range benchEngines() {
		t.Run(eng.name, func(t *testing.T) {
			db, raw := planStore(t, eng, "small", "large")
			ctx := t.Context()
			if eng.name == "postgres" {
				// Keep autovacuum from gathering statistics while
				// the test runs.
				for _, table := range []string{"runs", "params", "tags", "latest_metrics"} {
					if _, err := raw.ExecContext(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Run i of experiment e has param alpha = 0.(i % 10) and
			// metric rmse spread over [0, 1), as bench/trackload seeds.
			id := eng.hex32("i")
			exp := fmt.Sprintf("CASE WHEN i < %d THEN 1 ELSE 2 END", small)
			series := eng.series(small + large)
			for _, q := range []string{
				`INSERT INTO runs (run_id, workspace, experiment_id, name, user_id, status, start_time, end_time,
					artifact_uri, lifecycle_stage)
				SELECT ` + id + `, 'ws', ` + exp + `, 'run-' || i, 'u', 'FINISHED', 1000 + i, NULL, 'x', 'active'
				FROM ` + series,
				`INSERT INTO params (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'alpha', '0.' || (i % 10) FROM ` + series,
				`INSERT INTO tags (run_id, workspace, experiment_id, key, value)
				SELECT ` + id + `, 'ws', ` + exp + `, 'mlflow.runName', 'run-' || i FROM ` + series,
				`INSERT INTO latest_metrics (run_id, workspace, experiment_id, key, value, is_nan, timestamp, step)
				SELECT ` + id + `, 'ws', ` + exp + `, 'rmse', ((i * 7919) % 10007) / 10007.0, FALSE, 1, 0 FROM ` + series,
			} {
				if _, err := raw.ExecContext(ctx, q); err != nil {
					t.Fatalf("%v\n%s", err, q)
				}
			}
			var query string
			var args []any
			sqlstore.TraceRunSearch(t, func(q string, a []any) { query, args = q, a })
			for _, tc := range []struct {
				name, exp, filter string
				orderBy           []string
				runs              int
			}{
				{"benchmark search, small experiment", "1", "metrics.rmse < 0.5 and params.alpha = '0.1'", []string{"metrics.rmse ASC"}, small},
				{"benchmark search, large experiment", "2", "metrics.rmse < 0.5 and params.alpha = '0.1'", []string{"metrics.rmse ASC"}, large},
				{"param filter, small experiment", "1", "params.alpha = '0.1'", nil, small},
				{"param filter, large experiment", "2", "params.alpha = '0.1'", nil, large},
				{"metric filter by param order, small experiment", "1", "metrics.rmse < 0.5", []string{"params.alpha DESC"}, small},
			} {
				t.Run(tc.name, func(t *testing.T) {
					query = ""
					runs, _, err := db.SearchRuns(ctx, "ws", wharf.SearchQuery{ExperimentIDs: []string{tc.exp},
						Filter: tc.filter, OrderBy: tc.orderBy, MaxResults: 100})
					if err != nil {
						t.Fatal(err)
					}
					if len(runs) != 100 || query == "" {
						t.Fatalf("%d runs, query %q", len(runs), query)
					}
					if eng.name == "sqlite" {
						checkSQLitePlan(t, raw, query, args)
						return
					}
					// A plan that suits the search reads a few rows
					// per run in the experiment at most, and far
					// fewer when it stops at the page's end; one
					// that rereads a table for each row reads
					// millions.
					read := postgresRowsRead(t, raw, query, args)
					if most := 6 * min(tc.runs, 5000); read > most {
						t.Errorf("the plan reads %d rows, more than %d:\n%s", read, most, query)
					}
				})
			}
		})
	}
}

// postgresRowsRead runs query under EXPLAIN ANALYZE, in a transaction with
// the settings SearchRuns uses, and sums the rows every plan node read:
// the rows it returned and those its filters removed, over all its loops.
func postgresRowsRead(t *testing.T, raw *sql.DB, query string, args []any) int {
	t.Helper()
	tx, err := raw.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		t.Fatal(err)
	}
	var out string
	if err := tx.QueryRowContext(t.Context(), `EXPLAIN (ANALYZE, FORMAT JSON) `+query, args...).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN answered %s (%v)", out, err)
	}
	var sum func(node map[string]any) float64
	sum = func(node map[string]any) float64 {
		num := func(k string) float64 { f, _ := node[k].(float64); return f }
		n := (num("Actual Rows") + num("Rows Removed by Filter") + num("Rows Removed by Join Filter") +
			num("Rows Removed by Index Recheck")) * num("Actual Loops")
		children, _ := node["Plans"].([]any)
		for _, c := range children {
			n += sum(c.(map[string]any))
		}
		return n
	}
	n := int(sum(plans[0].Plan))
	t.Logf("rows read: %d\n%s", n, out)
	return n
}

// checkSQLitePlan fails the test if SQLite's plan for query reads a table
// in full or builds an automatic index: each table must be searched
// through an index.
func checkSQLitePlan(t *testing.T, raw *sql.DB, query string, args []any) {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", strings.Join(plan, "\n"))
	for _, line := range plan {
		// The store's aliases: r for runs, p for params and tags, m
		// and oN for latest_metrics.
		if alias, ok := strings.CutPrefix(line, "SCAN "); ok {
			alias, _, _ = strings.Cut(alias, " ")
			if alias == "r" || alias == "p" || alias == "m" || (len(alias) > 1 && alias[0] == 'o' && alias[1] >= '0' && alias[1] <= '9') {
				t.Errorf("the plan reads table %s in full: %q\n%s", alias, line, query)
			}
		}
		if strings.Contains(line, "AUTOMATIC") {
			t.Errorf("the plan builds an automatic index: %q\n%s", line, query)
		}
	}
}
