package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// TestConcurrentWritesAreAuditedBeforeTheirAnswer sends MLflow writes from
// many clients at once: experiment and run creations, whose audit records
// are group-committed, and log-batch calls, whose records commit with the
// batch (wharf.ArmAudit). On each answer, as soon as it arrives, its
// record must already be stored, once, with the answer's status and
// outcome: the successes as succeeded, a name another client took and a
// batch for a missing run as failed; none lost and none twice.
func TestConcurrentWritesAreAuditedBeforeTheirAnswer(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	ds := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	const ml = "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow/"
	var exp struct {
		ID string `json:"experiment_id"`
	}
	if err := f.client(ds).Do(context.Background(), "POST", ml+"experiments/create", map[string]string{"name": "batches"}, &exp); err != nil {
		t.Fatal(err)
	}

	stored := func() (map[string][]*wharf.AuditEvent, error) {
		events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{PrincipalID: "app-ds", Limit: 1000})
		byRequest := map[string][]*wharf.AuditEvent{}
		for _, e := range events {
			byRequest[e.RequestID] = append(byRequest[e.RequestID], e)
		}
		return byRequest, err
	}
	// post sends one write and checks its audit record on its answer.
	post := func(path, body string, out any) (int, error) {
		req, err := http.NewRequest("POST", f.http.URL+ml+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+ds)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if out != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				return 0, err
			}
		}
		byRequest, err := stored()
		if err != nil {
			return 0, err
		}
		rs := byRequest[resp.Header.Get("x-request-id")]
		if len(rs) != 1 {
			return resp.StatusCode, fmt.Errorf("%s answered %d with %d audit records stored: %+v", path, resp.StatusCode, len(rs), rs)
		}
		e := rs[0]
		if e.Status != resp.StatusCode || e.Action != wharf.ActionExperimentWrite || e.Path != ml+path ||
			e.Scope != "/workspaces/ws-a" || e.Method != "POST" || e.PrincipalName != "ds" ||
			(resp.StatusCode == 200) != (e.Outcome == wharf.AuditSucceeded) {
			return resp.StatusCode, fmt.Errorf("%s answered %d; its record is %+v", path, resp.StatusCode, e)
		}
		return resp.StatusCode, nil
	}

	const clients, batches = 12, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients*(batches+3))
	var mu sync.Mutex
	answers := map[int]int{}
	count := func(status int, err error) {
		if err != nil {
			errs <- err
		}
		mu.Lock()
		answers[status]++
		mu.Unlock()
	}
	for c := range clients {
		wg.Go(func() {
			// Every client tries the same name: one succeeds.
			count(post("experiments/create", `{"name":"shared"}`, nil))
			var run struct {
				Run struct {
					Info struct {
						RunID string `json:"run_id"`
					} `json:"info"`
				} `json:"run"`
			}
			count(post("runs/create", `{"experiment_id":"`+exp.ID+`"}`, &run))
			for i := range batches {
				count(post("runs/log-batch", fmt.Sprintf(`{"run_id":%q,"metrics":[{"key":"m%d","value":%d,"timestamp":1,"step":%d}]}`,
					run.Run.Info.RunID, c, i, i), nil))
			}
			count(post("runs/log-batch", `{"run_id":"0123456789abcdef0123456789abcdef","metrics":[{"key":"m","value":1,"timestamp":1}]}`, nil))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := clients * (batches + 3)
	if answers[200] != total-2*clients+1 {
		t.Errorf("answers by status: %v; want %d successes", answers, total-2*clients+1)
	}
	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{PrincipalID: "app-ds", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != total+1 {
		t.Errorf("%d records for %d writes", len(events), total+1)
	}
	failed := 0
	for _, e := range events {
		if e.Outcome == wharf.AuditFailed {
			failed++
		}
	}
	if failed != 2*clients-1 {
		t.Errorf("%d failed records, want %d", failed, 2*clients-1)
	}
}

// TestArmedAuditAnsweredOtherwiseIsRecordedAgain checks the one case where
// a call's audit record, written with its write, does not match its
// answer: the write committed, then the call failed. The record of the
// write stays (the log is append-only, and the write did happen) and the
// pipeline records the failed answer as well. No route of the server
// fails after its armed write, so the test registers one that does: a
// fake for a fault the real routes cannot cause.
func TestArmedAuditAnsweredOtherwiseIsRecordedAgain(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	ds := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	const path = "/api/v1/workspaces/ws-a/auditProbe"
	wharfhttp.RouteForTest(f.srv, "POST /api/v1/workspaces/{workspace}/auditProbe", wharf.ActionExperimentWrite,
		func(w http.ResponseWriter, r *http.Request) {
			if err := f.db.CreateExperiment(wharf.ArmAudit(r.Context(), http.StatusOK),
				&wharf.Experiment{Workspace: "ws-a", Name: "probe"}); err != nil {
				t.Error(err)
			}
			http.Error(w, "a later step failed", http.StatusInternalServerError)
		})
	if got := call(t, f, "POST", path, "", ds); got != 500 {
		t.Fatalf("probe answered %d", got)
	}
	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{PrincipalID: "app-ds"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].RequestID != events[1].RequestID {
		t.Fatalf("records: %+v", events)
	}
	// Newest first: the failed answer after the write.
	if events[1].Status != 200 || events[1].Outcome != wharf.AuditSucceeded ||
		events[0].Status != 500 || events[0].Outcome != wharf.AuditFailed || events[0].Path != path {
		t.Errorf("records: %+v, %+v", events[1], events[0])
	}
}
