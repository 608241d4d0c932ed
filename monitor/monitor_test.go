package monitor

import (
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

func TestBreachesTagAndAlertAsAzureDoes(t *testing.T) {
	m := &jobspec.Monitor{Target: jobspec.MonitorTarget{Endpoint: "taxi", Deployment: "blue"}, Emails: []string{"a@example.com", "b@example.com"},
		Webhooks: []jobspec.MonitorWebhook{{URL: "https://hooks.example.com/x", Secret: "k"}}}
	drift := &jobspec.MonitorSignal{Name: "drift", Type: jobspec.SignalDataDrift, AlertEnabled: true}
	quiet := &jobspec.MonitorSignal{Name: "quiet", Type: jobspec.SignalDataQuality, AlertEnabled: false}
	ok := &jobspec.MonitorSignal{Name: "ok", Type: jobspec.SignalDataDrift, AlertEnabled: true}
	runs := []*signalRun{
		{sig: drift, results: []wharf.MonitorResult{
			{Signal: "drift", Feature: "distance", Metric: "normalized_wasserstein_distance", Value: 2.5, Threshold: 0.1, Passed: false},
			{Signal: "drift", Feature: "hour", Metric: "normalized_wasserstein_distance", Value: 0.01, Threshold: 0.1, Passed: true}}},
		{sig: quiet, results: []wharf.MonitorResult{{Signal: "quiet", Feature: "vendor", Metric: "null_value_rate", Value: 0.2, Passed: false}}},
		{sig: ok, results: []wharf.MonitorResult{{Signal: "ok", Feature: "hour", Metric: "jensen_shannon_distance", Value: 0, Threshold: 0.1, Passed: true}}},
	}
	alerts, tags := breaches(&wharf.Job{Workspace: "ws", Name: "job1"}, "mon", m, runs)
	msg := tags[wharf.BreachTag]
	if !strings.HasPrefix(msg, "The signal 'drift' has failed due to one or more features violating metric thresholds. [{") ||
		!strings.Contains(msg, `"group":"distance"`) || strings.Contains(msg, `"group":"hour"`) || !strings.Contains(msg, "The signal 'quiet'") {
		t.Errorf("breach tag = %q", msg)
	}
	if tags["mon_drift"] == "" || tags["mon_quiet"] == "" || tags["mon_ok"] != "" {
		t.Errorf("signal tags = %v", tags)
	}
	// Alerts for the breached signal with alerts on: each e-mail and
	// webhook once; none for the signal with alert_enabled false.
	if len(alerts) != 3 {
		t.Fatalf("alerts = %d, want 3", len(alerts))
	}
	for _, a := range alerts {
		if a.Signal != "drift" {
			t.Errorf("alert for signal %s", a.Signal)
		}
	}
	if alerts[0].Channel != wharf.AlertEmail || alerts[0].Target != "a@example.com" || !strings.Contains(alerts[0].Body, "distance") ||
		strings.Contains(alerts[0].Body, "hour ") {
		t.Errorf("e-mail alert = %+v", alerts[0])
	}
	if alerts[2].Channel != wharf.AlertWebhook || alerts[2].Secret != "k" || !strings.Contains(alerts[2].Body, `"job":"job1"`) {
		t.Errorf("webhook alert = %+v", alerts[2])
	}
	if _, tags := breaches(&wharf.Job{}, "mon", m, runs[2:]); len(tags) != 0 {
		t.Errorf("tags without a breach = %v", tags)
	}
}
