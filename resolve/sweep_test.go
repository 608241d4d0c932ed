package resolve_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// A schedule whose create_job is a sweep submits the sweep at each firing;
// its trials run. They log nothing here (the tracking server is not
// reachable), so the sweep ends Failed for want of the primary metric.
func TestScheduleFiresASweep(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	ctx := t.Context()
	doc := `{"type":"sweep","compute":"azureml:cpu","experiment_name":"tune",
		"trial":{"command":"echo ${{search_space.lr}}","environment":{"image":"python:3.11"}},
		"search_space":{"lr":{"type":"choice","values":[0.1,0.2]}},
		"sampling_algorithm":"grid","objective":{"goal":"maximize","primary_metric":"acc"},
		"limits":{"max_total_trials":5}}`
	sc := &wharf.Schedule{Workspace: "ws", Name: "retrain", Enabled: true, CreatedBy: "alice",
		Job: json.RawMessage(doc), Trigger: json.RawMessage(`{"type":"cron","expression":"* * * * *","time_zone":"UTC"}`)}
	if err := e.sched.PrepareSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	var sw *wharf.Job
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.sched.Wake()
		s, err := e.db.FindSchedule(ctx, "ws", "retrain")
		if err != nil {
			t.Fatal(err)
		}
		if s.LastJob == "" {
			continue
		}
		if sw, err = e.db.FindJob(ctx, "ws", s.LastJob); err != nil {
			t.Fatalf("the firing made no job: %s (%v)", s.LastJob, err)
		}
		if wharf.JobTerminal(sw.Status) {
			break
		}
	}
	if sw == nil || sw.Type != wharf.JobTypeSweep || sw.Status != wharf.JobFailed ||
		sw.Error != "no trial completed with the primary metric acc logged" {
		t.Fatalf("the firing's job: %+v", sw)
	}
	trials, err := e.db.ListJobs(ctx, "ws", sw.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 2 || trials[0].Parameters["lr"] != "0.1" || trials[1].Parameters["lr"] != "0.2" {
		t.Fatalf("trials %d: %+v", len(trials), trials)
	}
	for _, tr := range trials {
		if tr.Status != wharf.JobCompleted {
			t.Errorf("trial %s: %s %s", tr.Name, tr.Status, tr.Error)
		}
	}
}
