package http_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wharfml/wharf"
)

// TestConcurrentWritesAreAuditedBeforeTheirAnswer sends MLflow writes from
// many clients at once, so that their audit records are committed in
// groups, and checks on each answer, as soon as it arrives, that its record
// is already stored with the answer's status and outcome: the successes as
// succeeded, the names taken by another client as failed, none lost and
// none twice.
func TestConcurrentWritesAreAuditedBeforeTheirAnswer(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	ds := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	const clients, each = 16, 6
	path := "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow/experiments/create"

	// find returns the stored audit record of the request id, if any.
	find := func(requestID string) (*wharf.AuditEvent, error) {
		events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{PrincipalID: "app-ds", Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if e.RequestID == requestID {
				return e, nil
			}
		}
		return nil, nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	status := map[string]int{}
	errs := make(chan error, clients*each)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every client's first write takes the same name: one
				// succeeds, the others fail.
				name := fmt.Sprintf("exp-%d-%d", c, i)
				if i == 0 {
					name = "shared"
				}
				req, err := http.NewRequest("POST", f.http.URL+path, strings.NewReader(`{"name":"`+name+`"}`))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Bearer "+ds)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				id := resp.Header.Get("x-request-id")
				e, err := find(id)
				switch {
				case err != nil:
					errs <- err
				case e == nil:
					errs <- fmt.Errorf("%s answered %d before its audit record was stored", name, resp.StatusCode)
				case e.Status != resp.StatusCode || e.Action != wharf.ActionExperimentWrite || e.Path != path ||
					e.Scope != "/workspaces/ws-a" || e.Method != "POST" || e.PrincipalName != "ds":
					errs <- fmt.Errorf("%s answered %d; its record is %+v", name, resp.StatusCode, e)
				case (resp.StatusCode == 200) != (e.Outcome == wharf.AuditSucceeded):
					errs <- fmt.Errorf("%s answered %d; its record says %s", name, resp.StatusCode, e.Outcome)
				}
				mu.Lock()
				status[id] = resp.StatusCode
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{PrincipalID: "app-ds", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != clients*each || len(status) != clients*each {
		t.Errorf("%d records for %d answers (%d requests)", len(events), len(status), clients*each)
	}
	failed := 0
	for i, e := range events {
		if e.Outcome == wharf.AuditFailed {
			failed++
		}
		// Newest first: ids fall as times do.
		if i > 0 && (e.ID >= events[i-1].ID || e.Time.After(events[i-1].Time)) {
			t.Errorf("record %d (id %d, %v) listed after id %d, %v", i, e.ID, e.Time, events[i-1].ID, events[i-1].Time)
		}
	}
	if failed != clients-1 {
		t.Errorf("%d failed records, want %d (the names already taken)", failed, clients-1)
	}
}
