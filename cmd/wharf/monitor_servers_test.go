package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/storagetest"
)

// TestMonitorReadsTheDataOfEveryServer: two servers over one PostgreSQL
// database and one Azure Blob container (Azurite) answer a deployment's
// requests; each files the data it collects under a name of its own, and
// a monitor, wherever it runs, counts every request of both.
func TestMonitorReadsTheDataOfEveryServer(t *testing.T) {
	es := startObjectStorage(t, "wharf")
	t.Setenv("AZURE_STORAGE_KEY", storagetest.AzuriteKey)
	_, servers := startSharedServers(t, 2, "--warm-python=false",
		"--artifacts", "azblob://"+storagetest.AzuriteAccount+"/wharf/store?endpoint="+es.azurite)
	cliAgainst(t, servers[0].dataDir, servers[0].base)
	e := &cliEnv{t: t}
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2.0, 0.5, 1.0), "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: taxi\nauth_mode: key\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n"+
		"data_collector:\n  collections:\n    model_inputs:\n      enabled: 'True'\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	createTripsReference(t, e, dir)
	writeFile(t, dir, "monitor.yml", `name: taxi-monitor
trigger: {type: recurrence, frequency: day, interval: 1}
create_monitor:
  compute: {instance_type: standard_e4s_v3}
  monitoring_target: {ml_task: regression, endpoint_deployment_id: "azureml:taxi:blue"}
  monitoring_signals:
    trips-drift:
      type: data_drift
      reference_data:
        input_data: {path: azureml:trips-reference:1, type: uri_file}
        data_context: training
`)
	e.ok("ml", "schedule", "create", "--file", filepath.Join(dir, "monitor.yml"), "-w", "mlw")

	uri := strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "taxi", "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	key := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))
	f := &endpointFixture{e: e}
	rows := monitorRows(150, 0)
	for i, r := range rows {
		// One request of one row each, alternately through each
		// server, a third of them through the first.
		s := servers[min(i%3, 1)]
		body, _ := json.Marshal(map[string]any{"input_data": map[string]any{"columns": []string{"hour", "distance"}, "data": [][2]float64{r}}})
		if status, out, _ := f.post(t, strings.Replace(uri, servers[0].base, s.base, 1), key, "", string(body)); status != 200 {
			t.Fatalf("score through %s: %d %s", s.base, status, out)
		}
	}
	// The monitor's server files its own data as it fires; the other
	// files its own every few seconds: fire until every request is in.
	var counted any
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, results, log := fireMonitor(t, e, "monitor")
		counted = results["/TargetRowCount"]["value"]
		if counted == float64(len(rows)) || time.Now().After(deadline) {
			if counted != float64(len(rows)) {
				t.Fatalf("the monitor counted %v production rows, want %d (every request through either server)\n%s", counted, len(rows), log)
			}
			break
		}
		time.Sleep(time.Second)
	}
}
