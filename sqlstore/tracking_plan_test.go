package sqlstore_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
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
			db, raw := eng.open(t)
			ctx := t.Context()
			if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"one", "two"} {
				if err := db.CreateExperiment(ctx, &wharf.Experiment{Workspace: "ws", Name: name}); err != nil {
					t.Fatal(err)
				}
			}
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

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
