package mlflowtest

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

type tracingSummary struct {
	Client           string   `json:"client"`
	ExperimentID     string   `json:"experiment_id"`
	Checks           []string `json:"checks"`
	TraceID          string   `json:"trace_id"`
	ArtifactLocation string   `json:"artifact_location"`
}

type tracingReaderSummary struct {
	Client string   `json:"client"`
	Denied []string `json:"denied"`
}

// TestMLflowTracing drives MLflow tracing with the real mlflow 3.x client:
// traced functions and spans are logged, searched, filtered, paged, tagged,
// assessed and deleted by a Data Scientist, and a Reader of the workspace
// may read the traces but change nothing.
func TestMLflowTracing(t *testing.T) {
	py := mlflowPython(t, "WHARF_TEST_MLFLOW3_PYTHON")
	f := newFixture(t)

	var s tracingSummary
	runScript(t, py, "tracing.py", pythonEnv(f.trackingURI("ws-a"), f.dsToken), &s,
		"--experiment", "wharf-tracing")
	if !strings.HasPrefix(s.Client, "3.") {
		t.Errorf("tracing.py ran mlflow %s, want 3.x", s.Client)
	}
	for _, want := range []string{"spans", "get_trace", "search", "tags", "assessments", "delete", "otlp"} {
		if !contains(s.Checks, want) {
			t.Errorf("tracing.py did not run check %q (ran %v)", want, s.Checks)
		}
	}
	if t.Failed() {
		return
	}

	// The spans are the artifact traces.json below the trace's location,
	// in the workspace's artifact tree.
	wantLoc := "mlflow-artifacts:/" + s.ExperimentID + "/traces/" + s.TraceID + "/artifacts"
	if s.ArtifactLocation != wantLoc {
		t.Errorf("trace artifact location %q, want %q", s.ArtifactLocation, wantLoc)
	}
	var list struct {
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	q := url.Values{"path": {s.ExperimentID + "/traces/" + s.TraceID + "/artifacts"}}
	if err := f.owner.Do(context.Background(), "GET", "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow-artifacts/artifacts?"+q.Encode(), nil, &list); err != nil {
		t.Fatalf("list the trace's artifacts: %v", err)
	}
	if len(list.Files) != 1 || list.Files[0].Path != "traces.json" {
		t.Errorf("trace artifacts %+v, want traces.json", list.Files)
	}

	var r tracingReaderSummary
	runScript(t, py, "tracing.py", pythonEnv(f.trackingURI("ws-a"), f.readerToken), &r,
		"--reader", "--experiment-id", s.ExperimentID, "--trace-id", s.TraceID)
	if strings.Join(r.Denied, ",") != "set_trace_tag,delete_traces,log_feedback" {
		t.Errorf("reader denied %v, want set_trace_tag, delete_traces and log_feedback", r.Denied)
	}
}
