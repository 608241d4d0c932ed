package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOnlineEndpointControlPlane(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	model := nativeModel(t, 2.0, 0.5, 1.0)
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", model, "-w", "mlw")
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 3.0, 0.0, 0.0), "-w", "mlw")
	writeFile(t, dir, "online-endpoint.yml", `$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: taxi-fare-online
description: Taxi Online Endpoint
auth_mode: key
`)
	writeFile(t, dir, "online-deployment.yml", `$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: taxi-fare-online
model: azureml:taxi-model@latest
instance_type: Standard_DS2_v2
instance_count: 1
egress_public_network_access: enabled
request_settings:
  request_timeout_ms: 3000
  max_concurrent_requests_per_instance: 2
`)
	// The endpoint's name comes from --name, as the MLOps pipelines do.
	out := e.ok("ml", "online-endpoint", "create", "--name", "taxi-online-dev", "-f", filepath.Join(dir, "online-endpoint.yml"), "-w", "mlw")
	var ep struct {
		Name, AuthMode, ScoringURI string `json:"-"`
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	ep.Name, _ = raw["name"].(string)
	ep.ScoringURI, _ = raw["scoring_uri"].(string)
	if ep.Name != "taxi-online-dev" || !strings.HasSuffix(ep.ScoringURI, "/endpoints/mlw/taxi-online-dev/score") || raw["auth_mode"] != "key" {
		t.Fatalf("endpoint %s", out)
	}
	k1 := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi-online-dev", "-w", "mlw", "-o", "tsv", "--query", "primaryKey"))
	k2 := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi-online-dev", "-w", "mlw", "-o", "tsv", "--query", "secondaryKey"))
	if len(k1) < 40 || k1 == k2 {
		t.Fatalf("keys %q %q", k1, k2)
	}
	e.ok("ml", "online-endpoint", "regenerate-keys", "-n", "taxi-online-dev", "--key-type", "primary", "-w", "mlw")
	if k := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi-online-dev", "-w", "mlw", "-o", "tsv", "--query", "primaryKey")); k == k1 {
		t.Error("regenerate-keys kept the primary key")
	} else if k2b := strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi-online-dev", "-w", "mlw", "-o", "tsv", "--query", "secondaryKey")); k2b != k2 {
		t.Error("regenerating the primary key changed the secondary")
	}

	// Traffic to a deployment that does not exist is refused.
	if _, errs, code := e.wharf("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--traffic", "blue=100", "-w", "mlw"); code == 0 || !strings.Contains(errs, "blue") {
		t.Errorf("traffic to a missing deployment: exit %d, %s", code, errs)
	}
	dep := e.ok("ml", "online-deployment", "create", "--name", "blue", "--endpoint", "taxi-online-dev", "-f", filepath.Join(dir, "online-deployment.yml"), "-w", "mlw")
	if !strings.Contains(dep, `"model": "taxi-model:2"`) || !strings.Contains(dep, `"max_concurrent_requests_per_instance": 2`) {
		t.Errorf("deployment pins taxi-model@latest to version 2 and keeps its settings:\n%s", dep)
	}
	e.ok("ml", "online-deployment", "create", "--name", "green", "--endpoint", "taxi-online-dev", "-f", filepath.Join(dir, "online-deployment.yml"),
		"--set", "model=azureml:taxi-model:1", "-w", "mlw")
	e.ok("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--traffic", "blue=90 green=10", "-w", "mlw")
	if got := strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "taxi-online-dev", "-w", "mlw", "--query", "traffic.green", "-o", "tsv")); got != "10" {
		t.Errorf("green traffic %q", got)
	}
	for _, bad := range []string{"blue=90 green=20", "blue=x"} {
		if _, _, code := e.wharf("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--traffic", bad, "-w", "mlw"); code == 0 {
			t.Errorf("traffic %q accepted", bad)
		}
	}
	if _, _, code := e.wharf("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--traffic", "blue=100 green=0", "--mirror-traffic", "blue=10", "-w", "mlw"); code == 0 {
		t.Error("mirroring to the live deployment accepted")
	}
	// A deployment with traffic cannot be deleted.
	if _, errs, code := e.wharf("ml", "online-deployment", "delete", "-n", "green", "-e", "taxi-online-dev", "-w", "mlw", "--yes"); code == 0 || !strings.Contains(errs, "traffic") {
		t.Errorf("deleting a deployment with traffic: exit %d %s", code, errs)
	}
	e.ok("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--traffic", "blue=100 green=0", "--mirror-traffic", "green=10", "-w", "mlw")
	if _, _, code := e.wharf("ml", "online-deployment", "delete", "-n", "green", "-e", "taxi-online-dev", "-w", "mlw", "--yes"); code == 0 {
		t.Error("deleting the mirror target accepted")
	}
	e.ok("ml", "online-endpoint", "update", "-n", "taxi-online-dev", "--mirror-traffic", "green=0", "-w", "mlw")
	e.ok("ml", "online-deployment", "delete", "-n", "green", "-e", "taxi-online-dev", "-w", "mlw", "--yes")
	if names := strings.TrimSpace(e.ok("ml", "online-deployment", "list", "-e", "taxi-online-dev", "-w", "mlw", "--query", "[].name", "-o", "tsv")); names != "blue" {
		t.Errorf("deployments after delete: %q", names)
	}
	if got := strings.TrimSpace(e.ok("ml", "online-endpoint", "list", "-w", "mlw", "-o", "tsv", "--query", "[?name=='taxi-online-dev'][name]")); got != "taxi-online-dev" {
		t.Errorf("az-style existence check: %q", got)
	}
	e.ok("ml", "online-endpoint", "delete", "-n", "taxi-online-dev", "-w", "mlw", "--yes")
	if out, _, code := e.wharf("ml", "online-endpoint", "show", "-n", "taxi-online-dev", "-w", "mlw"); code == 0 || out != "" {
		t.Errorf("deleted endpoint shown: %d %q", code, out)
	}
}

// nativeModel writes a Wharf linear model over columns distance and hour:
// prediction = a*distance + b*hour + c.
func nativeModel(t *testing.T, a, b, c float64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "MLmodel", `flavors:
  wharf_linear:
    data: model.json
signature:
  inputs: '[{"type": "double", "name": "distance", "required": true}, {"type": "double", "name": "hour", "required": true}]'
`)
	writeFile(t, dir, "model.json", fmt.Sprintf(`{"columns": ["distance", "hour"], "coef": [%g, %g], "intercept": %g}`, a, b, c))
	return dir
}

func TestDeploymentWithAnInlineModelPath(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	model := nativeModel(t, 1, 1, 0)
	writeFile(t, dir, "ep.yml", "name: inline-ep\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: inline-ep\nmodel:\n  path: "+model+"\ninstance_count: 1\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	out := e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	if !strings.Contains(out, `"model": "inline-ep-blue-model:1"`) || !strings.Contains(out, `"provisioning_state": "Succeeded"`) {
		t.Fatalf("inline model deployment:\n%s", out)
	}
	req := writeFile(t, dir, "req.json", `{"input_data": [[2, 3]]}`)
	if got := e.ok("ml", "online-endpoint", "invoke", "-n", "inline-ep", "--request-file", req, "-w", "mlw"); !strings.Contains(got, "[5]") {
		t.Errorf("invoke: %s", got)
	}

	// Creating the deployment again with the same files reuses the
	// version; changed files make a new one.
	out = e.ok("ml", "online-deployment", "update", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw")
	if !strings.Contains(out, `"model": "inline-ep-blue-model:1"`) {
		t.Fatalf("same inline model again:\n%s", out)
	}
	if v := e.ok("ml", "model", "list", "--name", "inline-ep-blue-model", "-w", "mlw", "--query", "length(@)", "-o", "tsv"); strings.TrimSpace(v) != "1" {
		t.Fatalf("versions after the same model again: %s", v)
	}
	writeFile(t, model, "model.json", `{"columns": ["distance", "hour"], "coef": [2, 2], "intercept": 0}`)
	out = e.ok("ml", "online-deployment", "update", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw")
	if !strings.Contains(out, `"model": "inline-ep-blue-model:2"`) {
		t.Fatalf("changed inline model:\n%s", out)
	}
	if got := e.ok("ml", "online-endpoint", "invoke", "-n", "inline-ep", "--request-file", req, "-w", "mlw"); !strings.Contains(got, "[10]") {
		t.Errorf("invoke after the model changed: %s", got)
	}

	// A named version is reused when its files are the same, and refused
	// when they are not, since a version never changes.
	writeFile(t, dir, "green.yml", "name: green\nendpoint_name: inline-ep\nmodel:\n  name: fixed\n  version: \"1.2\"\n  path: "+model+"\ninstance_count: 1\n")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "green.yml"), "-w", "mlw")
	out = e.ok("ml", "online-deployment", "update", "-f", filepath.Join(dir, "green.yml"), "-w", "mlw")
	if !strings.Contains(out, `"model": "fixed:1.2"`) {
		t.Fatalf("named inline model again:\n%s", out)
	}
	writeFile(t, model, "model.json", `{"columns": ["distance", "hour"], "coef": [3, 3], "intercept": 0}`)
	if _, errs, code := e.wharf("ml", "online-deployment", "update", "-f", filepath.Join(dir, "green.yml"), "-w", "mlw"); code == 0 || !strings.Contains(errs, "model fixed version 1.2 already exists with other files") {
		t.Fatalf("named inline model with other files: %d %s", code, errs)
	}
}

func TestDeploymentMicroBatchSettingsAreChecked(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	model := nativeModel(t, 1, 1, 0)
	writeFile(t, dir, "ep.yml", "name: mb-ep\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	dep := writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: mb-ep\nmodel:\n  path: "+model+
		"\ninstance_count: 1\nenvironment_variables:\n  WHARF_MICRO_BATCH: sometimes\n")
	_, stderr, code := e.wharf("ml", "online-deployment", "create", "-f", dep, "-w", "mlw")
	if code == 0 || !strings.Contains(stderr, "dep.yml:7") || !strings.Contains(stderr, "environment_variables.WHARF_MICRO_BATCH") ||
		!strings.Contains(stderr, `"sometimes" is neither on nor off`) {
		t.Errorf("exit %d, stderr %s; want the file, line 7 and the field", code, stderr)
	}
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: mb-ep\nmodel:\n  path: "+model+
		"\ninstance_count: 1\nenvironment_variables:\n  WHARF_MICRO_BATCH: \"off\"\n  WHARF_MICRO_BATCH_MAX_WAIT_MS: \"0.5\"\n")
	e.ok("ml", "online-deployment", "create", "-f", dep, "-w", "mlw")
}
