package mlflow_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/http/servertest"
)

// TestMLflowJobTokenWritesOwnRuns checks that a job's token logs batches
// into its job's runs only, whether the batch is in the clients' form
// (read by the fast decoder) or not, and cannot set the job tag by
// set-tag or in a batch's tags.
func TestMLflowJobTokenWritesOwnRuns(t *testing.T) {
	f := newMLflowFixture(t)
	ctx := t.Context()
	j := &wharf.Job{Workspace: "ws-a", Name: "quiet_otter", Type: wharf.JobTypeCommand, Status: wharf.JobRunning,
		SubmittedBy: "app-owner", Spec: json.RawMessage(`{}`)}
	if err := f.DB.CreateJobs(ctx, []*wharf.Job{j}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.Issuer.IssueJob(servertest.Tenant, "app-owner", wharfhttp.JobAudience, "ws-a", j.Name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	job := f.client("ws-a", tok)
	own := str(t, obj(t, job.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")
	other := str(t, obj(t, f.owner.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")

	fast := func(id string) map[string]any {
		return map[string]any{"run_id": id, "metrics": []any{map[string]any{"key": "k", "value": 1, "timestamp": 1}}}
	}
	// An unknown field sends the batch through the general parser.
	general := func(id string) map[string]any {
		b := fast(id)
		b["experiment_id"] = "0"
		return b
	}
	job.ok("POST", api("runs/log-batch"), fast(own))
	job.ok("POST", api("runs/log-batch"), general(own))
	job.fails("POST", api("runs/log-batch"), fast(other), 403, "PERMISSION_DENIED")
	job.fails("POST", api("runs/log-batch"), general(other), 403, "PERMISSION_DENIED")
	job.fails("POST", api("runs/set-tag"), map[string]any{"run_id": own, "key": "wharf.job", "value": "x"}, 403, "PERMISSION_DENIED")
	tagged := func(b map[string]any) map[string]any {
		b["tags"] = []any{map[string]any{"key": "wharf.job", "value": "other_job"}}
		return b
	}
	job.fails("POST", api("runs/log-batch"), tagged(fast(own)), 403, "PERMISSION_DENIED")
	job.fails("POST", api("runs/log-batch"), tagged(general(own)), 403, "PERMISSION_DENIED")
	if r, err := f.DB.FindRun(ctx, "ws-a", own); err != nil || r.Tags["wharf.job"] != j.Name {
		t.Fatalf("own run's job tag: %+v, %v", r, err)
	}
	if r, err := f.DB.FindRun(ctx, "ws-a", other); err != nil || len(r.Metrics) != 0 {
		t.Fatalf("the other run: %+v, %v", r, err)
	}
	// Anyone else may still write the tag in a batch, as MLflow allows.
	f.owner.ok("POST", api("runs/log-batch"), tagged(fast(other)))
}
