package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// testLoggedModelMetrics: metrics logged with a model_id become the logged
// model's metrics, every value with its run and dataset, as MLflow keeps
// them; logged-model search filters and orders by them, scoped to
// datasets.
func testLoggedModelMetrics(t *testing.T, open Opener) {
	s, r, clk := openRegistry(t, open)
	ts := tracker(t, s)
	e := mkExperiment(t, ts, "ws", "exp")
	run := mkRun(t, ts, "ws", e.ID, "run")
	// One second apart, so that the default order (newest first) is c, b, a.
	a := mkLoggedModel(t, r, "ws", e.ID, "a")
	clk.Advance(time.Second)
	b := mkLoggedModel(t, r, "ws", e.ID, "b")
	clk.Advance(time.Second)
	c := mkLoggedModel(t, r, "ws", e.ID, "c")
	on := func(m *wharf.Metric, model, dataset, digest string) *wharf.Metric {
		m.ModelID, m.DatasetName, m.DatasetDigest = model, dataset, digest
		return m
	}
	logMetrics(t, ts, "ws", run.ID,
		on(metric("acc", 0.7, 100, 1), a.ID, "eval", "d2"),
		on(metric("acc", 0.9, 200, 2), a.ID, "eval", "d2"),
		// The same model, key, time, step and run again keeps the first.
		on(metric("acc", 0.1, 200, 2), a.ID, "eval", "d2"),
		on(metric("acc", 0.8, 150, 1), b.ID, "train", "d1"),
		on(metric("f1", 0.6, 300, 0), b.ID, "eval", "d2"),
		on(metric("acc", math.NaN(), 400, 3), c.ID, "", ""),
		// An id that names no logged model records nothing for it.
		on(metric("acc", 0.5, 500, 0), "m-00000000000000000000000000000000", "", ""),
		metric("plain", 1, 600, 0))

	got := findLogged(t, r, a.ID).Metrics
	same(t, "metrics of a", got, []*wharf.Metric{
		{Key: "acc", Value: 0.7, Timestamp: 100, Step: 1, RunID: run.ID, ModelID: a.ID, DatasetName: "eval", DatasetDigest: "d2"},
		{Key: "acc", Value: 0.9, Timestamp: 200, Step: 2, RunID: run.ID, ModelID: a.ID, DatasetName: "eval", DatasetDigest: "d2"},
	})
	// MLflow stores a NaN of a model's metric as 0.
	same(t, "metrics of c", findLogged(t, r, c.ID).Metrics, []*wharf.Metric{
		{Key: "acc", Value: 0, Timestamp: 400, Step: 3, RunID: run.ID, ModelID: c.ID},
	})
	// The run's own history has every value, NaN included.
	hist, _, err := ts.MetricHistory(ctx(t), "ws", run.ID, "acc", 0, "")
	must(t, err)
	if len(hist) != 6 {
		t.Errorf("run history has %d acc values, want 6", len(hist))
	}

	all := []string{e.ID}
	names := func(q wharf.SearchQuery) []string {
		t.Helper()
		q.ExperimentIDs = all
		ms, _, err := r.SearchLoggedModels(ctx(t), "ws", q)
		must(t, err)
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	eval := []wharf.DatasetRef{{Name: "eval", Digest: "d2"}}
	same(t, "metric filter: any value", names(wharf.SearchQuery{Filter: "metrics.acc > 0.85"}), []string{"a"})
	same(t, "metric filter <=", names(wharf.SearchQuery{Filter: "metrics.acc <= 0.7"}), []string{"c", "a"})
	same(t, "metric filter on datasets", names(wharf.SearchQuery{Filter: "metrics.acc > 0.75", Datasets: eval}), []string{"a"})
	same(t, "datasets alone", names(wharf.SearchQuery{Datasets: eval}), []string{"b", "a"})
	// A dataset named without a digest matches metrics logged without one,
	// as MLflow's store compares.
	same(t, "dataset without digest", names(wharf.SearchQuery{Datasets: []wharf.DatasetRef{{Name: "train"}}}), []string{})
	same(t, "order by latest value", names(wharf.SearchQuery{OrderFields: []wharf.OrderField{{Field: "metrics.acc", Ascending: true}}}),
		[]string{"c", "b", "a"})
	same(t, "order by metric descending, missing last",
		names(wharf.SearchQuery{OrderFields: []wharf.OrderField{{Field: "metrics.f1", Ascending: false}}}),
		[]string{"b", "c", "a"})
	same(t, "order by metric on a dataset",
		names(wharf.SearchQuery{OrderFields: []wharf.OrderField{{Field: "metrics.acc", Ascending: true, Dataset: wharf.DatasetRef{Name: "train"}}}}),
		[]string{"b", "c", "a"})
	same(t, "order by string clause", names(wharf.SearchQuery{OrderBy: []string{"metrics.acc DESC"}}), []string{"a", "b", "c"})
	for _, q := range []wharf.SearchQuery{
		{OrderFields: []wharf.OrderField{{Field: "params.alpha"}}},
		{OrderFields: []wharf.OrderField{{Field: "nope"}}},
		{Datasets: []wharf.DatasetRef{{Digest: "d2"}}},
		{Filter: "metrics.acc > 'x'"},
	} {
		q.ExperimentIDs = all
		_, _, err := r.SearchLoggedModels(ctx(t), "ws", q)
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err)
	}

	// A model's metrics go with the model.
	must(t, r.DeleteLoggedModel(ctx(t), "ws", b.ID))
	ms, _, err := r.SearchLoggedModels(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: all, Filter: "metrics.f1 > 0"})
	must(t, err)
	if len(ms) != 0 {
		t.Errorf("deleted model's metrics still found: %v", ms)
	}
}

// testModelInputs: log_inputs with models records them on the run, each
// once; get-run returns them.
func testModelInputs(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")
	must(t, ts.LogInputs(ctx(t), "ws", r.ID, nil, []*wharf.ModelInput{{ModelID: "m-b"}, {ModelID: "m-a"}}))
	must(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{{Dataset: wharf.Dataset{Name: "d", Digest: "x"}}},
		[]*wharf.ModelInput{{ModelID: "m-a"}}))
	got := findRun(t, ts, "ws", r.ID)
	same(t, "model inputs", got.ModelInputs, []*wharf.ModelInput{{ModelID: "m-a"}, {ModelID: "m-b"}})
	if len(got.Inputs) != 1 {
		t.Errorf("dataset inputs %v", got.Inputs)
	}
	wantCode(t, ts.LogInputs(ctx(t), "ws", r.ID, nil, []*wharf.ModelInput{{}}), wharf.EINVALID)
	// A failed call writes nothing.
	wantCode(t, ts.LogInputs(ctx(t), "ws", r.ID, nil, []*wharf.ModelInput{{ModelID: "m-c"}, nil}), wharf.EINVALID)
	same(t, "after refusals", findRun(t, ts, "ws", r.ID).ModelInputs, []*wharf.ModelInput{{ModelID: "m-a"}, {ModelID: "m-b"}})
}

// testMetricHistoryBulk: the UI's histories of many runs, whole and
// sampled as MLflow samples them.
func testMetricHistoryBulk(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	mkWorkspace(t, s, "other")
	e := mkExperiment(t, ts, "ws", "exp")
	r1 := mkRun(t, ts, "ws", e.ID, "one")
	r2 := mkRun(t, ts, "ws", e.ID, "two")
	foreign := mkRun(t, ts, "other", "0", "foreign")
	var ms []*wharf.Metric
	for i := range 30 {
		ms = append(ms, metric("loss", 1/float64(i+1), int64(10000+i), int64(i/2)))
	}
	logMetrics(t, ts, "ws", r1.ID, ms...)
	for i := range 5 {
		logMetrics(t, ts, "ws", r2.ID, metric("loss", float64(i), int64(20000+i), int64(i)))
	}
	logMetrics(t, ts, "other", foreign.ID, metric("loss", 9, 1, 0))

	points := func(ms []*wharf.Metric) [][3]float64 {
		var out [][3]float64
		for _, m := range ms {
			n := 1.0
			if m.RunID == r2.ID {
				n = 2
			}
			out = append(out, [3]float64{n, float64(m.Step), float64(m.Timestamp)})
		}
		return out
	}
	bulk, err := ts.MetricHistoryBulk(ctx(t), "ws", []string{r2.ID, r1.ID, foreign.ID, "nope"}, "loss", 100)
	must(t, err)
	if len(bulk) != 35 {
		t.Fatalf("bulk history has %d values, want 35", len(bulk))
	}
	for i := 1; i < len(bulk); i++ {
		if bulk[i-1].RunID > bulk[i].RunID || (bulk[i-1].RunID == bulk[i].RunID && bulk[i-1].Timestamp > bulk[i].Timestamp) {
			t.Fatalf("bulk history out of order at %d: %+v then %+v", i, bulk[i-1], bulk[i])
		}
	}
	limited, err := ts.MetricHistoryBulk(ctx(t), "ws", []string{r1.ID}, "loss", 4)
	must(t, err)
	if len(limited) != 4 || limited[3].Timestamp != 10003 {
		t.Errorf("limited bulk history %v", points(limited))
	}

	sample := func(max int, steps *[2]int64, runs ...string) [][3]float64 {
		t.Helper()
		ms, err := ts.MetricHistoryBulkInterval(ctx(t), "ws", runs, "loss", max, steps)
		must(t, err)
		return points(ms)
	}
	// 30 rows in 7 buckets of 5, 5, 4, 4, 4, 4 and 4 rows: the first row
	// of each, the last of them giving way to the history's last row, as
	// seven are kept already.
	same(t, "sampled", sample(7, nil, r1.ID), [][3]float64{
		{1, 0, 10000}, {1, 2, 10005}, {1, 5, 10010}, {1, 7, 10014}, {1, 9, 10018}, {1, 11, 10022}, {1, 14, 10029}})
	same(t, "within steps", sample(4, &[2]int64{3, 9}, r1.ID, r2.ID), [][3]float64{
		{1, 3, 10006}, {1, 5, 10010}, {1, 7, 10014}, {1, 9, 10019}, {2, 3, 20003}, {2, 4, 20004}})
	same(t, "one: the last", sample(1, nil, r1.ID, r2.ID), [][3]float64{{1, 14, 10029}, {2, 4, 20004}})
	same(t, "fewer than asked: all", sample(10, nil, r2.ID), [][3]float64{
		{2, 0, 20000}, {2, 1, 20001}, {2, 2, 20002}, {2, 3, 20003}, {2, 4, 20004}})
	same(t, "runs of other workspaces add nothing", sample(10, nil, foreign.ID, "nope"), [][3]float64(nil))
}

// testSearchDatasets: the datasets of an experiment's runs, once per
// context.
func testSearchDatasets(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	mkWorkspace(t, s, "other")
	e := mkExperiment(t, ts, "ws", "exp")
	e2 := mkExperiment(t, ts, "ws", "exp2")
	r1 := mkRun(t, ts, "ws", e.ID, "one")
	r2 := mkRun(t, ts, "ws", e.ID, "two")
	r3 := mkRun(t, ts, "ws", e2.ID, "three")
	in := func(name, digest, context string) *wharf.DatasetInput {
		d := &wharf.DatasetInput{Dataset: wharf.Dataset{Name: name, Digest: digest}, Tags: map[string]string{}}
		if context != "" {
			d.Tags["mlflow.data.context"] = context
		}
		return d
	}
	must(t, ts.LogInputs(ctx(t), "ws", r1.ID, []*wharf.DatasetInput{in("train", "d1", "training"), in("raw", "d3", "")}, nil))
	must(t, ts.LogInputs(ctx(t), "ws", r2.ID, []*wharf.DatasetInput{in("train", "d1", "training"), in("train", "d2", "eval")}, nil))
	must(t, ts.LogInputs(ctx(t), "ws", r3.ID, []*wharf.DatasetInput{in("other", "d9", "")}, nil))
	got, err := ts.SearchDatasets(ctx(t), "ws", []string{e.ID, "999", "x"})
	must(t, err)
	same(t, "datasets", got, []*wharf.DatasetSummary{
		{ExperimentID: e.ID, Name: "raw", Digest: "d3"},
		{ExperimentID: e.ID, Name: "train", Digest: "d1", Context: "training", HasContext: true},
		{ExperimentID: e.ID, Name: "train", Digest: "d2", Context: "eval", HasContext: true},
	})
	got, err = ts.SearchDatasets(ctx(t), "other", []string{e.ID, e2.ID})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("another workspace sees %v", got)
	}
}
