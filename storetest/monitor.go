package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func testMonitorResults(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	t0 := time.Date(2026, 12, 1, 3, 15, 0, 0, time.UTC)
	run := func(job string, at time.Time, js float64) *wharf.MonitorRun {
		return &wharf.MonitorRun{Workspace: "ws", Schedule: "mon", Job: job, Time: at, Results: []wharf.MonitorResult{
			{Signal: "drift", SignalType: "data_drift", Feature: "distance", DataType: "numerical", Metric: "jensen_shannon_distance",
				Value: js, Threshold: 0.1, Direction: wharf.HigherIsWorse, Passed: js <= 0.1},
			{Signal: "drift", SignalType: "data_drift", Feature: "distance", DataType: "numerical", Metric: "two_sample_kolmogorov_smirnov_test",
				Value: math.NaN(), Threshold: 0.05, Direction: wharf.LowerIsWorse, Passed: true, Detail: "more than 10000 rows"},
			{Signal: "quality", SignalType: "data_quality", Feature: "vendor", DataType: "categorical", Metric: "null_value_rate",
				Value: 0, Threshold: 0, Direction: wharf.HigherIsWorse, Passed: true},
		}}
	}
	must(t, s.RecordMonitorRun(ctx(t), run("j1", t0, 0.05), nil))
	alert := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertEmail, Target: "a@example.com", Subject: "s", Body: "b"}
	must(t, s.RecordMonitorRun(ctx(t), run("j2", t0.Add(time.Hour), 0.3), []*wharf.MonitorAlert{alert}))
	if alert.ID == 0 || alert.Job != "j2" || alert.Schedule != "mon" {
		t.Errorf("alert = %+v", alert)
	}
	// A job's run is recorded once: nothing of a second call is kept.
	again := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertWebhook, Target: "http://x", Body: "{}"}
	wantCode(t, s.RecordMonitorRun(ctx(t), run("j2", t0.Add(time.Hour), 0.3), []*wharf.MonitorAlert{again}), wharf.ECONFLICT)
	alerts, _, err := s.ListAlerts(ctx(t), "ws", "mon")
	must(t, err)
	if len(alerts) != 1 {
		t.Errorf("alerts after a repeated record = %d, want 1", len(alerts))
	}

	got, err := s.JobMonitorResults(ctx(t), "ws", "j2")
	must(t, err)
	if len(got) != 3 || got[0].Metric != "jensen_shannon_distance" || got[0].Value != 0.3 || got[0].Passed || !math.IsNaN(got[1].Value) ||
		got[1].Detail == "" || got[2].Signal != "quality" {
		t.Errorf("job results = %+v", got)
	}
	hist, err := s.MonitorHistory(ctx(t), "ws", "mon", "drift", 10)
	must(t, err)
	if len(hist) != 2 || hist[0].Job != "j2" || hist[1].Job != "j1" || !hist[0].Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("history = %+v", hist)
	}
	for _, r := range hist {
		if len(r.Results) != 2 || r.Results[0].Signal != "drift" {
			t.Errorf("history of signal drift, run %s = %+v", r.Job, r.Results)
		}
	}
	hist, err = s.MonitorHistory(ctx(t), "ws", "mon", "", 1)
	must(t, err)
	if len(hist) != 1 || hist[0].Job != "j2" || len(hist[0].Results) != 3 {
		t.Errorf("last run = %+v", hist)
	}
}

func testMonitorAlerts(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	now := time.Date(2026, 12, 1, 3, 15, 0, 0, time.UTC)
	mail := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertEmail, Target: "a@example.com", Subject: "s", Body: "b", NextAttempt: now}
	hook := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertWebhook, Target: "http://127.0.0.1/x", Secret: "k", Body: "{}", NextAttempt: now.Add(time.Minute)}
	must(t, s.RecordMonitorRun(ctx(t), &wharf.MonitorRun{Workspace: "ws", Schedule: "mon", Job: "j1", Time: now}, []*wharf.MonitorAlert{mail, hook}))
	due, err := s.DueAlerts(ctx(t), now, 10)
	must(t, err)
	if len(due) != 1 || due[0].ID != mail.ID || due[0].Body != "b" || due[0].Target != "a@example.com" {
		t.Fatalf("due = %+v", due)
	}
	// A failed attempt moves the next one on; a delivered alert is never
	// due again.
	a := due[0]
	a.Attempts, a.NextAttempt, a.LastError = 1, now.Add(2*time.Minute), "connection refused"
	must(t, s.RecordAlertDelivery(ctx(t), a, &wharf.AlertDelivery{AlertID: a.ID, Attempt: 1, Time: now, Error: "connection refused"}))
	due, err = s.DueAlerts(ctx(t), now.Add(time.Minute), 10)
	must(t, err)
	if len(due) != 1 || due[0].ID != hook.ID {
		t.Fatalf("due a minute later = %+v", due)
	}
	d := now.Add(3 * time.Minute)
	a.Attempts, a.DeliveredAt, a.LastError = 2, &d, ""
	must(t, s.RecordAlertDelivery(ctx(t), a, &wharf.AlertDelivery{AlertID: a.ID, Attempt: 2, Time: d, Status: 250}))
	wantCode(t, s.RecordAlertDelivery(ctx(t), a, &wharf.AlertDelivery{AlertID: a.ID, Attempt: 3, Time: d}), wharf.ECONFLICT)
	due, err = s.DueAlerts(ctx(t), now.Add(time.Hour), 10)
	must(t, err)
	if len(due) != 1 || due[0].ID != hook.ID {
		t.Errorf("due after delivery = %+v", due)
	}
	alerts, deliveries, err := s.ListAlerts(ctx(t), "ws", "mon")
	must(t, err)
	if len(alerts) != 2 || len(deliveries) != 2 || deliveries[1].Status != 250 || deliveries[0].Error != "connection refused" {
		t.Errorf("alerts = %+v deliveries = %+v", alerts, deliveries)
	}
	for _, x := range alerts {
		if x.ID == mail.ID && (x.DeliveredAt == nil || !x.DeliveredAt.Equal(d) || x.Attempts != 2) {
			t.Errorf("delivered alert = %+v", x)
		}
	}
}
