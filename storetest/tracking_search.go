package storetest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// runSpec describes a run for the search tests.
type runSpec struct {
	name    string
	status  string
	start   int64
	end     int64
	params  map[string]string
	tags    map[string]string
	metrics map[string]float64
	inputs  []*wharf.DatasetInput
}

func mkSearchRun(t *testing.T, ts wharf.TrackingService, workspace, expID string, sp runSpec) *wharf.Run {
	t.Helper()
	r := &wharf.Run{Workspace: workspace, ExperimentID: expID, Name: sp.name, UserID: "alice",
		StartTime: sp.start, Tags: sp.tags}
	must(t, ts.CreateRun(ctx(t), r))
	var ps []*wharf.Param
	for _, k := range sortedMapKeys(sp.params) {
		ps = append(ps, &wharf.Param{Key: k, Value: sp.params[k]})
	}
	var ms []*wharf.Metric
	for _, k := range sortedMapKeys(sp.metrics) {
		ms = append(ms, metric(k, sp.metrics[k], sp.start, 0))
	}
	must(t, ts.LogBatch(ctx(t), workspace, r.ID, ms, ps, nil))
	if len(sp.inputs) > 0 {
		must(t, ts.LogInputs(ctx(t), workspace, r.ID, sp.inputs, nil))
	}
	if sp.status != "" || sp.end != 0 {
		_, err := ts.UpdateRun(ctx(t), workspace, r.ID, sp.status, sp.end, "")
		must(t, err)
	}
	return r
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func runNames(runs []*wharf.Run) []string {
	names := []string{}
	for _, r := range runs {
		names = append(names, r.Name)
	}
	return names
}

// searchNames returns the names of the runs a search finds, in order.
func searchNames(t *testing.T, ts wharf.TrackingService, workspace string, q wharf.SearchQuery) []string {
	t.Helper()
	runs, token, err := ts.SearchRuns(ctx(t), workspace, q)
	if err != nil {
		t.Fatalf("search %q order %v: %v", q.Filter, q.OrderBy, err)
	}
	if token != "" {
		t.Errorf("search %q: next page token %q on a complete result", q.Filter, token)
	}
	return runNames(runs)
}

func dataset(name, digest, context string) *wharf.DatasetInput {
	in := &wharf.DatasetInput{Dataset: wharf.Dataset{Name: name, Digest: digest, SourceType: "local", Source: "{}"}}
	if context != "" {
		in.Tags = map[string]string{"mlflow.data.context": context}
	}
	return in
}

func testSearchRunsFilters(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e1 := mkExperiment(t, ts, "ws", "one")
	e2 := mkExperiment(t, ts, "ws", "two")
	prefix := strings.Repeat("p", 256)
	r1 := mkSearchRun(t, ts, "ws", e1.ID, runSpec{name: "alpha-run", status: wharf.RunFinished, start: 1000, end: 5000,
		params:  map[string]string{"lr": "0.1", "model": "BERT"},
		tags:    map[string]string{"team": "NLP", "env": "prod"},
		metrics: map[string]float64{"acc": 0.9, "loss": 0.2},
		inputs:  []*wharf.DatasetInput{dataset("train", "d-train", "training")}})
	r2 := mkSearchRun(t, ts, "ws", e1.ID, runSpec{name: "Beta-run", start: 2000,
		params:  map[string]string{"lr": "0.01", "model": "bert-base", "long": prefix + "-two"},
		tags:    map[string]string{"team": "nlp"},
		metrics: map[string]float64{"acc": 0.7},
		inputs:  []*wharf.DatasetInput{dataset("eval", "d-eval", "")}})
	r3 := mkSearchRun(t, ts, "ws", e1.ID, runSpec{name: "gamma", status: wharf.RunFailed, start: 3000,
		params:  map[string]string{"lr": "0.1", "long": prefix + "-three"},
		metrics: map[string]float64{"acc": math.NaN(), "loss": 0.5}})
	mkSearchRun(t, ts, "ws", e2.ID, runSpec{name: "delta", start: 4000,
		params: map[string]string{"lr": "0.1"}, metrics: map[string]float64{"acc": 0.95}})

	a, b, g := "alpha-run", "Beta-run", "gamma"
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{g, b, a}},
		{"metrics.acc > 0.8", []string{a}},
		{"metrics.acc >= 0.7", []string{b, a}},
		{"metrics.acc < 1", []string{b, a}},
		{"metrics.acc != 0.9", []string{g, b}},
		{"metrics.loss = 0.5", []string{g}},
		{"metrics.loss <= 0.2", []string{a}},
		{"metrics.absent > 0", nil},
		{"params.lr = '0.1'", []string{g, a}},
		{"params.lr != '0.1'", []string{b}},
		{"params.lr = '0.10'", nil},
		{"params.long = '" + prefix + "-two'", []string{b}},
		{"params.long = '" + prefix + "'", nil},
		{"params.long LIKE '" + prefix + "-t%'", []string{g, b}},
		{"params.model LIKE 'bert%'", []string{b}},
		{"params.model ILIKE 'bert%'", []string{b, a}},
		{"params.model LIKE '%ER%'", []string{a}},
		{"params.model LIKE 'b_rt%'", []string{b}},
		{"params.model LIKE 'BERT'", []string{a}},
		{"params.model ILIKE 'BERT-BASE'", []string{b}},
		{"tags.team = 'nlp'", []string{b}},
		{"tags.team != 'nlp'", []string{a}},
		{"tags.team ILIKE 'NLP'", []string{b, a}},
		{"tags.team LIKE 'NLP'", []string{a}},
		{"tags.env IS NULL", []string{g, b}},
		{"tags.env IS NOT NULL", []string{a}},
		{"tags.`mlflow.runName` = 'gamma'", []string{g}},
		{"attributes.status = 'FINISHED'", []string{a}},
		{"status != 'FINISHED'", []string{g, b}},
		{"attributes.status LIKE '%ING'", []string{b}},
		{"attributes.run_name = 'gamma'", []string{g}},
		{"run_name LIKE '%-run'", []string{b, a}},
		{"run_name LIKE 'beta%'", nil},
		{"run_name ILIKE 'beta%'", []string{b}},
		{"attributes.user_id = 'alice'", []string{g, b, a}},
		{"attributes.artifact_uri LIKE 'mlflow-artifacts:/1/%'", []string{g, b, a}},
		{"attributes.start_time > 1000", []string{g, b}},
		{"start_time >= 2000", []string{g, b}},
		{"start_time < 2000", []string{a}},
		{"start_time <= 2000", []string{b, a}},
		{"start_time = 3000", []string{g}},
		{"start_time != 3000", []string{b, a}},
		{"start_time > 1999.5", []string{g, b}},
		{"start_time >= 1000.5", []string{g, b}},
		{"start_time < 2000.5", []string{b, a}},
		{"start_time <= 2999.9", []string{b, a}},
		{"start_time = 2000.5", nil},
		{"start_time != 2000.5", []string{g, b, a}},
		{"attributes.end_time > 0", []string{a}},
		{"attributes.run_id IN ('" + r1.ID + "', '" + r3.ID + "')", []string{g, a}},
		{"run_id NOT IN ('" + r1.ID + "')", []string{g, b}},
		{"run_id = '" + r2.ID + "'", []string{b}},
		{"run_id != '" + r2.ID + "'", []string{g, a}},
		{"datasets.name = 'train'", []string{a}},
		{"datasets.digest = 'd-eval'", []string{b}},
		{"datasets.context = 'training'", []string{a}},
		{"datasets.name IN ('train', 'eval')", []string{b, a}},
		{"datasets.name NOT IN ('train')", []string{b}},
		{"datasets.name LIKE 'TR%'", nil},
		{"datasets.name ILIKE 'TR%'", []string{a}},
		{"params.lr = '0.1' AND metrics.loss < 0.3", []string{a}},
		{"params.lr = '0.1' AND tags.env IS NULL", []string{g}},
		{"metrics.acc > 0 AND params.model ILIKE 'bert%' AND tags.team = 'NLP'", []string{a}},
	} {
		got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e1.ID}, Filter: tc.filter})
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("filter %q: got %q, want %q", tc.filter, got, tc.want)
		}
	}

	// Several experiments at once.
	got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e1.ID, e2.ID}, Filter: "params.lr = '0.1'"})
	same(t, "two experiments", got, []string{"delta", g, a})

	// Search results carry what the runs logged.
	runs, _, err := ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e1.ID}, Filter: "run_name = 'alpha-run'"})
	must(t, err)
	if len(runs) != 1 {
		t.Fatalf("found %d runs", len(runs))
	}
	sameRun(t, "searched run", runs[0], findRun(t, ts, "ws", r1.ID))
}

// testSearchRunsLike checks that LIKE patterns treat only % and _ as
// wildcards, with no escape character, on every engine.
func testSearchRunsLike(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "lit", start: 2, params: map[string]string{
		"expr": "a*b?[c]", "path": `x\y`, "pct": "100%", "under": "a_b", "city": "Zürich"}})
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "other", start: 1, params: map[string]string{
		"expr": "aXbY[c]", "path": `x\\y`, "pct": "1000", "under": "aXb", "city": "Zurich"}})
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"params.expr LIKE 'a*b?[c]'", []string{"lit"}},
		{"params.expr LIKE 'a*b?[c'", nil},
		{"params.expr LIKE 'a%[c]'", []string{"lit", "other"}},
		{"params.expr LIKE 'a_b_[c]'", []string{"lit", "other"}},
		{"params.expr LIKE '[abc]%'", nil},
		{"params.expr ILIKE 'A*B?[C]'", []string{"lit"}},
		{"params.expr ILIKE '%Y[C]'", []string{"other"}},
		{`params.path LIKE 'x\\y'`, []string{"lit"}},
		{`params.path LIKE 'x%y'`, []string{"lit", "other"}},
		{"params.pct LIKE '100%'", []string{"lit", "other"}},
		{"params.under LIKE 'a_b'", []string{"lit", "other"}},
		{"params.city LIKE 'Z%'", []string{"lit", "other"}},
		{"params.city LIKE 'z%'", nil},
		{"params.city ILIKE 'zürich'", []string{"lit"}},
		{"params.city LIKE 'Zürich'", []string{"lit"}},
	} {
		got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, Filter: tc.filter})
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("filter %q: got %q, want %q", tc.filter, got, tc.want)
		}
	}
}

func testSearchRunsOrder(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	nan := math.NaN()
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "ra", start: 1000, end: 9000,
		params: map[string]string{"p": "b"}, tags: map[string]string{"t": "x"}, metrics: map[string]float64{"acc": 0.5}})
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "rb", start: 2000,
		tags: map[string]string{"t": "y"}, metrics: map[string]float64{"acc": 0.9}})
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "rc", start: 3000,
		params: map[string]string{"p": "a"}, metrics: map[string]float64{"acc": nan}})
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "rd", start: 4000, end: 8000,
		params: map[string]string{"p": "c"}})
	mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "re", start: 5000,
		params: map[string]string{"p": "B"}, metrics: map[string]float64{"acc": 0.1}})
	// Two runs started at once are ordered by run id.
	rf := mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "rf", start: 6000})
	rg := mkSearchRun(t, ts, "ws", e.ID, runSpec{name: "rg", start: 6000})
	fg := []string{"rf", "rg"}
	if rg.ID < rf.ID {
		fg = []string{"rg", "rf"}
	}
	with := func(names ...any) []string {
		var out []string
		for _, n := range names {
			switch v := n.(type) {
			case string:
				out = append(out, v)
			case []string:
				out = append(out, v...)
			}
		}
		return out
	}
	for _, tc := range []struct {
		order []string
		want  []string
	}{
		{nil, with(fg, "re", "rd", "rc", "rb", "ra")},
		{[]string{"metrics.acc ASC"}, with("re", "ra", "rb", "rc", fg, "rd")},
		{[]string{"metrics.acc"}, with("re", "ra", "rb", "rc", fg, "rd")},
		{[]string{"metrics.acc DESC"}, with("rb", "ra", "re", "rc", fg, "rd")},
		{[]string{"params.p ASC"}, with("re", "rc", "ra", "rd", fg, "rb")},
		{[]string{"params.p DESC"}, with("rd", "ra", "rc", "re", fg, "rb")},
		{[]string{"tags.t DESC"}, with("rb", "ra", fg, "re", "rd", "rc")},
		{[]string{"attributes.start_time ASC"}, with("ra", "rb", "rc", "rd", "re", fg)},
		{[]string{"start_time DESC"}, with(fg, "re", "rd", "rc", "rb", "ra")},
		{[]string{"attributes.run_name DESC"}, with("rg", "rf", "re", "rd", "rc", "rb", "ra")},
		{[]string{"attributes.end_time ASC"}, with("rd", "ra", fg, "re", "rc", "rb")},
		{[]string{"attributes.end_time DESC"}, with("ra", "rd", fg, "re", "rc", "rb")},
		{[]string{"params.p DESC", "metrics.acc ASC"}, with("rd", "ra", "rc", "re", "rb", fg)},
	} {
		got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, OrderBy: tc.order})
		if !slices.Equal(got, tc.want) {
			t.Errorf("order %q: got %q, want %q", tc.order, got, tc.want)
		}
	}

	runs, _, err := ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, OrderBy: []string{"run_id"}})
	must(t, err)
	if !slices.IsSortedFunc(runs, func(a, b *wharf.Run) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("order by run_id: %q", runNames(runs))
	}
	_, _, err = ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID},
		OrderBy: []string{"metrics.acc", "metrics.acc DESC"}})
	wantCode(t, err, wharf.EINVALID)
}

// testSearchRunsPaging pages through 250 runs, many started at the same
// millisecond: every run comes exactly once, in the order of one big page.
func testSearchRunsPaging(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	for i := range 250 {
		r := &wharf.Run{Workspace: "ws", ExperimentID: e.ID, Name: fmt.Sprintf("run-%03d", i), StartTime: int64(1000 + i/5)}
		must(t, ts.CreateRun(ctx(t), r))
		var ms []*wharf.Metric
		if i%3 != 0 {
			ms = append(ms, metric("m", float64(i%17), 1, 0))
		}
		must(t, ts.LogBatch(ctx(t), "ws", r.ID, ms, []*wharf.Param{{Key: "p", Value: fmt.Sprint(i % 4)}}, nil))
	}
	for _, q := range []wharf.SearchQuery{
		{},
		{OrderBy: []string{"metrics.m DESC"}},
		{OrderBy: []string{"params.p ASC", "attributes.start_time ASC"}},
		{Filter: "metrics.m > 3", OrderBy: []string{"metrics.m"}},
	} {
		q.ExperimentIDs = []string{e.ID}
		q.MaxResults = 1000
		all, token, err := ts.SearchRuns(ctx(t), "ws", q)
		must(t, err)
		if token != "" {
			t.Fatalf("one page of everything has next token %q", token)
		}
		if q.Filter == "" && len(all) != 250 {
			t.Fatalf("%d runs found, want 250", len(all))
		}
		q.MaxResults = 100
		var paged []*wharf.Run
		pages := 0
		for {
			page, next, err := ts.SearchRuns(ctx(t), "ws", q)
			must(t, err)
			pages++
			if len(page) > 100 {
				t.Fatalf("page of %d runs", len(page))
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			q.PageToken = next
		}
		if want := (len(all) + 99) / 100; pages != want {
			t.Errorf("order %v: %d pages, want %d", q.OrderBy, pages, want)
		}
		seen := map[string]bool{}
		for _, r := range paged {
			if seen[r.ID] {
				t.Fatalf("order %v: run %s came twice", q.OrderBy, r.Name)
			}
			seen[r.ID] = true
		}
		same(t, fmt.Sprintf("paged order %v", q.OrderBy), runNames(paged), runNames(all))
	}
}

func testSearchRunsViewTypes(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	for i := range 3 {
		mkSearchRun(t, ts, "ws", e.ID, runSpec{name: fmt.Sprint("r", i), start: int64(i + 1)})
	}
	runs, _, err := ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, Filter: "run_name = 'r1'"})
	must(t, err)
	must(t, ts.SetRunLifecycle(ctx(t), "ws", runs[0].ID, wharf.LifecycleDeleted))
	for view, want := range map[int][]string{
		0:                     {"r2", "r0"},
		wharf.ViewActiveOnly:  {"r2", "r0"},
		wharf.ViewDeletedOnly: {"r1"},
		wharf.ViewAll:         {"r2", "r1", "r0"},
	} {
		got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, ViewType: view})
		same(t, fmt.Sprint("view type ", view), got, want)
	}
	must(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, wharf.LifecycleDeleted))
	got := searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}})
	if len(got) != 0 {
		t.Errorf("runs of a deleted experiment found as active: %q", got)
	}
	got = searchNames(t, ts, "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, ViewType: wharf.ViewDeletedOnly})
	same(t, "runs of a deleted experiment", got, []string{"r2", "r1", "r0"})
}

func testSearchRunsInvalid(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	mkRun(t, ts, "ws", e.ID, "run")
	ids := []string{e.ID}
	for _, q := range []wharf.SearchQuery{
		{},
		{ExperimentIDs: ids, Filter: "metrics.acc >"},
		{ExperimentIDs: ids, Filter: "foo.bar = 1"},
		{ExperimentIDs: ids, Filter: "params.x = 1"},
		{ExperimentIDs: ids, Filter: "metrics.acc = 'x'"},
		{ExperimentIDs: ids, Filter: "metrics.a > 1 OR metrics.b > 1"},
		{ExperimentIDs: ids, OrderBy: []string{"metrics.acc SIDEWAYS"}},
		{ExperimentIDs: ids, MaxResults: 50001},
		{ExperimentIDs: ids, MaxResults: -1},
		{ExperimentIDs: ids, PageToken: "%%%"},
		{ExperimentIDs: ids, ViewType: 9},
	} {
		_, _, err := ts.SearchRuns(ctx(t), "ws", q)
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err)
	}
	runs, _, err := ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: ids, MaxResults: 50000})
	must(t, err)
	if len(runs) != 1 {
		t.Fatalf("found %d runs", len(runs))
	}
	runs, _, err = ts.SearchRuns(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{"x"}})
	must(t, err)
	if len(runs) != 0 {
		t.Fatalf("an invalid experiment id found %d runs", len(runs))
	}
}

func testSearchExperiments(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	clk := withClock(t, s)
	_, err := ts.FindExperiment(ctx(t), "ws", "0")
	must(t, err)
	clk.Advance(time.Second)
	a := &wharf.Experiment{Workspace: "ws", Name: "a-exp", Tags: map[string]string{"team": "x"}}
	must(t, ts.CreateExperiment(ctx(t), a))
	clk.Advance(time.Second)
	mkExperiment(t, ts, "ws", "b-exp")
	clk.Advance(time.Second)
	c := &wharf.Experiment{Workspace: "ws", Name: "c-exp", Tags: map[string]string{"team": "Y"}}
	must(t, ts.CreateExperiment(ctx(t), c))
	must(t, ts.SetExperimentLifecycle(ctx(t), "ws", "2", wharf.LifecycleDeleted))

	names := func(q wharf.SearchQuery) []string {
		t.Helper()
		exps, token, err := ts.SearchExperiments(ctx(t), "ws", q)
		if err != nil {
			t.Fatalf("search %q: %v", q.Filter, err)
		}
		if token != "" {
			t.Errorf("search %q: token on a complete result", q.Filter)
		}
		out := []string{}
		for _, e := range exps {
			out = append(out, e.Name)
		}
		return out
	}
	for _, tc := range []struct {
		q    wharf.SearchQuery
		want []string
	}{
		{wharf.SearchQuery{}, []string{"c-exp", "a-exp", "Default"}},
		{wharf.SearchQuery{ViewType: wharf.ViewAll}, []string{"c-exp", "b-exp", "a-exp", "Default"}},
		{wharf.SearchQuery{ViewType: wharf.ViewDeletedOnly}, []string{"b-exp"}},
		{wharf.SearchQuery{Filter: "name = 'a-exp'"}, []string{"a-exp"}},
		{wharf.SearchQuery{Filter: "attributes.name LIKE '%-exp'"}, []string{"c-exp", "a-exp"}},
		{wharf.SearchQuery{Filter: "name LIKE 'A-%'"}, nil},
		{wharf.SearchQuery{Filter: "name ILIKE 'A-%'"}, []string{"a-exp"}},
		{wharf.SearchQuery{Filter: "name != 'a-exp'"}, []string{"c-exp", "Default"}},
		{wharf.SearchQuery{Filter: "tags.team = 'x'"}, []string{"a-exp"}},
		{wharf.SearchQuery{Filter: "tags.team ILIKE 'y'"}, []string{"c-exp"}},
		{wharf.SearchQuery{Filter: "tags.team != 'x'"}, []string{"c-exp"}},
		{wharf.SearchQuery{Filter: "tags.team IS NULL"}, []string{"Default"}},
		{wharf.SearchQuery{Filter: "creation_time > " + fmt.Sprint(a.CreationTime)}, []string{"c-exp"}},
		{wharf.SearchQuery{Filter: "creation_time >= " + fmt.Sprint(a.CreationTime)}, []string{"c-exp", "a-exp"}},
		{wharf.SearchQuery{Filter: "last_update_time < " + fmt.Sprint(a.CreationTime)}, []string{"Default"}},
		// Byte order: upper case sorts before lower case.
		{wharf.SearchQuery{OrderBy: []string{"name ASC"}}, []string{"Default", "a-exp", "c-exp"}},
		{wharf.SearchQuery{OrderBy: []string{"name DESC"}}, []string{"c-exp", "a-exp", "Default"}},
		{wharf.SearchQuery{OrderBy: []string{"experiment_id DESC"}}, []string{"c-exp", "a-exp", "Default"}},
		{wharf.SearchQuery{OrderBy: []string{"creation_time ASC"}}, []string{"Default", "a-exp", "c-exp"}},
	} {
		if got := names(tc.q); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("search %+v: got %q, want %q", tc.q, got, tc.want)
		}
	}

	clk.Advance(time.Second)
	must(t, ts.RenameExperiment(ctx(t), "ws", a.ID, "a-renamed"))
	same(t, "by last update", names(wharf.SearchQuery{OrderBy: []string{"last_update_time DESC"}}),
		[]string{"a-renamed", "c-exp", "Default"})

	// Found experiments carry their tags.
	exps, _, err := ts.SearchExperiments(ctx(t), "ws", wharf.SearchQuery{Filter: "name = 'c-exp'"})
	must(t, err)
	if len(exps) != 1 {
		t.Fatalf("found %d experiments", len(exps))
	}
	got, err := ts.FindExperiment(ctx(t), "ws", c.ID)
	must(t, err)
	same(t, "searched experiment", exps[0], got)

	// One at a time.
	var paged []string
	q := wharf.SearchQuery{MaxResults: 1, ViewType: wharf.ViewAll}
	for range 10 {
		page, next, err := ts.SearchExperiments(ctx(t), "ws", q)
		must(t, err)
		for _, e := range page {
			paged = append(paged, e.Name)
		}
		if next == "" {
			break
		}
		q.PageToken = next
	}
	same(t, "paged experiments", paged, []string{"c-exp", "b-exp", "a-renamed", "Default"})

	for _, q := range []wharf.SearchQuery{
		{MaxResults: 50001},
		{Filter: "metrics.acc > 1"},
		{Filter: "name > 'a'"},
		{OrderBy: []string{"tags.team"}},
		{ViewType: 5},
		{PageToken: "nope"},
	} {
		_, _, err := ts.SearchExperiments(ctx(t), "ws", q)
		wantCode(t, err, wharf.EINVALID)
	}
}
