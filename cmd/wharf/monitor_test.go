package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/alert"
	"github.com/wharfml/wharf/internal/smtptest"
)

// webhookSink records the alert webhooks it receives, checking each
// one's signature.
type webhookSink struct {
	t      *testing.T
	key    []byte
	mu     sync.Mutex
	bodies []map[string]any
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if got := r.Header.Get(alert.SignatureHeader); got != alert.Sign(s.key, b) {
		s.t.Errorf("webhook signature %q does not match its body", got)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Errorf("webhook body %s: %v", b, err)
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, m)
	s.mu.Unlock()
}

func (s *webhookSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// monitorRows are trips: hour and distance, the deployment's inputs.
func monitorRows(n int, shift float64) [][2]float64 {
	out := make([][2]float64, n)
	for i := range out {
		out[i] = [2]float64{float64(i % 24), 1.5 + float64(i%17)*0.75 + shift}
	}
	return out
}

func TestMonitorOnCollectedData(t *testing.T) {
	smtp := smtptest.Start(t)
	sink := &webhookSink{t: t, key: []byte("hook-secret")}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	dir := t.TempDir()
	pw := writeFile(t, dir, "smtp-password", smtp.Password+"\n")
	var opts serverOptions
	e := newCLIEnvWith(t, func(o *serverOptions) {
		o.smtpHost, o.smtpPort, o.smtpFrom, o.smtpUser, o.smtpPasswordFile = smtp.Host, smtp.Port, "wharf@example.com", smtp.User, pw
		o.smtpStartTLS, o.smtpCAFile = "always", smtp.CAFile
		opts = *o
	})
	e.ok("ml", "workspace", "create", "-n", "mlw")
	if _, err := e.srv.DB.SetSecret(t.Context(), wharf.WorkspaceScope("mlw"), "monitor-hook", sink.key, ""); err != nil {
		t.Fatal(err)
	}
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2.0, 0.5, 1.0), "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: taxi\nauth_mode: key\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")

	// The reference: the trips the model was trained on.
	ref := monitorRows(120, 0)
	createTripsReference(t, e, dir)
	monitorYAML := writeFile(t, dir, "monitor.yml", `name: taxi-monitor
trigger:
  type: recurrence
  frequency: day
  interval: 1
  schedule:
    hours: 3
    minutes: 15
create_monitor:
  compute:
    instance_type: standard_e4s_v3
    runtime_version: "3.4"
  monitoring_target:
    ml_task: regression
    endpoint_deployment_id: azureml:taxi:blue
  monitoring_signals:
    trips-drift:
      type: data_drift
      reference_data:
        input_data:
          path: azureml:trips-reference:1
          type: uri_file
        data_context: training
      features: all_features
  alert_notification:
    emails: [ops@example.com]
    webhooks:
      - url: `+hook.URL+`
        secret: monitor-hook
`)

	// Collection off: the monitor says how to turn it on.
	e.ok("ml", "schedule", "create", "--file", monitorYAML, "-w", "mlw")
	job := waitMonitorJob(t, e, triggerMonitor(t, e))
	if job["status"] != "Failed" || !strings.Contains(fmt.Sprint(job["error"]), "does not collect model_inputs") ||
		!strings.Contains(fmt.Sprint(job["error"]), "enabled: 'True'") {
		t.Fatalf("monitor on a deployment without collection: %v: %v", job["status"], job["error"])
	}

	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n"+
		"data_collector:\n  collections:\n    model_inputs:\n      enabled: 'True'\n    model_outputs:\n      enabled: 'True'\n")
	e.ok("ml", "online-deployment", "update", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw")
	f := &endpointFixture{e: e}
	uri := strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "taxi", "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	key := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))

	// Nothing collected yet: an empty window is reported, not passed.
	job = waitMonitorJob(t, e, triggerMonitor(t, e))
	if job["status"] != "Failed" || !strings.Contains(fmt.Sprint(job["error"]), "holds no rows") {
		t.Fatalf("monitor over an empty window: %v: %v", job["status"], job["error"])
	}

	send := func(rows [][2]float64) {
		for i := 0; i < len(rows); i += 40 {
			body, _ := json.Marshal(map[string]any{"input_data": map[string]any{"columns": []string{"hour", "distance"}, "data": rows[i:min(i+40, len(rows))]}})
			if status, out, _ := f.post(t, uri, key, "", string(body)); status != 200 {
				t.Fatalf("score: %d %s", status, out)
			}
		}
	}
	// Normal traffic, the reference's own trips: no breach, no alert.
	send(ref)
	job = waitMonitorJob(t, e, triggerMonitor(t, e))
	if job["status"] != "Completed" {
		t.Fatalf("monitor over normal traffic: %v: %v", job["status"], job["error"])
	}
	if tags, _ := job["tags"].(map[string]any); tags[wharf.BreachTag] != nil {
		t.Errorf("normal traffic breached: %v", tags[wharf.BreachTag])
	}
	results := monitorResults(t, job)
	if len(results) != 4 || results["distance/normalized_wasserstein_distance"]["passed"] != true ||
		results["hour/normalized_wasserstein_distance"]["passed"] != true {
		t.Fatalf("results over normal traffic: %v", results)
	}
	checkRowCounts(t, results, 120, 120)

	// Drifted traffic: the distances grow, the hours stay as they were.
	send(monitorRows(360, 12))
	breached := triggerMonitor(t, e)
	job = waitMonitorJob(t, e, breached)
	if job["status"] != "Completed" {
		t.Fatalf("monitor over drifted traffic: %v: %v", job["status"], job["error"])
	}
	tags, _ := job["tags"].(map[string]any)
	if msg := fmt.Sprint(tags[wharf.BreachTag]); !strings.Contains(msg, "The signal 'trips-drift' has failed due to one or more features violating metric thresholds.") ||
		!strings.Contains(msg, `"group":"distance"`) || strings.Contains(msg, `"group":"hour"`) {
		t.Errorf("breach tag = %q", msg)
	}
	results = monitorResults(t, job)
	checkRowCounts(t, results, 120, 480)
	d := results["distance/normalized_wasserstein_distance"]
	if d["passed"] != false || d["threshold"] != 0.1 || d["direction"] != wharf.HigherIsWorse || d["value"].(float64) <= 0.1 ||
		results["hour/normalized_wasserstein_distance"]["passed"] != true {
		t.Errorf("results over drifted traffic: %v", results)
	}
	log := e.ok("ml", "job", "stream", "-n", breached, "-w", "mlw")
	if !strings.Contains(log, "serverless Spark standard_e4s_v3") || !strings.Contains(log, "FAIL") {
		t.Errorf("job log:\n%s", log)
	}

	// Exactly one e-mail and one webhook for the breach.
	msgs := smtp.WaitMessages(t, 1, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for sink.count() < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(msgs) != 1 || msgs[0].To[0] != "ops@example.com" || !msgs[0].TLS || !strings.Contains(msgs[0].Data, "trips-drift") ||
		!strings.Contains(msgs[0].Data, "distance") {
		t.Fatalf("e-mails = %+v", msgs)
	}
	if sink.count() != 1 || sink.bodies[0]["signal"] != "trips-drift" || sink.bodies[0]["job"] != breached {
		t.Fatalf("webhooks = %v", sink.bodies)
	}

	// The history lists every run's results, signal by signal.
	var hist struct {
		Runs []struct {
			Job     string                `json:"job"`
			Results []wharf.MonitorResult `json:"results"`
		} `json:"runs"`
		Alerts     []wharf.MonitorAlert  `json:"alerts"`
		Deliveries []wharf.AlertDelivery `json:"deliveries"`
	}
	c := ownerClient(t, opts.dataDir, e.srv.HTTP.URL)
	if err := c.Do(t.Context(), "GET", "/api/v1/workspaces/mlw/schedules/taxi-monitor/results?signal=trips-drift", nil, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Runs) != 2 || hist.Runs[0].Job != breached || len(hist.Runs[0].Results) != 4 || len(hist.Alerts) != 2 || len(hist.Deliveries) != 2 {
		t.Errorf("history = %+v", hist)
	}
	if i := slices.IndexFunc(hist.Runs[0].Results, func(r wharf.MonitorResult) bool { return r.Metric == "TargetRowCount" }); i < 0 ||
		hist.Runs[0].Results[i].Value != 480 {
		t.Errorf("the history's production row count: %+v", hist.Runs[0].Results)
	}
	if v := metricValue(t, e, `wharf_monitor_rows{data="production",monitor="taxi-monitor",signal="trips-drift",workspace="mlw"}`); v != 480 {
		t.Errorf("wharf_monitor_rows of the production data = %g, want 480", v)
	}
	show := e.ok("ml", "schedule", "show", "-n", "taxi-monitor", "-w", "mlw")
	if !strings.Contains(show, `"monitor_results"`) || !strings.Contains(show, "normalized_wasserstein_distance") {
		t.Errorf("schedule show:\n%s", show)
	}

	// A server that stops while the breached run is finishing runs it
	// again when it is back: nothing is recorded or sent twice.
	if _, err := e.srv.DB.UpdateJob(t.Context(), "mlw", breached, func(j *wharf.Job) error {
		j.Status, j.EndedAt = wharf.JobRunning, nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	m, err := startServer(context.Background(), opts, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e.srv = m
	t.Setenv("WHARF_URL", m.HTTP.URL)
	job = waitMonitorJob(t, e, breached)
	if job["status"] != "Completed" || len(monitorResults(t, job)) != 4 {
		t.Fatalf("re-run after restart: %v: %v", job["status"], job["error"])
	}
	if err := (&alert.Dispatcher{Store: m.DB}).DeliverDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(smtp.Messages(t)); n != 1 {
		t.Errorf("e-mails after restart = %d, want 1", n)
	}
	if n := sink.count(); n != 1 {
		t.Errorf("webhooks after restart = %d, want 1", n)
	}
	os.Remove(pw)
}

// tripsCSV is monitorRows(n, 0) as CSV.
func tripsCSV(n int) string {
	var csv strings.Builder
	csv.WriteString("hour,distance\n")
	for _, r := range monitorRows(n, 0) {
		fmt.Fprintf(&csv, "%g,%g\n", r[0], r[1])
	}
	return csv.String()
}

// createTripsReference registers 120 trips as the data asset
// trips-reference:1, a monitor's reference.
func createTripsReference(t *testing.T, e *cliEnv, dir string) {
	t.Helper()
	writeFile(t, dir, "ref.csv", tripsCSV(120))
	writeFile(t, dir, "ref.yml", "name: trips-reference\nversion: 1\ntype: uri_file\npath: ./ref.csv\n")
	e.ok("ml", "data", "create", "-f", filepath.Join(dir, "ref.yml"), "-w", "mlw")
}

// checkRowCounts checks a monitor job's row counts, as Azure names them:
// the reference's and the production window's.
func checkRowCounts(t *testing.T, results map[string]map[string]any, reference, production float64) {
	t.Helper()
	b, p := results["/BaselineRowCount"], results["/TargetRowCount"]
	if b == nil || p == nil || b["value"] != reference || p["value"] != production || b["passed"] != true || p["passed"] != true {
		t.Errorf("row counts: reference %v, production %v; want %g and %g", b, p, reference, production)
	}
}

// triggerMonitor fires the monitor once and returns its job's name.
func triggerMonitor(t *testing.T, e *cliEnv) string {
	t.Helper()
	return strings.TrimSpace(e.ok("ml", "schedule", "trigger", "-n", "taxi-monitor", "-w", "mlw", "--query", "name", "-o", "tsv"))
}

// fireMonitor fires the monitor once and waits for its job, which must
// complete; it returns the job as job show prints it, its results and its
// log.
func fireMonitor(t *testing.T, e *cliEnv, what string) (map[string]any, map[string]map[string]any, string) {
	t.Helper()
	name := triggerMonitor(t, e)
	job := waitMonitorJob(t, e, name)
	log := e.ok("ml", "job", "stream", "-n", name, "-w", "mlw")
	if job["status"] != "Completed" {
		t.Fatalf("%s: %v: %v\n%s", what, job["status"], job["error"], log)
	}
	return job, monitorResults(t, job), log
}

// waitMonitorJob waits for a monitor job to end and returns it as job
// show prints it.
func waitMonitorJob(t *testing.T, e *cliEnv, name string) map[string]any {
	t.Helper()
	// Generous: a monitor with feature importances runs steps of its
	// own, on a machine the other tests load.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var j map[string]any
		if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", name, "-w", "mlw")), &j); err != nil {
			t.Fatal(err)
		}
		if s, _ := j["status"].(string); wharf.JobTerminal(s) || time.Now().After(deadline) {
			return j
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// monitorResults indexes a monitor job's results by feature/metric.
func monitorResults(t *testing.T, job map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	list, _ := job["monitor_results"].([]any)
	for _, x := range list {
		r := x.(map[string]any)
		out[fmt.Sprint(r["feature"])+"/"+fmt.Sprint(r["metric"])] = r
	}
	return out
}

// TestMonitorCustomSignalAndPreprocessing: a custom signal's component and
// a pre-processing component run as ordinary sandboxed pipeline steps of
// their own, with the inputs of Azure ML's contracts; the custom signal's
// signal_metrics are the signal's results.
func TestMonitorCustomSignalAndPreprocessing(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	raw := filepath.Join(dir, "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, raw, "trips.csv", tripsCSV(60))
	writeFile(t, dir, "raw.yml", "name: raw-trips\nversion: 1\ntype: uri_folder\npath: ./raw\n")
	e.ok("ml", "data", "create", "-f", filepath.Join(dir, "raw.yml"), "-w", "mlw")
	writeFile(t, dir, "preprocess.yml", `type: command
name: trips_preprocessing
version: 1
inputs:
  data_window_start: {type: string}
  data_window_end: {type: string}
  input_data: {type: uri_folder}
outputs:
  preprocessed_data: {type: mltable}
environment: {image: python:3.11}
command: cp ${{inputs.input_data}}/trips.csv ${{outputs.preprocessed_data}}/trips.csv && echo window ${{inputs.data_window_start}} ${{inputs.data_window_end}}
`)
	writeFile(t, dir, "signal.yml", `type: command
name: trips_spread
version: 1
inputs:
  production_data: {type: mltable}
  std_deviation_threshold: {type: number}
outputs:
  signal_metrics: {type: mltable}
environment: {image: python:3.11}
command: >-
  test -f ${{inputs.production_data}}/trips.csv &&
  echo group,metric_value,metric_name,threshold_value > ${{outputs.signal_metrics}}/metrics.csv &&
  echo distance,5,std_deviation,${{inputs.std_deviation_threshold}} >> ${{outputs.signal_metrics}}/metrics.csv
`)
	// Predictions and their ground truth, joined by correlationid: every
	// fare predicted one dollar too high.
	var preds, truth strings.Builder
	preds.WriteString("correlationid,prediction\n")
	truth.WriteString("correlationid,fare\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&preds, "r%d,%d\n", i, 10+i+1)
		fmt.Fprintf(&truth, "r%d,%d\n", 29-i, 10+29-i)
	}
	writeFile(t, dir, "preds.csv", preds.String())
	writeFile(t, dir, "truth.csv", truth.String())
	writeFile(t, dir, "preds.yml", "name: fare-predictions\nversion: 1\ntype: uri_file\npath: ./preds.csv\n")
	writeFile(t, dir, "truth.yml", "name: fare-truth\nversion: 1\ntype: uri_file\npath: ./truth.csv\n")
	e.ok("ml", "data", "create", "-f", filepath.Join(dir, "preds.yml"), "-w", "mlw")
	e.ok("ml", "data", "create", "-f", filepath.Join(dir, "truth.yml"), "-w", "mlw")
	e.ok("ml", "component", "create", "--file", filepath.Join(dir, "preprocess.yml"), "-w", "mlw")
	e.ok("ml", "component", "create", "--file", filepath.Join(dir, "signal.yml"), "-w", "mlw")
	monitorYAML := writeFile(t, dir, "monitor.yml", `name: taxi-monitor
trigger: {type: cron, expression: "15 3 * * *"}
create_monitor:
  compute: {instance_type: standard_e4s_v3}
  monitoring_target: {ml_task: regression}
  monitoring_signals:
    fares:
      type: model_performance
      production_data:
        input_data: {path: azureml:fare-predictions:1, type: uri_file}
        data_context: model_outputs
      reference_data:
        input_data: {path: azureml:fare-truth:1, type: uri_file}
        data_context: ground_truth
        data_column_names: {target_column: fare}
      metric_thresholds:
        regression: {rmse: 0.5, mae: 2}
    spread:
      type: custom
      component_id: azureml:trips_spread:1
      input_data:
        production_data:
          input_data: {path: azureml:raw-trips:1, type: uri_folder}
          data_context: test
          pre_processing_component: azureml:trips_preprocessing:1
      metric_thresholds:
        - metric_name: std_deviation
          threshold: 2
    drift:
      type: data_drift
      production_data:
        input_data: {path: azureml:raw-trips:1, type: uri_folder}
        data_context: model_inputs
        pre_processing_component: azureml:trips_preprocessing:1
      reference_data:
        input_data: {path: azureml:raw-trips:1, type: uri_folder}
        data_context: training
`)
	e.ok("ml", "schedule", "create", "--file", monitorYAML, "-w", "mlw")
	job, results, log := fireMonitor(t, e, "monitor")
	spread := results["distance/std_deviation"]
	if spread == nil || spread["value"] != 5.0 || spread["threshold"] != 2.0 || spread["passed"] != false || spread["direction"] != wharf.HigherIsWorse {
		t.Errorf("custom signal results = %v", results)
	}
	if d := results["distance/normalized_wasserstein_distance"]; d == nil || d["passed"] != true {
		t.Errorf("drift over pre-processed data = %v", results)
	}
	// Model performance over the joined rows: every error is 1.
	if r, m := results["/rmse"], results["/mae"]; r == nil || m == nil || r["value"] != 1.0 || r["passed"] != false || m["value"] != 1.0 || m["passed"] != true {
		t.Errorf("model performance results = %v", results)
	}
	tags, _ := job["tags"].(map[string]any)
	if !strings.Contains(fmt.Sprint(tags[wharf.BreachTag]), "The signal 'spread' has failed") {
		t.Errorf("tags = %v", tags)
	}
	// The components ran as pipelines of their own, owned by the
	// monitor's creator and tagged with the monitor job.
	if !strings.Contains(log, "pre-processing azureml:trips_preprocessing:1: job ") || !strings.Contains(log, "custom signal spread: job ") {
		t.Errorf("job log:\n%s", log)
	}
}
