package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
)

// boundFilter returns a filter of n clauses, the i-th made by clause(i).
func boundFilter(n int, clause func(i int) string) string {
	clauses := make([]string, n)
	for i := range clauses {
		clauses[i] = clause(i)
	}
	return strings.Join(clauses, " AND ")
}

// maxInList is an IN list as long as a filter may be, of the shortest
// values: the most bound parameters a filter can ask for.
func maxInList(attr string) string {
	head := attr + " IN ("
	n := (mlflowsearch.MaxFilterLength - len(head) - 1) / len("'',")
	return head + strings.TrimSuffix(strings.Repeat("'',", n), ",") + ")"
}

// testSearchFilterBounds: the largest filters and orderings the parser
// lets through run on the store, and larger ones are the client's error,
// on every search.
func testSearchFilterBounds(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	reg := registryOf(t, s)
	e := mkExperiment(t, ts, "ws", "exp")
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "run", metrics: map[string]float64{"m0": 1}, tags: map[string]string{"t0": "x"}})
	ids := []string{e.ID}
	metrics := func(i int) string { return fmt.Sprintf("metrics.m%d > 0", i) }
	params := func(i int) string { return fmt.Sprintf("params.p%d = 'x'", i) }
	tags := func(i int) string { return fmt.Sprintf("tags.t%d = 'x'", i) }
	byMetric := func(i int) string { return fmt.Sprintf("metrics.m%d DESC", i) }
	byName := func(int) string { return "name" }
	searches := []struct {
		name    string
		clauses []func(int) string
		orderBy func(int) string
		inList  string
		search  func(q wharf.SearchQuery) error
		// orderMax is the most order-by clauses a valid search has, when
		// fewer than mlflowsearch.MaxOrderByClauses: the registry refuses
		// a field ordered by twice, as MLflow's does.
		orderMax int
	}{
		{"runs", []func(int) string{metrics, params, tags}, byMetric, "attributes.run_id", func(q wharf.SearchQuery) error {
			q.ExperimentIDs = ids
			_, _, err := ts.SearchRuns(ctx(t), "ws", q)
			return err
		}, 0},
		{"experiments", []func(int) string{tags}, byName, "", func(q wharf.SearchQuery) error {
			_, _, err := ts.SearchExperiments(ctx(t), "ws", q)
			return err
		}, 0},
		{"registered models", []func(int) string{tags}, byName, "", func(q wharf.SearchQuery) error {
			_, _, err := reg.SearchRegisteredModels(ctx(t), "ws", q)
			return err
		}, 1},
		{"model versions", []func(int) string{tags}, byName, "run_id", func(q wharf.SearchQuery) error {
			_, _, err := reg.SearchModelVersions(ctx(t), "ws", q)
			return err
		}, 1},
		{"logged models", []func(int) string{metrics, params, tags}, byMetric, "attributes.source_run_id", func(q wharf.SearchQuery) error {
			q.ExperimentIDs = ids
			_, _, err := reg.SearchLoggedModels(ctx(t), "ws", q)
			return err
		}, 0},
	}
	for _, sc := range searches {
		orderBy := make([]string, mlflowsearch.MaxOrderByClauses+1)
		for i := range orderBy {
			orderBy[i] = sc.orderBy(i)
		}
		most := mlflowsearch.MaxOrderByClauses
		if sc.orderMax > 0 {
			most = sc.orderMax
		}
		for _, clause := range sc.clauses {
			q := wharf.SearchQuery{Filter: boundFilter(mlflowsearch.MaxFilterClauses, clause), OrderBy: orderBy[:most]}
			if err := sc.search(q); err != nil {
				t.Errorf("%s, %d clauses like %q, %d like %q: %v", sc.name, mlflowsearch.MaxFilterClauses, clause(0), mlflowsearch.MaxOrderByClauses, orderBy[0], err)
			}
			if sc.orderMax > 0 {
				err := sc.search(wharf.SearchQuery{OrderBy: orderBy[:sc.orderMax+1]})
				wantCode(t, err, wharf.EINVALID)
				wantMessage(t, err, "duplicate fields")
			}
			err := sc.search(wharf.SearchQuery{Filter: boundFilter(2000, clause)})
			wantCode(t, err, wharf.EINVALID)
			wantMessage(t, err, "'filter'")
		}
		err := sc.search(wharf.SearchQuery{OrderBy: orderBy})
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err, "'order_by'")
		if sc.inList != "" {
			if err := sc.search(wharf.SearchQuery{Filter: maxInList(sc.inList)}); err != nil {
				t.Errorf("%s, %s IN a list as long as a filter may be: %v", sc.name, sc.inList, err)
			}
		}
		err = sc.search(wharf.SearchQuery{Filter: "tags.t = '" + strings.Repeat("x", mlflowsearch.MaxFilterLength) + "'"})
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err, "'filter'")
	}
}
