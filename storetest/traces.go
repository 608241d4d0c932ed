package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// RunTraces runs the MLflow trace suite against the stores open returns.
func RunTraces(t *testing.T, open func(t *testing.T) wharf.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CreateFind", testTraceCreateFind},
		{"CreateAgainMerges", testTraceCreateAgain},
		{"CreateRefused", testTraceCreateRefused},
		{"EndTrace", testTraceEnd},
		{"Tags", testTraceTags},
		{"SearchFilters", testTraceSearchFilters},
		{"SearchOrder", testTraceSearchOrder},
		{"SearchPaging", testTraceSearchPaging},
		{"SearchInvalid", testTraceSearchInvalid},
		{"DeleteByIDs", testTraceDeleteByIDs},
		{"DeleteByTimestamp", testTraceDeleteByTimestamp},
		{"Assessments", testTraceAssessments},
		{"WorkspaceIsolation", testTraceWorkspaceIsolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// openTraces opens a store with workspace "ws" and an experiment in it.
func openTraces(t *testing.T, open Opener) (wharf.Store, *wharf.Experiment) {
	t.Helper()
	s, ts := openTracking(t, open, "ws")
	return s, mkExperiment(t, ts, "ws", "traced")
}

// traceN builds trace n of an experiment: started at 1000*n ms, running n
// ms, OK unless n is a multiple of 3.
func traceN(expID string, n int) *wharf.Trace {
	state := wharf.TraceStateOK
	if n%3 == 0 {
		state = wharf.TraceStateError
	}
	return &wharf.Trace{
		Workspace: "ws", ID: fmt.Sprintf("tr-%032x", n), ExperimentID: expID,
		RequestTime: int64(1000 * n), ExecutionTime: int64(n), State: state,
		RequestPreview: fmt.Sprintf(`{"x": %d}`, n), ResponsePreview: fmt.Sprint(n + 1),
		Tags:     map[string]string{"mlflow.traceName": fmt.Sprintf("step%d", n%2)},
		Metadata: map[string]string{"mlflow.sourceRun": fmt.Sprintf("run%d", n%2)},
	}
}

func mkTraces(t *testing.T, s wharf.Store, expID string, ns ...int) []*wharf.Trace {
	t.Helper()
	var out []*wharf.Trace
	for _, n := range ns {
		tr := traceN(expID, n)
		must(t, s.CreateTrace(ctx(t), tr))
		out = append(out, tr)
	}
	return out
}

func traceIDs(ts []*wharf.Trace) string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = strings.TrimLeft(strings.TrimPrefix(t.ID, "tr-"), "0")
	}
	return strings.Join(ids, ",")
}

func testTraceCreateFind(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	tr := traceN(e.ID, 1)
	tr.ClientRequestID = "req-1"
	tr.Assessments = []*wharf.Assessment{{ID: "a-1", Name: "quality", CreateTime: 5, LastUpdateTime: 6,
		Document: []byte(`{"assessment_id":"a-1","feedback":{"value":true}}`)}}
	must(t, s.CreateTrace(ctx(t), tr))
	wantLoc := e.ArtifactLocation + "/traces/" + tr.ID + "/artifacts"
	if got := tr.Tags[wharf.TraceArtifactLocationTag]; got != wantLoc {
		t.Errorf("artifact location tag = %q, want %q", got, wantLoc)
	}
	got, err := s.FindTrace(ctx(t), "ws", tr.ID)
	must(t, err)
	same(t, "found trace's assessments", got.Assessments, tr.Assessments)
	gotInfo, wantInfo := *got, *tr
	gotInfo.Assessments, wantInfo.Assessments = nil, nil
	same(t, "found trace", gotInfo, wantInfo)

	_, err = s.FindTrace(ctx(t), "ws", "tr-missing")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "tr-missing")

	// A trace started with the v2 API and not ended has no duration.
	open2 := &wharf.Trace{Workspace: "ws", ID: "0123456789abcdef0123456789abcdef", ExperimentID: "0",
		RequestTime: 7, ExecutionTime: -1, State: wharf.TraceStateInProgress}
	must(t, s.CreateTrace(ctx(t), open2))
	got, err = s.FindTrace(ctx(t), "ws", open2.ID)
	must(t, err)
	if got.ExecutionTime != -1 || got.State != wharf.TraceStateInProgress || got.ExperimentID != "0" {
		t.Errorf("open trace = %+v, want no duration, IN_PROGRESS, experiment 0", got)
	}
}

func testTraceCreateAgain(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	tr := traceN(e.ID, 2)
	must(t, s.CreateTrace(ctx(t), tr))
	again := traceN(e.ID, 2)
	again.State = wharf.TraceStateError
	again.Tags = map[string]string{"added": "yes"}
	again.Metadata = map[string]string{"mlflow.sourceRun": "other"}
	must(t, s.CreateTrace(ctx(t), again))
	got, err := s.FindTrace(ctx(t), "ws", tr.ID)
	must(t, err)
	if got.State != wharf.TraceStateError || got.Tags["added"] != "yes" || got.Tags["mlflow.traceName"] != "step0" ||
		got.Metadata["mlflow.sourceRun"] != "other" {
		t.Errorf("trace created again = %+v, want its new state and merged tags and metadata", got)
	}
}

func testTraceCreateRefused(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	ts := tracker(t, s)
	other := mkExperiment(t, ts, "ws", "other")
	must(t, s.CreateTrace(ctx(t), traceN(e.ID, 1)))

	moved := traceN(other.ID, 1)
	err := s.CreateTrace(ctx(t), moved)
	wantCode(t, err, wharf.ECONFLICT)
	got, err := s.FindTrace(ctx(t), "ws", moved.ID)
	must(t, err)
	if got.ExperimentID != e.ID {
		t.Errorf("refused create moved the trace to experiment %s", got.ExperimentID)
	}

	for _, bad := range []struct {
		what string
		edit func(*wharf.Trace)
		code string
	}{
		{"unknown experiment", func(tr *wharf.Trace) { tr.ExperimentID = "999" }, wharf.ENOTFOUND},
		{"bad experiment id", func(tr *wharf.Trace) { tr.ExperimentID = "x" }, wharf.ENOTFOUND},
		{"id with a slash", func(tr *wharf.Trace) { tr.ID = "tr-a/../b" }, wharf.EINVALID},
		{"empty id", func(tr *wharf.Trace) { tr.ID = "" }, wharf.EINVALID},
		{"unknown state", func(tr *wharf.Trace) { tr.State = "DONE" }, wharf.EINVALID},
		{"empty tag key", func(tr *wharf.Trace) { tr.Tags[""] = "x" }, wharf.EINVALID},
		{"long metadata value", func(tr *wharf.Trace) { tr.Metadata["k"] = strings.Repeat("v", 8001) }, wharf.EINVALID},
	} {
		tr := traceN(e.ID, 40)
		bad.edit(tr)
		err := s.CreateTrace(ctx(t), tr)
		if wharf.ErrorCode(err) != bad.code {
			t.Errorf("%s: error %v, want %s", bad.what, err, bad.code)
		}
	}
	if _, err := s.FindTrace(ctx(t), "ws", traceN(e.ID, 40).ID); wharf.ErrorCode(err) != wharf.ENOTFOUND {
		t.Errorf("a refused create left a trace behind: %v", err)
	}

	must(t, ts.SetExperimentLifecycle(ctx(t), "ws", other.ID, wharf.LifecycleDeleted))
	err = s.CreateTrace(ctx(t), traceN(other.ID, 50))
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "active")
}

func testTraceEnd(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	tr := &wharf.Trace{Workspace: "ws", ID: "0123456789abcdef0123456789abcdef", ExperimentID: e.ID,
		RequestTime: 1000, ExecutionTime: -1, State: wharf.TraceStateInProgress,
		Tags: map[string]string{"a": "1"}, Metadata: map[string]string{"m": "1"}}
	must(t, s.CreateTrace(ctx(t), tr))
	got, err := s.EndTrace(ctx(t), "ws", tr.ID, 1250, wharf.TraceStateOK,
		map[string]string{"m": "2", "n": "3"}, map[string]string{"b": "2"})
	must(t, err)
	if got.ExecutionTime != 250 || got.State != wharf.TraceStateOK {
		t.Errorf("ended trace ran %d ms in state %s, want 250 and OK", got.ExecutionTime, got.State)
	}
	same(t, "ended metadata", got.Metadata, map[string]string{"m": "2", "n": "3"})
	if got.Tags["a"] != "1" || got.Tags["b"] != "2" {
		t.Errorf("ended tags = %v, want a=1 and b=2", got.Tags)
	}
	_, err = s.EndTrace(ctx(t), "ws", "tr-missing", 1, wharf.TraceStateOK, nil, nil)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.EndTrace(ctx(t), "ws", tr.ID, 1, "NOPE", nil, nil)
	wantCode(t, err, wharf.EINVALID)
}

func testTraceTags(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	tr := mkTraces(t, s, e.ID, 1)[0]
	must(t, s.SetTraceTag(ctx(t), "ws", tr.ID, "team", "nlp"))
	must(t, s.SetTraceTag(ctx(t), "ws", tr.ID, "team", "vision"))
	got, err := s.FindTrace(ctx(t), "ws", tr.ID)
	must(t, err)
	if got.Tags["team"] != "vision" {
		t.Errorf("tag team = %q, want the last value set, vision", got.Tags["team"])
	}
	must(t, s.DeleteTraceTag(ctx(t), "ws", tr.ID, "team"))
	got, err = s.FindTrace(ctx(t), "ws", tr.ID)
	must(t, err)
	if _, ok := got.Tags["team"]; ok {
		t.Error("deleted tag is still there")
	}
	wantCode(t, s.DeleteTraceTag(ctx(t), "ws", tr.ID, "team"), wharf.ENOTFOUND)
	wantCode(t, s.SetTraceTag(ctx(t), "ws", "tr-missing", "k", "v"), wharf.ENOTFOUND)
	wantCode(t, s.DeleteTraceTag(ctx(t), "ws", "tr-missing", "k"), wharf.ENOTFOUND)
	wantCode(t, s.SetTraceTag(ctx(t), "ws", tr.ID, "", "v"), wharf.EINVALID)
}

// searchTraces searches experiment expID and returns the ids found.
func searchTraces(t *testing.T, s wharf.Store, q wharf.SearchQuery) string {
	t.Helper()
	got, _, err := s.SearchTraces(ctx(t), "ws", q)
	if err != nil {
		t.Fatalf("search %q: %v", q.Filter, err)
	}
	return traceIDs(got)
}

func testTraceSearchFilters(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	ts := tracker(t, s)
	other := mkExperiment(t, ts, "ws", "other")
	mkTraces(t, s, e.ID, 1, 2, 3, 4, 5, 6)
	mkTraces(t, s, other.ID, 7)
	tr := traceN(e.ID, 8)
	tr.Tags["team"] = "nlp"
	tr.ClientRequestID = "client-8"
	must(t, s.CreateTrace(ctx(t), tr))

	for _, c := range []struct{ filter, want string }{
		{"", "8,6,5,4,3,2,1"},
		{"status = 'ERROR'", "6,3"},
		{"trace.status != 'ERROR'", "8,5,4,2,1"},
		{"attributes.status IN ('ERROR', 'IN_PROGRESS')", "6,3"},
		{"timestamp_ms > 2000 AND timestamp_ms <= 5000", "5,4,3"},
		{"trace.timestamp >= 6000", "8,6"},
		{"execution_time_ms < 3", "2,1"},
		{"end_time_ms = 4004", "4"},
		{"tags.team = 'nlp'", "8"},
		{"tags.team IS NULL AND status = 'OK'", "5,4,2,1"},
		{"tags.team IS NOT NULL", "8"},
		{"tags.`mlflow.traceName` = 'step1'", "5,3,1"},
		{"name = 'step0'", "8,6,4,2"},
		{"name LIKE 'step%' AND name != 'step0'", "5,3,1"},
		{"run_id = 'run1'", "5,3,1"},
		{"request_metadata.`mlflow.sourceRun` = 'run0'", "8,6,4,2"},
		{"metadata.`mlflow.sourceRun` ILIKE 'RUN1'", "5,3,1"},
		{"request_id = '" + traceN(e.ID, 4).ID + "'", "4"},
		{"request_id IN ('" + traceN(e.ID, 4).ID + "', '" + traceN(e.ID, 2).ID + "')", "4,2"},
		{"client_request_id = 'client-8'", "8"},
	} {
		got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{e.ID}, Filter: c.filter})
		if got != c.want {
			t.Errorf("filter %q: got %s, want %s", c.filter, got, c.want)
		}
	}
	if got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{e.ID, other.ID}, Filter: "timestamp_ms >= 6000"}); got != "8,7,6" {
		t.Errorf("two experiments: got %s, want 8,7,6", got)
	}
	if got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{"999", "x"}}); got != "" {
		t.Errorf("unknown experiments: got %s, want nothing", got)
	}
}

func testTraceSearchOrder(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	trs := mkTraces(t, s, e.ID, 1, 2, 3, 4)
	must(t, s.SetTraceTag(ctx(t), "ws", trs[2].ID, "rank", "a"))
	must(t, s.SetTraceTag(ctx(t), "ws", trs[0].ID, "rank", "b"))
	for _, c := range []struct {
		order []string
		want  string
	}{
		{nil, "4,3,2,1"},
		{[]string{"timestamp_ms ASC"}, "1,2,3,4"},
		{[]string{"execution_time DESC"}, "4,3,2,1"},
		{[]string{"status", "timestamp_ms"}, "3,1,2,4"},
		{[]string{"name ASC"}, "4,2,3,1"},
		{[]string{"tags.rank"}, "3,1,4,2"},
		{[]string{"tags.rank DESC"}, "1,3,4,2"},
		{[]string{"request_id DESC"}, "4,3,2,1"},
	} {
		got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{e.ID}, OrderBy: c.order})
		if got != c.want {
			t.Errorf("order %v: got %s, want %s", c.order, got, c.want)
		}
	}
}

func testTraceSearchPaging(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	mkTraces(t, s, e.ID, 1, 2, 3, 4, 5)
	var pages []string
	token := ""
	for range 5 {
		got, next, err := s.SearchTraces(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, MaxResults: 2, PageToken: token})
		must(t, err)
		pages = append(pages, traceIDs(got))
		if next == "" {
			break
		}
		token = next
	}
	if got := strings.Join(pages, "|"); got != "5,4|3,2|1" {
		t.Errorf("pages = %s, want 5,4|3,2|1", got)
	}
	_, _, err := s.SearchTraces(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, MaxResults: 501})
	wantCode(t, err, wharf.EINVALID)
	_, _, err = s.SearchTraces(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, PageToken: "not a token"})
	wantCode(t, err, wharf.EINVALID)
}

func testTraceSearchInvalid(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	for _, f := range []string{
		"metrics.x > 1",
		"span.name = 'x'",
		"status > 'OK'",
		"timestamp_ms = 'x'",
		"tags.x IN ('a')",
		"nonsense = 1",
		"status = 'OK' OR status = 'ERROR'",
	} {
		_, _, err := s.SearchTraces(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, Filter: f})
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("filter %q: error %v, want EINVALID", f, err)
		} else {
			wantMessage(t, err)
		}
	}
	_, _, err := s.SearchTraces(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{e.ID}, OrderBy: []string{"params.x"}})
	wantCode(t, err, wharf.EINVALID)
}

func testTraceDeleteByIDs(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	ts := tracker(t, s)
	other := mkExperiment(t, ts, "ws", "other")
	trs := mkTraces(t, s, e.ID, 1, 2, 3)
	elsewhere := mkTraces(t, s, other.ID, 4)[0]
	must(t, s.PutAssessment(ctx(t), &wharf.Assessment{Workspace: "ws", TraceID: trs[0].ID, ID: "a-1", Name: "n", Document: []byte("{}")}))

	deleted, err := s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: e.ID,
		IDs: []string{trs[0].ID, trs[2].ID, elsewhere.ID, "tr-missing"}})
	must(t, err)
	if len(deleted) != 2 {
		t.Fatalf("deleted %d traces, want 2 (a trace of another experiment is not one of them)", len(deleted))
	}
	for _, d := range deleted {
		if d.Tags[wharf.TraceArtifactLocationTag] == "" {
			t.Errorf("deleted trace %s comes back without its artifact location", d.ID)
		}
	}
	if got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{e.ID, other.ID}}); got != "4,2" {
		t.Errorf("after delete: %s, want 4,2", got)
	}
	_, err = s.FindAssessment(ctx(t), "ws", trs[0].ID, "a-1")
	wantCode(t, err, wharf.ENOTFOUND)
	// The trace's id is free again.
	must(t, s.CreateTrace(ctx(t), traceN(e.ID, 1)))
	got, err := s.FindTrace(ctx(t), "ws", trs[0].ID)
	must(t, err)
	if len(got.Assessments) != 0 {
		t.Errorf("a new trace under a deleted id has the old one's assessments: %v", got.Assessments)
	}
	_, err = s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: "999", IDs: []string{trs[1].ID}})
	wantCode(t, err, wharf.ENOTFOUND)
}

func testTraceDeleteByTimestamp(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	mkTraces(t, s, e.ID, 1, 2, 3, 4, 5)
	deleted, err := s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: e.ID, MaxTimestamp: 4000, MaxTraces: 2})
	must(t, err)
	if got := traceIDs(deleted); got != "1,2" {
		t.Errorf("deleted %s, want the two oldest, 1,2", got)
	}
	deleted, err = s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: e.ID, MaxTimestamp: 4000})
	must(t, err)
	if got := traceIDs(deleted); got != "3,4" {
		t.Errorf("deleted %s, want 3,4", got)
	}
	if got := searchTraces(t, s, wharf.SearchQuery{ExperimentIDs: []string{e.ID}}); got != "5" {
		t.Errorf("left %s, want 5", got)
	}
	deleted, err = s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: e.ID, MaxTimestamp: 10})
	must(t, err)
	if len(deleted) != 0 {
		t.Errorf("deleted %d traces older than any, want 0", len(deleted))
	}
	_, err = s.DeleteTraces(ctx(t), "ws", wharf.TraceDeletion{ExperimentID: e.ID, MaxTimestamp: 10, MaxTraces: -1})
	wantCode(t, err, wharf.EINVALID)
}

func testTraceAssessments(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	tr := mkTraces(t, s, e.ID, 1)[0]
	a := &wharf.Assessment{Workspace: "ws", TraceID: tr.ID, ID: "a-0123", Name: "correct",
		CreateTime: 10, LastUpdateTime: 10, Document: []byte(`{"feedback":{"value":0.5}}`)}
	must(t, s.PutAssessment(ctx(t), a))
	got, err := s.FindAssessment(ctx(t), "ws", tr.ID, a.ID)
	must(t, err)
	same(t, "assessment", got, a)

	b := *a
	b.Name, b.LastUpdateTime, b.Document = "renamed", 20, []byte(`{"feedback":{"value":1}}`)
	must(t, s.PutAssessment(ctx(t), &b))
	found, err := s.FindTrace(ctx(t), "ws", tr.ID)
	must(t, err)
	if len(found.Assessments) != 1 || found.Assessments[0].Name != "renamed" ||
		string(found.Assessments[0].Document) != `{"feedback":{"value":1}}` || found.Assessments[0].CreateTime != 10 {
		t.Errorf("trace's assessments after replace = %s", show(found.Assessments))
	}

	_, err = s.FindAssessment(ctx(t), "ws", tr.ID, "a-missing")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.FindAssessment(ctx(t), "ws", "tr-missing", a.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, s.PutAssessment(ctx(t), &wharf.Assessment{Workspace: "ws", TraceID: "tr-missing", ID: "a-1", Name: "n"}), wharf.ENOTFOUND)
	wantCode(t, s.PutAssessment(ctx(t), &wharf.Assessment{Workspace: "ws", TraceID: tr.ID, ID: "a-1", Name: ""}), wharf.EINVALID)

	must(t, s.DeleteAssessment(ctx(t), "ws", tr.ID, a.ID))
	wantCode(t, s.DeleteAssessment(ctx(t), "ws", tr.ID, a.ID), wharf.ENOTFOUND)
	_, err = s.FindAssessment(ctx(t), "ws", tr.ID, a.ID)
	wantCode(t, err, wharf.ENOTFOUND)
}

func testTraceWorkspaceIsolation(t *testing.T, open Opener) {
	s, e := openTraces(t, open)
	mkWorkspace(t, s, "other")
	tr := mkTraces(t, s, e.ID, 1)[0]
	// Workspace "other" has its own experiment with the same id.
	ts := tracker(t, s)
	oe := mkExperiment(t, ts, "other", "traced")
	if oe.ID != e.ID {
		t.Fatalf("experiment ids differ (%s, %s); the test needs them equal", oe.ID, e.ID)
	}
	_, err := s.FindTrace(ctx(t), "other", tr.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	got, _, err := s.SearchTraces(ctx(t), "other", wharf.SearchQuery{ExperimentIDs: []string{e.ID}})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("workspace other sees %d traces of ws", len(got))
	}
	wantCode(t, s.SetTraceTag(ctx(t), "other", tr.ID, "k", "v"), wharf.ENOTFOUND)
	deleted, err := s.DeleteTraces(ctx(t), "other", wharf.TraceDeletion{ExperimentID: e.ID, IDs: []string{tr.ID}})
	must(t, err)
	if len(deleted) != 0 {
		t.Errorf("workspace other deleted %d traces of ws", len(deleted))
	}
	// The same id in the other workspace is a trace of its own.
	mine := traceN(oe.ID, 1)
	mine.Workspace = "other"
	must(t, s.CreateTrace(ctx(t), mine))
	must(t, s.DeleteWorkspace(ctx(t), "other"))
	if _, err := s.FindTrace(ctx(t), "ws", tr.ID); err != nil {
		t.Errorf("deleting workspace other touched ws's trace: %v", err)
	}
}
