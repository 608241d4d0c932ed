package storetest

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// RunTracking runs the MLflow tracking suite against the stores open
// returns. The stores must implement wharf.TrackingService.
func RunTracking(t *testing.T, open func(t *testing.T) wharf.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"DefaultExperiment", testDefaultExperiment},
		{"Experiments", testExperiments},
		{"ExperimentLifecycle", testExperimentLifecycle},
		{"ExperimentTags", testExperimentTags},
		{"ConcurrentCreateExperiment", testConcurrentCreateExperiment},
		{"CreateRun", testCreateRun},
		{"UpdateRun", testUpdateRun},
		{"DeletedRunWrites", testDeletedRunWrites},
		{"LogBatchParams", testLogBatchParams},
		{"LogBatchLimits", testLogBatchLimits},
		{"LatestMetric", testLatestMetric},
		{"MetricHistory", testMetricHistory},
		{"LogBatchSizes", testLogBatchSizes},
		{"RunTags", testRunTags},
		{"InputsOutputs", testInputsOutputs},
		{"ModelInputs", testModelInputs},
		{"LoggedModelMetrics", testLoggedModelMetrics},
		{"MetricHistoryBulk", testMetricHistoryBulk},
		{"MetricHistorySample", testMetricHistorySample},
		{"SearchDatasets", testSearchDatasets},
		{"ConcurrentLogBatch", testConcurrentLogBatch},
		{"TrackingWorkspaceIsolation", testTrackingWorkspaceIsolation},
		{"DeleteWorkspaceTracking", testDeleteWorkspaceTracking},
		{"SearchRunsFilters", testSearchRunsFilters},
		{"SearchRunsLike", testSearchRunsLike},
		{"SearchRunsOrder", testSearchRunsOrder},
		{"SearchRunsPaging", testSearchRunsPaging},
		{"SearchRunsViewTypes", testSearchRunsViewTypes},
		{"SearchRunsInvalid", testSearchRunsInvalid},
		{"SearchFilterBounds", testSearchFilterBounds},
		{"SearchExperiments", testSearchExperiments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// tracker returns the store's tracking service, failing the test when the
// store has none: the suite is only run against stores that should.
func tracker(t *testing.T, s wharf.Store) wharf.TrackingService {
	t.Helper()
	ts, ok := s.(wharf.TrackingService)
	if !ok {
		t.Fatalf("store %T does not implement wharf.TrackingService", s)
	}
	return ts
}

// openTracking opens a store with one workspace and returns both views of
// it.
func openTracking(t *testing.T, open Opener, workspace string) (wharf.Store, wharf.TrackingService) {
	t.Helper()
	s := open(t)
	mkWorkspace(t, s, workspace)
	return s, tracker(t, s)
}

func mkExperiment(t *testing.T, ts wharf.TrackingService, workspace, name string) *wharf.Experiment {
	t.Helper()
	e := &wharf.Experiment{Workspace: workspace, Name: name}
	must(t, ts.CreateExperiment(ctx(t), e))
	return e
}

func mkRun(t *testing.T, ts wharf.TrackingService, workspace, expID, name string) *wharf.Run {
	t.Helper()
	r := &wharf.Run{Workspace: workspace, ExperimentID: expID, Name: name, UserID: "alice"}
	must(t, ts.CreateRun(ctx(t), r))
	return r
}

// metric builds a metric for LogBatch.
func metric(key string, value float64, ts, step int64) *wharf.Metric {
	return &wharf.Metric{Key: key, Value: value, Timestamp: ts, Step: step}
}

func logMetrics(t *testing.T, ts wharf.TrackingService, workspace, runID string, ms ...*wharf.Metric) {
	t.Helper()
	must(t, ts.LogBatch(ctx(t), workspace, runID, ms, nil, nil))
}

func logParams(t *testing.T, ts wharf.TrackingService, workspace, runID string, kv ...string) {
	t.Helper()
	var ps []*wharf.Param
	for i := 0; i < len(kv); i += 2 {
		ps = append(ps, &wharf.Param{Key: kv[i], Value: kv[i+1]})
	}
	must(t, ts.LogBatch(ctx(t), workspace, runID, nil, ps, nil))
}

func setTags(t *testing.T, ts wharf.TrackingService, workspace, runID string, kv ...string) {
	t.Helper()
	tags := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		tags[kv[i]] = kv[i+1]
	}
	must(t, ts.LogBatch(ctx(t), workspace, runID, nil, nil, tags))
}

func findRun(t *testing.T, ts wharf.TrackingService, workspace, runID string) *wharf.Run {
	t.Helper()
	r, err := ts.FindRun(ctx(t), workspace, runID)
	must(t, err)
	return r
}

// latest returns the run's latest value of key, or nil.
func latest(r *wharf.Run, key string) *wharf.Metric {
	for _, m := range r.Metrics {
		if m.Key == key {
			return m
		}
	}
	return nil
}

// sameRun compares runs field by field, following the pointers in their
// slices, which same alone would print as addresses.
func sameRun(t *testing.T, what string, got, want *wharf.Run) {
	t.Helper()
	g, w := *got, *want
	same(t, what+": metrics", g.Metrics, w.Metrics)
	same(t, what+": inputs", g.Inputs, w.Inputs)
	same(t, what+": outputs", g.ModelOutputs, w.ModelOutputs)
	g.Metrics, g.Inputs, g.ModelOutputs = nil, nil, nil
	w.Metrics, w.Inputs, w.ModelOutputs = nil, nil, nil
	same(t, what, g, w)
}

// sameFloat compares floats with NaN equal to itself and infinities by
// sign.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func testDefaultExperiment(t *testing.T, open Opener) {
	s := open(t)
	ts := tracker(t, s)
	for _, w := range []string{"ws1", "ws2", "ws3", "ws4"} {
		mkWorkspace(t, s, w)
	}

	// First touched by id.
	e, err := ts.FindExperiment(ctx(t), "ws1", wharf.DefaultExperimentID)
	must(t, err)
	if e.ID != "0" || e.Name != "Default" || e.LifecycleStage != wharf.LifecycleActive ||
		e.ArtifactLocation != "mlflow-artifacts:/0" || e.Tags == nil || e.Workspace != "ws1" {
		t.Fatalf("default experiment = %+v", e)
	}
	if e.CreationTime == 0 || e.LastUpdateTime != e.CreationTime {
		t.Errorf("default experiment times = %d / %d", e.CreationTime, e.LastUpdateTime)
	}
	again, err := ts.FindExperiment(ctx(t), "ws1", "0")
	must(t, err)
	same(t, "default experiment read again", again, e)

	// First touched by name.
	e, err = ts.FindExperimentByName(ctx(t), "ws2", "Default")
	must(t, err)
	if e.ID != "0" || e.Workspace != "ws2" {
		t.Fatalf("default experiment by name = %+v", e)
	}

	// First touched by a search.
	exps, _, err := ts.SearchExperiments(ctx(t), "ws3", wharf.SearchQuery{})
	must(t, err)
	if len(exps) != 1 || exps[0].ID != "0" || exps[0].Name != "Default" {
		t.Fatalf("search in a fresh workspace = %s", show(exps))
	}

	// First touched by a run.
	r := mkRun(t, ts, "ws4", "0", "")
	if !strings.HasPrefix(r.ArtifactURI, "mlflow-artifacts:/0/") {
		t.Errorf("run in the default experiment has artifact uri %q", r.ArtifactURI)
	}

	// Each workspace has exactly one, however many first calls race.
	mkWorkspace(t, s, "ws5")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				_, errs[i] = ts.FindExperiment(ctx(t), "ws5", "0")
			} else {
				_, _, errs[i] = ts.SearchExperiments(ctx(t), "ws5", wharf.SearchQuery{ViewType: wharf.ViewAll})
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	exps, _, err = ts.SearchExperiments(ctx(t), "ws5", wharf.SearchQuery{ViewType: wharf.ViewAll})
	must(t, err)
	if len(exps) != 1 {
		t.Fatalf("ws5 has %d experiments after racing first calls", len(exps))
	}

	// No workspace, no experiment.
	_, err = ts.FindExperiment(ctx(t), "ghost", "0")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = ts.FindExperimentByName(ctx(t), "ghost", "Default")
	wantCode(t, err, wharf.ENOTFOUND)
	_, _, err = ts.SearchExperiments(ctx(t), "ghost", wharf.SearchQuery{})
	wantCode(t, err, wharf.ENOTFOUND)
	err = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ghost", Name: "x"})
	wantCode(t, err, wharf.ENOTFOUND)
	err = ts.CreateRun(ctx(t), &wharf.Run{Workspace: "ghost", ExperimentID: "0"})
	wantCode(t, err, wharf.ENOTFOUND)

	// Ids that cannot be experiment ids name none.
	for _, id := range []string{"", "abc", "-1", "01", "1.0"} {
		_, err := ts.FindExperiment(ctx(t), "ws1", id)
		wantCode(t, err, wharf.ENOTFOUND)
	}
}

func testExperiments(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	clk := withClock(t, s)
	ms := clk.stored().UnixMilli()

	a := &wharf.Experiment{Workspace: "ws", Name: "exp-a", Tags: map[string]string{"team": "nlp"}}
	must(t, ts.CreateExperiment(ctx(t), a))
	if a.ID != "1" || a.ArtifactLocation != "mlflow-artifacts:/1" || a.LifecycleStage != wharf.LifecycleActive ||
		a.CreationTime != ms || a.LastUpdateTime != ms {
		t.Fatalf("created experiment = %+v", a)
	}
	got, err := ts.FindExperiment(ctx(t), "ws", "1")
	must(t, err)
	same(t, "found experiment", got, a)
	got, err = ts.FindExperimentByName(ctx(t), "ws", "exp-a")
	must(t, err)
	same(t, "found by name", got, a)

	b := &wharf.Experiment{Workspace: "ws", Name: "exp-b", ArtifactLocation: "s3://bucket/exp-b"}
	must(t, ts.CreateExperiment(ctx(t), b))
	if b.ID != "2" || b.ArtifactLocation != "s3://bucket/exp-b" {
		t.Fatalf("second experiment = %+v", b)
	}
	if b.Tags == nil {
		t.Error("created experiment without tags has nil Tags")
	}

	err = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ws", Name: "exp-a"})
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "Experiment(name=exp-a) already exists")
	err = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ws", Name: "Default"})
	wantCode(t, err, wharf.ECONFLICT)
	err = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ws", Name: ""})
	wantCode(t, err, wharf.EINVALID)

	_, err = ts.FindExperiment(ctx(t), "ws", "5")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "No Experiment with id=5 exists")
	_, err = ts.FindExperimentByName(ctx(t), "ws", "nope")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Could not find experiment with name 'nope'")
	// Names are exact.
	_, err = ts.FindExperimentByName(ctx(t), "ws", "EXP-A")
	wantCode(t, err, wharf.ENOTFOUND)

	clk.Advance(time.Minute)
	must(t, ts.RenameExperiment(ctx(t), "ws", "1", "exp-c"))
	got, err = ts.FindExperiment(ctx(t), "ws", "1")
	must(t, err)
	if got.Name != "exp-c" || got.LastUpdateTime != clk.stored().UnixMilli() || got.CreationTime != ms {
		t.Fatalf("renamed experiment = %+v", got)
	}
	_, err = ts.FindExperimentByName(ctx(t), "ws", "exp-a")
	wantCode(t, err, wharf.ENOTFOUND)
	err = ts.RenameExperiment(ctx(t), "ws", "1", "exp-b")
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "Experiment(name=exp-b) already exists")
	must(t, ts.RenameExperiment(ctx(t), "ws", "1", "exp-c")) // its own name
	wantCode(t, ts.RenameExperiment(ctx(t), "ws", "9", "x"), wharf.ENOTFOUND)
	wantCode(t, ts.RenameExperiment(ctx(t), "ws", "1", ""), wharf.EINVALID)
	// The old name is free again.
	c := mkExperiment(t, ts, "ws", "exp-a")
	if c.ID != "3" {
		t.Errorf("third experiment id = %s", c.ID)
	}

	// Ids and names are per workspace.
	mkWorkspace(t, s, "other")
	o := mkExperiment(t, ts, "other", "exp-a")
	if o.ID != "1" {
		t.Errorf("first experiment of another workspace has id %s, want 1", o.ID)
	}
}

func testExperimentLifecycle(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r1 := mkRun(t, ts, "ws", e.ID, "r1")
	r2 := mkRun(t, ts, "ws", e.ID, "r2")

	must(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, wharf.LifecycleDeleted))
	got, err := ts.FindExperiment(ctx(t), "ws", e.ID)
	must(t, err)
	if got.LifecycleStage != wharf.LifecycleDeleted {
		t.Fatalf("deleted experiment is %q", got.LifecycleStage)
	}
	// Found by name too: clients look names up before creating.
	got, err = ts.FindExperimentByName(ctx(t), "ws", "exp")
	must(t, err)
	if got.ID != e.ID {
		t.Fatalf("deleted experiment by name = %+v", got)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		if r := findRun(t, ts, "ws", id); r.LifecycleStage != wharf.LifecycleDeleted {
			t.Errorf("run %s of a deleted experiment is %q", r.Name, r.LifecycleStage)
		}
	}
	err = ts.CreateRun(ctx(t), &wharf.Run{Workspace: "ws", ExperimentID: e.ID})
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "The experiment "+e.ID+" must be in the 'active' state")
	wantCode(t, ts.RenameExperiment(ctx(t), "ws", e.ID, "other"), wharf.EINVALID)
	wantCode(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "k", "v"), wharf.EINVALID)
	// The name stays taken.
	err = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ws", Name: "exp"})
	wantCode(t, err, wharf.ECONFLICT)
	// Deleting twice finds no active experiment, as in MLflow.
	wantCode(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, wharf.LifecycleDeleted), wharf.ENOTFOUND)

	must(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, wharf.LifecycleActive))
	got, err = ts.FindExperiment(ctx(t), "ws", e.ID)
	must(t, err)
	if got.LifecycleStage != wharf.LifecycleActive {
		t.Fatalf("restored experiment is %q", got.LifecycleStage)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		if r := findRun(t, ts, "ws", id); r.LifecycleStage != wharf.LifecycleActive {
			t.Errorf("run %s of a restored experiment is %q", r.Name, r.LifecycleStage)
		}
	}
	wantCode(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, wharf.LifecycleActive), wharf.ENOTFOUND)
	wantCode(t, ts.SetExperimentLifecycle(ctx(t), "ws", e.ID, "purged"), wharf.EINVALID)
	wantCode(t, ts.SetExperimentLifecycle(ctx(t), "ws", "42", wharf.LifecycleDeleted), wharf.ENOTFOUND)
	mkRun(t, ts, "ws", e.ID, "r3")
}

func testExperimentTags(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	must(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "team", "nlp"))
	must(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "env", "dev"))
	must(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "team", "cv"))
	got, err := ts.FindExperiment(ctx(t), "ws", e.ID)
	must(t, err)
	same(t, "experiment tags", got.Tags, map[string]string{"team": "cv", "env": "dev"})

	must(t, ts.DeleteExperimentTag(ctx(t), "ws", e.ID, "env"))
	err = ts.DeleteExperimentTag(ctx(t), "ws", e.ID, "env")
	wantCode(t, err, wharf.ENOTFOUND)
	got, err = ts.FindExperiment(ctx(t), "ws", e.ID)
	must(t, err)
	same(t, "experiment tags after delete", got.Tags, map[string]string{"team": "cv"})

	// Tags of the default experiment work before anything else touched it.
	must(t, ts.SetExperimentTag(ctx(t), "ws", "0", "k", "v"))
	wantCode(t, ts.SetExperimentTag(ctx(t), "ws", "7", "k", "v"), wharf.ENOTFOUND)
	wantCode(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "", "v"), wharf.EINVALID)
	wantCode(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "k", strings.Repeat("v", 5001)), wharf.EINVALID)
	must(t, ts.SetExperimentTag(ctx(t), "ws", e.ID, "k", strings.Repeat("é", 5000)))
}

// testConcurrentCreateExperiment creates experiments at once: ids stay
// unique and dense, and of two creators of one name exactly one wins.
func testConcurrentCreateExperiment(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e := &wharf.Experiment{Workspace: "ws", Name: fmt.Sprintf("exp-%d", i)}
			errs[i] = ts.CreateExperiment(ctx(t), e)
			ids[i] = e.ID
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
	}
	for i := 1; i <= n; i++ {
		if !got[fmt.Sprint(i)] {
			t.Errorf("ids %v lack %d", ids, i)
		}
	}

	start = make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = ts.CreateExperiment(ctx(t), &wharf.Experiment{Workspace: "ws", Name: "same"})
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			wantCode(t, err, wharf.ECONFLICT)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creators of one name succeeded", wins)
	}
}

var (
	runIDRE   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	runNameRE = regexp.MustCompile(`^[a-z]+-[a-z]+-[0-9]+$`)
)

func testCreateRun(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "ws")
	clk := withClock(t, s)
	e := mkExperiment(t, ts, "ws", "exp")

	r := &wharf.Run{Workspace: "ws", ExperimentID: e.ID, UserID: "alice"}
	must(t, ts.CreateRun(ctx(t), r))
	if !runIDRE.MatchString(r.ID) {
		t.Errorf("run id %q is not 32 lowercase hex", r.ID)
	}
	if !runNameRE.MatchString(r.Name) {
		t.Errorf("generated run name %q", r.Name)
	}
	if r.Tags["mlflow.runName"] != r.Name {
		t.Errorf("mlflow.runName tag = %q, name %q", r.Tags["mlflow.runName"], r.Name)
	}
	if r.Status != wharf.RunRunning || r.StartTime != clk.stored().UnixMilli() || r.EndTime != 0 ||
		r.LifecycleStage != wharf.LifecycleActive || r.ArtifactURI != "mlflow-artifacts:/1/"+r.ID+"/artifacts" {
		t.Errorf("created run = %+v", r)
	}
	got := findRun(t, ts, "ws", r.ID)
	want := *r
	want.Params = map[string]string{}
	want.Metrics = []*wharf.Metric{}
	want.Inputs = []*wharf.DatasetInput{}
	want.ModelOutputs = []*wharf.ModelOutput{}
	sameRun(t, "found run", got, &want)

	// A given name and tags; the name is mirrored.
	r2 := &wharf.Run{Workspace: "ws", ExperimentID: e.ID, Name: "given", StartTime: 1234,
		Tags: map[string]string{"k": "v", "mlflow.user": "bob"}}
	must(t, ts.CreateRun(ctx(t), r2))
	got = findRun(t, ts, "ws", r2.ID)
	same(t, "tags of a named run", got.Tags, map[string]string{"k": "v", "mlflow.user": "bob", "mlflow.runName": "given"})
	if got.Name != "given" || got.StartTime != 1234 {
		t.Errorf("named run = %+v", got)
	}
	if r2.ID == r.ID {
		t.Fatal("two runs share an id")
	}

	// A name given only as the tag.
	r3 := &wharf.Run{Workspace: "ws", ExperimentID: e.ID, Tags: map[string]string{"mlflow.runName": "tagged"}}
	must(t, ts.CreateRun(ctx(t), r3))
	if got := findRun(t, ts, "ws", r3.ID); got.Name != "tagged" {
		t.Errorf("run named by tag is called %q", got.Name)
	}
	err := ts.CreateRun(ctx(t), &wharf.Run{Workspace: "ws", ExperimentID: e.ID, Name: "a",
		Tags: map[string]string{"mlflow.runName": "b"}})
	wantCode(t, err, wharf.EINVALID)

	// An experiment with its own artifact location.
	x := &wharf.Experiment{Workspace: "ws", Name: "s3", ArtifactLocation: "s3://bucket/prefix"}
	must(t, ts.CreateExperiment(ctx(t), x))
	r4 := mkRun(t, ts, "ws", x.ID, "")
	if r4.ArtifactURI != "s3://bucket/prefix/"+r4.ID+"/artifacts" {
		t.Errorf("artifact uri %q", r4.ArtifactURI)
	}

	err = ts.CreateRun(ctx(t), &wharf.Run{Workspace: "ws", ExperimentID: "99"})
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "No Experiment with id=99 exists")
	err = ts.CreateRun(ctx(t), &wharf.Run{Workspace: "ws", ExperimentID: e.ID, Status: "DONE"})
	wantCode(t, err, wharf.EINVALID)
	_, err = ts.FindRun(ctx(t), "ws", "0123456789abcdef0123456789abcdef")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Run with id=0123456789abcdef0123456789abcdef not found")
}

func testUpdateRun(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "first")

	got, err := ts.UpdateRun(ctx(t), "ws", r.ID, wharf.RunFinished, 5000, "second")
	must(t, err)
	if got.Status != wharf.RunFinished || got.EndTime != 5000 || got.Name != "second" ||
		got.Tags["mlflow.runName"] != "second" {
		t.Fatalf("updated run = %+v", got)
	}
	sameRun(t, "run read after update", findRun(t, ts, "ws", r.ID), got)

	// Empty fields change nothing.
	got, err = ts.UpdateRun(ctx(t), "ws", r.ID, "", 0, "")
	must(t, err)
	if got.Status != wharf.RunFinished || got.EndTime != 5000 || got.Name != "second" {
		t.Fatalf("run after an empty update = %+v", got)
	}
	got, err = ts.UpdateRun(ctx(t), "ws", r.ID, wharf.RunFailed, 0, "")
	must(t, err)
	if got.Status != wharf.RunFailed || got.EndTime != 5000 {
		t.Fatalf("run after a status update = %+v", got)
	}
	_, err = ts.UpdateRun(ctx(t), "ws", r.ID, "BROKEN", 0, "")
	wantCode(t, err, wharf.EINVALID)
	_, err = ts.UpdateRun(ctx(t), "ws", "ffffffffffffffffffffffffffffffff", wharf.RunFinished, 0, "")
	wantCode(t, err, wharf.ENOTFOUND)
}

// testDeletedRunWrites checks that a deleted run refuses every write and
// takes them again once restored.
func testDeletedRunWrites(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")
	setTags(t, ts, "ws", r.ID, "k", "v")

	must(t, ts.SetRunLifecycle(ctx(t), "ws", r.ID, wharf.LifecycleDeleted))
	if got := findRun(t, ts, "ws", r.ID); got.LifecycleStage != wharf.LifecycleDeleted {
		t.Fatalf("deleted run is %q", got.LifecycleStage)
	}
	check := func(err error) {
		t.Helper()
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err, "The run "+r.ID+" must be in the 'active' state")
	}
	check(ts.LogBatch(ctx(t), "ws", r.ID, []*wharf.Metric{metric("m", 1, 1, 0)}, nil, nil))
	check(ts.LogBatch(ctx(t), "ws", r.ID, nil, []*wharf.Param{{Key: "p", Value: "v"}}, nil))
	check(ts.LogBatch(ctx(t), "ws", r.ID, nil, nil, map[string]string{"t": "v"}))
	check(ts.DeleteRunTag(ctx(t), "ws", r.ID, "k"))
	_, err := ts.UpdateRun(ctx(t), "ws", r.ID, wharf.RunFinished, 0, "")
	check(err)
	check(ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{{Dataset: wharf.Dataset{Name: "d", Digest: "x"}}}, nil))
	check(ts.LogOutputs(ctx(t), "ws", r.ID, []*wharf.ModelOutput{{ModelID: "m-1"}}))
	got := findRun(t, ts, "ws", r.ID)
	if len(got.Metrics) != 0 || len(got.Params) != 0 || got.Tags["k"] != "v" || got.Status != wharf.RunRunning {
		t.Fatalf("a refused write landed: %+v", got)
	}

	must(t, ts.SetRunLifecycle(ctx(t), "ws", r.ID, wharf.LifecycleActive))
	logMetrics(t, ts, "ws", r.ID, metric("m", 1, 1, 0))
	wantCode(t, ts.SetRunLifecycle(ctx(t), "ws", r.ID, "gone"), wharf.EINVALID)
	wantCode(t, ts.SetRunLifecycle(ctx(t), "ws", "ffffffffffffffffffffffffffffffff", wharf.LifecycleDeleted), wharf.ENOTFOUND)
}

func testLogBatchParams(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")

	logParams(t, ts, "ws", r.ID, "alpha", "0.1", "beta", "x")
	// The same value again is a no-op.
	logParams(t, ts, "ws", r.ID, "alpha", "0.1")
	same(t, "params", findRun(t, ts, "ws", r.ID).Params, map[string]string{"alpha": "0.1", "beta": "x"})

	// A changed value fails the whole batch.
	err := ts.LogBatch(ctx(t), "ws", r.ID,
		[]*wharf.Metric{metric("loss", 1, 10, 0)},
		[]*wharf.Param{{Key: "gamma", Value: "1"}, {Key: "alpha", Value: "0.2"}},
		map[string]string{"note": "x"})
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "Changing param values is not allowed. Param with key='alpha' was already logged "+
		"with value='0.1' for run ID='"+r.ID+"'. Attempted logging new value '0.2'.")
	got := findRun(t, ts, "ws", r.ID)
	same(t, "params after a refused batch", got.Params, map[string]string{"alpha": "0.1", "beta": "x"})
	if len(got.Metrics) != 0 || got.Tags["note"] != "" {
		t.Fatalf("part of a refused batch landed: metrics %s, tags %v", show(got.Metrics), got.Tags)
	}
	hist, _, err := ts.MetricHistory(ctx(t), "ws", r.ID, "loss", 0, "")
	must(t, err)
	if len(hist) != 0 {
		t.Fatalf("metric history of a refused batch: %s", show(hist))
	}

	// Repeats inside one batch: the same value is fine, another is not.
	must(t, ts.LogBatch(ctx(t), "ws", r.ID, nil,
		[]*wharf.Param{{Key: "delta", Value: "1"}, {Key: "delta", Value: "1"}}, nil))
	err = ts.LogBatch(ctx(t), "ws", r.ID, nil,
		[]*wharf.Param{{Key: "eps", Value: "1"}, {Key: "eps", Value: "2"}}, nil)
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "eps")
	if _, ok := findRun(t, ts, "ws", r.ID).Params["eps"]; ok {
		t.Fatal("param of a refused batch landed")
	}

	// Long and non-ASCII values round-trip.
	long := strings.Repeat("é", 6000)
	logParams(t, ts, "ws", r.ID, "long", long)
	if findRun(t, ts, "ws", r.ID).Params["long"] != long {
		t.Fatal("a 6000-character param did not round-trip")
	}
	logParams(t, ts, "ws", r.ID, "long", long)
}

func testLogBatchLimits(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")

	many := func(n int) []*wharf.Metric {
		ms := make([]*wharf.Metric, n)
		for i := range ms {
			ms[i] = metric(fmt.Sprintf("m%d", i%7), float64(i), int64(i), int64(i))
		}
		return ms
	}
	params := func(n int) []*wharf.Param {
		ps := make([]*wharf.Param, n)
		for i := range ps {
			ps[i] = &wharf.Param{Key: fmt.Sprintf("p%03d", i), Value: "v"}
		}
		return ps
	}
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("t%03d", i)] = "v"
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		metrics []*wharf.Metric
		params  []*wharf.Param
		tags    map[string]string
		msg     string
	}{
		{"1001 metrics", many(1001), nil, nil, "1000"},
		{"101 params", nil, params(101), nil, "100"},
		{"101 tags", nil, nil, tags(101), "100"},
		{"metric key", []*wharf.Metric{metric(strings.Repeat("k", 251), 1, 1, 1)}, nil, nil, "250"},
		{"empty metric key", []*wharf.Metric{metric("", 1, 1, 1)}, nil, nil, ""},
		{"param key", nil, []*wharf.Param{{Key: strings.Repeat("k", 251), Value: "v"}}, nil, "250"},
		{"param value", nil, []*wharf.Param{{Key: "k", Value: strings.Repeat("v", 6001)}}, nil, "6000"},
		{"tag key", nil, nil, map[string]string{strings.Repeat("k", 251): "v"}, "250"},
		{"tag value", nil, nil, map[string]string{"k": strings.Repeat("v", 8001)}, "8000"},
	} {
		err := ts.LogBatch(ctx(t), "ws", r.ID, tc.metrics, tc.params, tc.tags)
		wantCode(t, err, wharf.EINVALID)
		wantMessage(t, err, tc.msg)
	}
	if got := findRun(t, ts, "ws", r.ID); len(got.Metrics) != 0 || len(got.Params) != 0 || len(got.Tags) != 1 {
		t.Fatalf("a refused batch landed: %+v", got)
	}

	// Exactly at the limits.
	must(t, ts.LogBatch(ctx(t), "ws", r.ID, many(1000), nil, nil))
	must(t, ts.LogBatch(ctx(t), "ws", r.ID, nil, params(100), tags(99)))
	must(t, ts.LogBatch(ctx(t), "ws", r.ID, nil,
		[]*wharf.Param{{Key: strings.Repeat("k", 250), Value: strings.Repeat("v", 6000)}},
		map[string]string{strings.Repeat("k", 250): strings.Repeat("v", 8000)}))
	got := findRun(t, ts, "ws", r.ID)
	if len(got.Metrics) != 7 || len(got.Params) != 101 {
		t.Fatalf("run has %d latest metrics and %d params", len(got.Metrics), len(got.Params))
	}
	hist, _, err := ts.MetricHistory(ctx(t), "ws", r.ID, "m0", 0, "")
	must(t, err)
	if len(hist) != 143 { // i%7 == 0 for i < 1000
		t.Fatalf("history of m0 has %d values, want 143", len(hist))
	}
}

func testLatestMetric(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")
	nan, inf := math.NaN(), math.Inf(1)

	for i, step := range []struct {
		logged *wharf.Metric
		want   *wharf.Metric
	}{
		{metric("m", 1, 100, 0), metric("m", 1, 100, 0)},
		{metric("m", 5, 50, 0), metric("m", 1, 100, 0)},      // older timestamp
		{metric("m", 0.5, 100, 0), metric("m", 1, 100, 0)},   // smaller value
		{metric("m", 2, 100, 0), metric("m", 2, 100, 0)},     // larger value
		{metric("m", -1, 10, 1), metric("m", -1, 10, 1)},     // higher step beats a later time
		{metric("m", nan, 10, 1), metric("m", -1, 10, 1)},    // NaN loses to a number
		{metric("m", 7, 5, 0), metric("m", -1, 10, 1)},       // lower step
		{metric("m", nan, 11, 1), metric("m", nan, 11, 1)},   // a later NaN wins
		{metric("m", -inf, 11, 1), metric("m", -inf, 11, 1)}, // any number beats NaN
		{metric("m", inf, 11, 1), metric("m", inf, 11, 1)},
	} {
		logMetrics(t, ts, "ws", r.ID, step.logged)
		got := latest(findRun(t, ts, "ws", r.ID), "m")
		if got == nil || !sameFloat(got.Value, step.want.Value) || got.Timestamp != step.want.Timestamp ||
			got.Step != step.want.Step {
			t.Fatalf("step %d: latest = %s, want %s", i, show(got), show(step.want))
		}
	}

	// Within one batch the best value wins wherever it is.
	logMetrics(t, ts, "ws", r.ID, metric("b", 3, 1, 2), metric("b", 1, 0, 5), metric("b", 0, 0, 5), metric("b", nan, 0, 5))
	if got := latest(findRun(t, ts, "ws", r.ID), "b"); got.Value != 1 || got.Step != 5 || got.Timestamp != 0 {
		t.Fatalf("latest of one batch = %s", show(got))
	}
	logMetrics(t, ts, "ws", r.ID, metric("c", nan, 9, 5), metric("c", 1, 0, 5))
	if got := latest(findRun(t, ts, "ws", r.ID), "c"); !math.IsNaN(got.Value) || got.Timestamp != 9 {
		t.Fatalf("latest of one batch = %s, want the NaN at the latest time", show(got))
	}

	// A first NaN is stored as NaN.
	logMetrics(t, ts, "ws", r.ID, metric("n", nan, 1, 0))
	if got := latest(findRun(t, ts, "ws", r.ID), "n"); got == nil || !math.IsNaN(got.Value) {
		t.Fatalf("latest NaN = %s", show(got))
	}
	got := findRun(t, ts, "ws", r.ID)
	keys := []string{}
	for _, m := range got.Metrics {
		keys = append(keys, m.Key)
		if m.RunID != r.ID {
			t.Errorf("latest metric %s has run id %q", m.Key, m.RunID)
		}
	}
	same(t, "latest metric keys", keys, []string{"b", "c", "m", "n"})

	hist, _, err := ts.MetricHistory(ctx(t), "ws", r.ID, "m", 0, "")
	must(t, err)
	if len(hist) != 10 {
		t.Fatalf("history of m has %d values, want 10", len(hist))
	}
	var nans, infs int
	for _, m := range hist {
		if math.IsNaN(m.Value) {
			nans++
		}
		if math.IsInf(m.Value, 0) {
			infs++
		}
	}
	if nans != 2 || infs != 2 {
		t.Errorf("history holds %d NaN and %d infinite values, want 2 and 2", nans, infs)
	}
}

// testLogBatchSizes logs batches of every size a store might split
// differently (one row, powers of two and their neighbours, the limit),
// each key with its own number of steps, and reads every row back.
func testLogBatchSizes(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")
	sizes := []int{1, 2, 3, 7, 8, 9, 255, 256, 257, 511, 512, 513, 777, 999, 1000}
	for _, n := range sizes {
		key := fmt.Sprintf("size_%04d", n)
		batch := make([]*wharf.Metric, n)
		for i := range batch {
			// Steps in reverse, so the latest value is the first row.
			batch[i] = metric(key, float64(i)/3, int64(5000+i), int64(n-1-i))
		}
		logMetrics(t, ts, "ws", r.ID, batch...)
		hist, _, err := ts.MetricHistory(ctx(t), "ws", r.ID, key, 0, "")
		must(t, err)
		if len(hist) != n {
			t.Fatalf("a batch of %d metrics left %d in the history", n, len(hist))
		}
		for _, m := range hist {
			i := int(int64(n-1) - m.Step)
			if m.Value != float64(i)/3 || m.Timestamp != int64(5000+i) {
				t.Fatalf("batch of %d: step %d stored as value %v at %d, want %v at %d",
					n, m.Step, m.Value, m.Timestamp, float64(i)/3, 5000+i)
			}
		}
		if l := latest(findRun(t, ts, "ws", r.ID), key); l == nil || l.Step != int64(n-1) || l.Value != 0 {
			t.Fatalf("batch of %d: latest %+v, want step %d value 0", n, l, n-1)
		}
	}
	if got := findRun(t, ts, "ws", r.ID); len(got.Metrics) != len(sizes) {
		t.Fatalf("run has %d latest metrics, want %d", len(got.Metrics), len(sizes))
	}
}

func testMetricHistory(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")

	// 30 values logged out of order over three batches, with exact
	// repeats, which MLflow drops.
	var all []*wharf.Metric
	for i := range 30 {
		step := int64(i / 2)
		all = append(all, &wharf.Metric{Key: "loss", Value: float64(30 - i), Timestamp: int64(1000 + i), Step: step,
			ModelID: "m-1", DatasetName: "train", DatasetDigest: "abc"})
	}
	order := []int{17, 3, 29, 0, 11, 25, 8, 14, 22, 5, 19, 1, 27, 9, 13, 21, 2, 16, 24, 7, 12, 28, 4, 18, 10, 26, 6, 15, 23, 20}
	var batch []*wharf.Metric
	for i, k := range order {
		batch = append(batch, all[k])
		if i%10 == 9 {
			logMetrics(t, ts, "ws", r.ID, batch...)
			batch = nil
		}
	}
	logMetrics(t, ts, "ws", r.ID, all[3], all[17], all[29])
	logMetrics(t, ts, "ws", r.ID, metric("other", 1, 1, 1))

	hist, token, err := ts.MetricHistory(ctx(t), "ws", r.ID, "loss", 0, "")
	must(t, err)
	if token != "" {
		t.Errorf("a complete history has next token %q", token)
	}
	for _, m := range all {
		m.RunID = r.ID
	}
	same(t, "history", hist, all)

	var paged []*wharf.Metric
	token = ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, next, err := ts.MetricHistory(ctx(t), "ws", r.ID, "loss", 7, token)
		must(t, err)
		if len(page) > 7 {
			t.Fatalf("page of %d values", len(page))
		}
		paged = append(paged, page...)
		if next == "" {
			break
		}
		token = next
	}
	same(t, "paged history", paged, all)

	hist, _, err = ts.MetricHistory(ctx(t), "ws", r.ID, "absent", 0, "")
	must(t, err)
	if hist == nil || len(hist) != 0 {
		t.Errorf("history of an unlogged metric = %#v", hist)
	}
	_, _, err = ts.MetricHistory(ctx(t), "ws", "ffffffffffffffffffffffffffffffff", "loss", 0, "")
	wantCode(t, err, wharf.ENOTFOUND)
	_, _, err = ts.MetricHistory(ctx(t), "ws", r.ID, "loss", 0, "not a token")
	wantCode(t, err, wharf.EINVALID)
	_, _, err = ts.MetricHistory(ctx(t), "ws", r.ID, "loss", -1, "")
	wantCode(t, err, wharf.EINVALID)
}

func testRunTags(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")

	setTags(t, ts, "ws", r.ID, "a", "1", "b", "x")
	setTags(t, ts, "ws", r.ID, "a", "2")
	got := findRun(t, ts, "ws", r.ID)
	same(t, "tags", got.Tags, map[string]string{"a": "2", "b": "x", "mlflow.runName": "run"})

	// The run-name tag renames the run.
	setTags(t, ts, "ws", r.ID, "mlflow.runName", "renamed")
	if got := findRun(t, ts, "ws", r.ID); got.Name != "renamed" || got.Tags["mlflow.runName"] != "renamed" {
		t.Fatalf("run after setting mlflow.runName: %+v", got)
	}

	must(t, ts.DeleteRunTag(ctx(t), "ws", r.ID, "a"))
	err := ts.DeleteRunTag(ctx(t), "ws", r.ID, "a")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "No tag with name: a in run with id "+r.ID)
	same(t, "tags after delete", findRun(t, ts, "ws", r.ID).Tags,
		map[string]string{"b": "x", "mlflow.runName": "renamed"})
}

func testInputsOutputs(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")

	train := &wharf.DatasetInput{
		Dataset: wharf.Dataset{Name: "train", Digest: "d1", SourceType: "local", Source: `{"uri":"/data"}`,
			Schema: `{"mlflow_colspec":[]}`, Profile: `{"num_rows":10}`},
		Tags: map[string]string{"mlflow.data.context": "training"},
	}
	eval := &wharf.DatasetInput{Dataset: wharf.Dataset{Name: "eval", Digest: "d2", SourceType: "http", Source: "{}"}}
	must(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{train, eval, train}, nil))
	// Logging the same dataset again keeps the first record.
	again := *train
	again.Tags = map[string]string{"mlflow.data.context": "other"}
	must(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{&again}, nil))
	// Another digest is another dataset.
	v2 := &wharf.DatasetInput{Dataset: wharf.Dataset{Name: "train", Digest: "d3"}, Tags: map[string]string{}}
	must(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{v2}, nil))

	got := findRun(t, ts, "ws", r.ID)
	evalWant := *eval
	evalWant.Tags = map[string]string{}
	same(t, "inputs", got.Inputs, []*wharf.DatasetInput{&evalWant, train, v2})

	must(t, ts.LogOutputs(ctx(t), "ws", r.ID, []*wharf.ModelOutput{{ModelID: "m-b", Step: 3}, {ModelID: "m-a", Step: 0}}))
	must(t, ts.LogOutputs(ctx(t), "ws", r.ID, []*wharf.ModelOutput{{ModelID: "m-b", Step: 3}}))
	same(t, "outputs", findRun(t, ts, "ws", r.ID).ModelOutputs,
		[]*wharf.ModelOutput{{ModelID: "m-a", Step: 0}, {ModelID: "m-b", Step: 3}})

	wantCode(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{{Dataset: wharf.Dataset{Digest: "x"}}}, nil), wharf.EINVALID)
	wantCode(t, ts.LogInputs(ctx(t), "ws", r.ID, []*wharf.DatasetInput{nil}, nil), wharf.EINVALID)
	wantCode(t, ts.LogOutputs(ctx(t), "ws", r.ID, []*wharf.ModelOutput{{Step: 1}}), wharf.EINVALID)
	wantCode(t, ts.LogInputs(ctx(t), "ws", "ffffffffffffffffffffffffffffffff", nil, nil), wharf.ENOTFOUND)
}

// testConcurrentLogBatch logs to one run from several writers: every
// metric lands, the latest value is the highest step, and of two writers
// of one param with different values exactly one succeeds.
func testConcurrentLogBatch(t *testing.T, open Opener) {
	_, ts := openTracking(t, open, "ws")
	e := mkExperiment(t, ts, "ws", "exp")
	r := mkRun(t, ts, "ws", e.ID, "run")
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				step := int64(i*writers + w)
				ms := []*wharf.Metric{metric("loss", float64(step), step, step), metric("acc", float64(w), 1, step)}
				if err := ts.LogBatch(ctx(t), "ws", r.ID, ms, nil, map[string]string{"writer": fmt.Sprint(w)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	hist, _, err := ts.MetricHistory(ctx(t), "ws", r.ID, "loss", 0, "")
	must(t, err)
	if len(hist) != writers*each {
		t.Fatalf("history has %d values, want %d", len(hist), writers*each)
	}
	if m := latest(findRun(t, ts, "ws", r.ID), "loss"); m.Step != writers*each-1 {
		t.Fatalf("latest loss = %s", show(m))
	}

	res := make([]error, 2)
	start := make(chan struct{})
	for i := range res {
		wg.Go(func() {
			<-start
			res[i] = ts.LogBatch(ctx(t), "ws", r.ID, nil, []*wharf.Param{{Key: "p", Value: fmt.Sprint(i)}}, nil)
		})
	}
	close(start)
	wg.Wait()
	if (res[0] == nil) == (res[1] == nil) {
		t.Fatalf("two writers of one param: %v / %v", res[0], res[1])
	}
	for i, err := range res {
		if err != nil {
			wantCode(t, err, wharf.EINVALID)
		} else if v := findRun(t, ts, "ws", r.ID).Params["p"]; v != fmt.Sprint(i) {
			t.Fatalf("param p = %q, the winner wrote %d", v, i)
		}
	}
}

// testTrackingWorkspaceIsolation checks that a workspace sees nothing of
// another's experiments and runs, even where ids coincide.
func testTrackingWorkspaceIsolation(t *testing.T, open Opener) {
	s, ts := openTracking(t, open, "a")
	mkWorkspace(t, s, "b")
	e := mkExperiment(t, ts, "a", "exp")
	r := mkRun(t, ts, "a", e.ID, "run")
	logMetrics(t, ts, "a", r.ID, metric("m", 1, 1, 1))

	_, err := ts.FindRun(ctx(t), "b", r.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, ts.LogBatch(ctx(t), "b", r.ID, []*wharf.Metric{metric("m", 2, 2, 2)}, nil, nil), wharf.ENOTFOUND)
	_, _, err = ts.MetricHistory(ctx(t), "b", r.ID, "m", 0, "")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = ts.UpdateRun(ctx(t), "b", r.ID, wharf.RunFinished, 0, "")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, ts.SetRunLifecycle(ctx(t), "b", r.ID, wharf.LifecycleDeleted), wharf.ENOTFOUND)
	wantCode(t, ts.DeleteRunTag(ctx(t), "b", r.ID, "mlflow.runName"), wharf.ENOTFOUND)
	wantCode(t, ts.LogInputs(ctx(t), "b", r.ID, nil, nil), wharf.ENOTFOUND)
	wantCode(t, ts.LogOutputs(ctx(t), "b", r.ID, nil), wharf.ENOTFOUND)
	_, err = ts.FindExperiment(ctx(t), "b", e.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = ts.FindExperimentByName(ctx(t), "b", "exp")
	wantCode(t, err, wharf.ENOTFOUND)
	err = ts.CreateRun(ctx(t), &wharf.Run{Workspace: "b", ExperimentID: e.ID})
	wantCode(t, err, wharf.ENOTFOUND)

	// b's own experiment 1 shows none of a's runs.
	mkExperiment(t, ts, "b", "exp")
	runs, _, err := ts.SearchRuns(ctx(t), "b", wharf.SearchQuery{ExperimentIDs: []string{"0", e.ID}, ViewType: wharf.ViewAll})
	must(t, err)
	if len(runs) != 0 {
		t.Fatalf("workspace b sees runs %s", show(runs))
	}
	exps, _, err := ts.SearchExperiments(ctx(t), "b", wharf.SearchQuery{ViewType: wharf.ViewAll})
	must(t, err)
	if len(exps) != 2 {
		t.Fatalf("workspace b sees experiments %s", show(exps))
	}
	if latest(findRun(t, ts, "a", r.ID), "m").Value != 1 {
		t.Fatal("a write through workspace b landed")
	}
}

// testDeleteWorkspaceTracking deletes a workspace with experiments, runs
// and everything runs log: nothing of it is left, and its neighbour is
// untouched.
func testDeleteWorkspaceTracking(t *testing.T, open Opener) {
	s := open(t)
	ts := tracker(t, s)
	fill := func(w string) *wharf.Run {
		mkWorkspace(t, s, w)
		e := &wharf.Experiment{Workspace: w, Name: "exp", Tags: map[string]string{"k": "v"}}
		must(t, ts.CreateExperiment(ctx(t), e))
		r := mkRun(t, ts, w, e.ID, "run")
		must(t, ts.LogBatch(ctx(t), w, r.ID, []*wharf.Metric{metric("m", 1, 1, 1), metric("m", 2, 2, 2)},
			[]*wharf.Param{{Key: "p", Value: "v"}}, map[string]string{"t": "v"}))
		must(t, ts.LogInputs(ctx(t), w, r.ID, []*wharf.DatasetInput{{Dataset: wharf.Dataset{Name: "d", Digest: "x"}}}, nil))
		must(t, ts.LogOutputs(ctx(t), w, r.ID, []*wharf.ModelOutput{{ModelID: "m-1"}}))
		return r
	}
	// "w_1" would match "wx1" under LIKE.
	gone, kept := fill("w_1"), fill("wx1")
	db := sqlDB(t, s)
	before, err := db.TrackingRows(ctx(t), "w_1", gone.ID)
	must(t, err)
	if before < 12 {
		t.Fatalf("only %d tracking rows before the delete", before)
	}

	must(t, s.DeleteWorkspace(ctx(t), "w_1"))
	n, err := db.TrackingRows(ctx(t), "w_1", gone.ID)
	must(t, err)
	if n != 0 {
		t.Fatalf("%d tracking rows survived their workspace", n)
	}
	n, err = db.TrackingRows(ctx(t), "wx1", kept.ID)
	must(t, err)
	if n != before {
		t.Fatalf("the other workspace has %d tracking rows, had %d", n, before)
	}

	// Recreated, the workspace starts empty.
	mkWorkspace(t, s, "w_1")
	_, err = ts.FindRun(ctx(t), "w_1", gone.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = ts.FindExperiment(ctx(t), "w_1", "1")
	wantCode(t, err, wharf.ENOTFOUND)
	exps, _, err := ts.SearchExperiments(ctx(t), "w_1", wharf.SearchQuery{ViewType: wharf.ViewAll})
	must(t, err)
	if len(exps) != 1 || exps[0].ID != "0" {
		t.Fatalf("recreated workspace has experiments %s", show(exps))
	}
	if got := findRun(t, ts, "wx1", kept.ID); len(got.Params) != 1 || len(got.Metrics) != 1 {
		t.Fatalf("run of the other workspace = %+v", got)
	}
}

// testMetricHistorySample: a short history is read whole, a long one is
// sampled in order with its first and last values, and a history logged
// at one step is sampled over its timestamps.
func testMetricHistorySample(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	exp := mkExperiment(t, s, "ws", "e")
	run := mkRun(t, s, "ws", exp.ID, "r")
	var ms []*wharf.Metric
	for step := range 1000 {
		v := float64(step % 97)
		ms = append(ms, &wharf.Metric{Key: "loss", Value: v, Step: int64(step), Timestamp: 1000 + int64(step)},
			&wharf.Metric{Key: "flat", Value: v, Step: 0, Timestamp: 5000 + int64(step)})
	}
	for i := 0; i < len(ms); i += 1000 {
		must(t, s.LogBatch(ctx(t), "ws", run.ID, ms[i:i+1000], nil, nil))
	}
	whole, err := s.MetricHistorySample(ctx(t), "ws", run.ID, "loss", 100, 1000)
	must(t, err)
	if !whole.Exact || len(whole.Points) != 1000 || whole.Points[999].Step != 999 {
		t.Errorf("history within the exact bound: exact %v, %d points", whole.Exact, len(whole.Points))
	}
	for _, key := range []string{"loss", "flat"} {
		got, err := s.MetricHistorySample(ctx(t), "ws", run.ID, key, 50, 200)
		must(t, err)
		p := got.Points
		if got.Exact || len(p) < 40 || len(p) > 50 {
			t.Fatalf("%s: exact %v, %d points, want a sample of about 50", key, got.Exact, len(p))
		}
		if p[0].Timestamp != ms[0].Timestamp && p[0].Timestamp != ms[1].Timestamp || p[len(p)-1].Value != float64(999%97) {
			t.Errorf("%s: sample does not start with the first value and end with the last: %+v ... %+v", key, p[0], p[len(p)-1])
		}
		for i := 1; i < len(p); i++ {
			if p[i].Step < p[i-1].Step || p[i].Step == p[i-1].Step && p[i].Timestamp <= p[i-1].Timestamp {
				t.Fatalf("%s: sample out of order at %d: %+v after %+v", key, i, p[i], p[i-1])
			}
		}
	}
	none, err := s.MetricHistorySample(ctx(t), "ws", run.ID, "nothing", 50, 200)
	must(t, err)
	if len(none.Points) != 0 {
		t.Errorf("a key never logged has %d points", len(none.Points))
	}
	_, err = s.MetricHistorySample(ctx(t), "ws", "0123456789abcdef0123456789abcdef", "loss", 50, 200)
	wantCode(t, err, wharf.ENOTFOUND)
}
