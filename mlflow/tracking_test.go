package mlflow_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// TestMLflowExperimentFlow follows mlflow.set_experiment: get-by-name (404
// the first time), create, get; then search, rename, tag, delete, restore.
func TestMLflowExperimentFlow(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner

	c.fails("GET", api("experiments/get-by-name?experiment_name=e1"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	created := c.ok("POST", api("experiments/create"), map[string]any{
		"name": "e1", "tags": []map[string]string{{"key": "team", "value": "vision"}},
	})
	id := str(t, created, "experiment_id")
	if id == "" || id == "0" {
		t.Fatalf("experiment_id = %q", id)
	}
	c.fails("POST", api("experiments/create"), map[string]any{"name": "e1"}, 400, "RESOURCE_ALREADY_EXISTS")

	got := obj(t, c.ok("GET", api("experiments/get-by-name?experiment_name=e1"), nil), "experiment")
	if str(t, got, "experiment_id") != id || str(t, got, "name") != "e1" || str(t, got, "lifecycle_stage") != "active" {
		t.Fatalf("get-by-name: %v", got)
	}
	if loc := str(t, got, "artifact_location"); loc != "mlflow-artifacts:/"+id {
		t.Errorf("artifact_location = %q", loc)
	}
	num(t, got, "creation_time")
	num(t, got, "last_update_time")
	if tags := kvs(t, got, "tags"); tags["team"] != "vision" {
		t.Errorf("tags = %v", tags)
	}
	byID := obj(t, c.ok("GET", api("experiments/get?experiment_id="+id), nil), "experiment")
	if str(t, byID, "name") != "e1" {
		t.Fatalf("get: %v", byID)
	}
	// Experiment "0" exists in every workspace.
	if def := obj(t, c.ok("GET", api("experiments/get?experiment_id=0"), nil), "experiment"); str(t, def, "name") != "Default" {
		t.Errorf("experiment 0: %v", def)
	}

	// search, POST and GET.
	res := c.ok("POST", api("experiments/search"), map[string]any{"filter": "name = 'e1'", "max_results": 10})
	if es := list(t, res, "experiments"); len(es) != 1 || str(t, es[0].(map[string]any), "experiment_id") != id {
		t.Fatalf("search POST: %v", res)
	}
	res = c.ok("GET", api("experiments/search?max_results=10&filter="+url.QueryEscape("name LIKE 'e%'")+"&view_type=ACTIVE_ONLY"), nil)
	if es := list(t, res, "experiments"); len(es) != 1 {
		t.Fatalf("search GET: %v", res)
	}

	c.ok("POST", api("experiments/update"), map[string]any{"experiment_id": id, "new_name": "e2"})
	c.ok("POST", api("experiments/set-experiment-tag"), map[string]any{"experiment_id": id, "key": "k", "value": "v"})
	got = obj(t, c.ok("GET", api("experiments/get?experiment_id="+id), nil), "experiment")
	if str(t, got, "name") != "e2" || kvs(t, got, "tags")["k"] != "v" {
		t.Fatalf("after update and tag: %v", got)
	}
	c.ok("POST", api("experiments/delete-experiment-tag"), map[string]any{"experiment_id": id, "key": "k"})
	c.ok("POST", api("experiments/delete"), map[string]any{"experiment_id": id})
	res = c.ok("POST", api("experiments/search"), map[string]any{"view_type": "DELETED_ONLY"})
	if es := list(t, res, "experiments"); len(es) != 1 || str(t, es[0].(map[string]any), "lifecycle_stage") != "deleted" {
		t.Fatalf("deleted search: %v", res)
	}
	c.ok("POST", api("experiments/restore"), map[string]any{"experiment_id": id})
	got = obj(t, c.ok("GET", api("experiments/get?experiment_id="+id), nil), "experiment")
	if str(t, got, "lifecycle_stage") != "active" {
		t.Fatalf("restore: %v", got)
	}
	// Responses without fields are the empty object, never an empty body.
	if r := c.do("POST", api("experiments/set-experiment-tag"), map[string]any{"experiment_id": id, "key": "k", "value": ""}); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("empty response = %q, want {}", r.raw)
	}
}

// logBatchBody is what the Python client sends for log_batch: NaN and the
// infinities as bare tokens, run_id and run_uuid both.
func logBatchBody(runID string) string {
	return fmt.Sprintf(`{"run_id": %q, "run_uuid": %q,
		"metrics": [
			{"key": "acc", "value": 0.5, "timestamp": 1000, "step": 0},
			{"key": "acc", "value": 0.75, "timestamp": 2000, "step": 1},
			{"key": "loss", "value": NaN, "timestamp": 1000, "step": 0},
			{"key": "grad", "value": -Infinity, "timestamp": 1000, "step": 0},
			{"key": "lr", "value": "0.01", "timestamp": "1000", "step": "0"}
		],
		"params": [{"key": "alpha", "value": "0.5"}, {"key": "depth", "value": "3"}],
		"tags": [{"key": "stage", "value": "dev"}, {"key": "stage", "value": "prod"}],
		"unknown_field": {"ignored": true}}`, runID, runID)
}

func TestMLflowRunFlow(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	expID := str(t, c.ok("POST", api("experiments/create"), map[string]any{"name": "runs"}), "experiment_id")

	created := obj(t, c.ok("POST", api("runs/create"), map[string]any{
		"experiment_id": expID, "user_id": "ana", "start_time": 1718000000000, "run_name": "bold-cat",
		"tags": []map[string]string{{"key": "mlflow.user", "value": "ana"}, {"key": "mlflow.source.type", "value": "LOCAL"}},
	}), "run")
	info := obj(t, created, "info")
	runID := str(t, info, "run_id")
	if len(runID) != 32 {
		t.Fatalf("run_id %q is not 32 hex", runID)
	}

	c.ok("POST", api("runs/log-batch"), logBatchBody(runID))
	c.ok("POST", api("runs/log-metric"), map[string]any{"run_uuid": runID, "key": "acc", "value": 0.25, "timestamp": 500, "step": 0})
	c.ok("POST", api("runs/log-parameter"), map[string]any{"run_id": runID, "run_uuid": runID, "key": "alpha", "value": "0.5"}) // same value: a no-op
	c.ok("POST", api("runs/set-tag"), map[string]any{"run_id": runID, "key": "gone", "value": "x"})
	c.ok("POST", api("runs/delete-tag"), map[string]any{"run_id": runID, "key": "gone"})
	c.ok("POST", api("runs/log-inputs"), map[string]any{"run_id": runID, "datasets": []any{map[string]any{
		"tags":    []map[string]string{{"key": "mlflow.data.context", "value": "training"}},
		"dataset": map[string]any{"name": "iris", "digest": "abc123", "source_type": "local", "source": `{"uri":"x"}`, "schema": "{}"},
	}}})
	c.ok("POST", api("runs/log-model"), map[string]any{"run_id": runID, "model_json": `{"artifact_path":"model"}`})

	run := obj(t, c.ok("GET", api("runs/get?run_id="+runID), nil), "run")
	info = obj(t, run, "info")
	if str(t, info, "run_id") != runID || str(t, info, "run_uuid") != runID {
		t.Errorf("run_id/run_uuid: %v", info)
	}
	if str(t, info, "experiment_id") != expID {
		t.Errorf("experiment_id: %v", info["experiment_id"])
	}
	if str(t, info, "run_name") != "bold-cat" || str(t, info, "status") != "RUNNING" || str(t, info, "lifecycle_stage") != "active" {
		t.Errorf("info: %v", info)
	}
	if n := num(t, info, "start_time"); n.String() != "1718000000000" {
		t.Errorf("start_time = %s", n)
	}
	if _, ok := info["end_time"]; ok {
		t.Errorf("end_time present on a running run: %v", info)
	}
	if uri := str(t, info, "artifact_uri"); uri != "mlflow-artifacts:/"+expID+"/"+runID+"/artifacts" {
		t.Errorf("artifact_uri = %q", uri)
	}
	if u := str(t, info, "user_id"); u != "app-owner" {
		t.Errorf("user_id = %q, want the caller's principal", u)
	}
	data := obj(t, run, "data")
	metrics := map[string]map[string]any{}
	for _, m := range list(t, data, "metrics") {
		mm := m.(map[string]any)
		metrics[str(t, mm, "key")] = mm
	}
	if len(metrics) != 4 {
		t.Fatalf("metrics: %v", data["metrics"])
	}
	// Latest value per key: acc's step 1 beats the later-logged step 0.
	if v := num(t, metrics["acc"], "value"); v.String() != "0.75" {
		t.Errorf("latest acc = %s, want 0.75", v)
	}
	if n := num(t, metrics["acc"], "step"); n.String() != "1" {
		t.Errorf("acc step = %s", n)
	}
	if n := num(t, metrics["acc"], "timestamp"); n.String() != "2000" {
		t.Errorf("acc timestamp = %s", n)
	}
	if v := metrics["loss"]["value"]; v != "NaN" {
		t.Errorf("NaN metric = %#v, want \"NaN\"", v)
	}
	if v := metrics["grad"]["value"]; v != "-Infinity" {
		t.Errorf("-Infinity metric = %#v", v)
	}
	if v := num(t, metrics["lr"], "value"); v.String() != "0.01" {
		t.Errorf("lr = %s", v)
	}
	if p := kvs(t, data, "params"); len(p) != 2 || p["alpha"] != "0.5" || p["depth"] != "3" {
		t.Errorf("params = %v", p)
	}
	tags := kvs(t, data, "tags")
	if tags["stage"] != "prod" || tags["mlflow.user"] != "ana" || tags["mlflow.runName"] != "bold-cat" {
		t.Errorf("tags = %v", tags)
	}
	if _, ok := tags["gone"]; ok {
		t.Errorf("deleted tag still present")
	}
	inputs := list(t, obj(t, run, "inputs"), "dataset_inputs")
	if len(inputs) != 1 {
		t.Fatalf("inputs: %v", run["inputs"])
	}
	ds := obj(t, inputs[0], "dataset")
	if str(t, ds, "name") != "iris" || str(t, ds, "digest") != "abc123" || kvs(t, inputs[0].(map[string]any), "tags")["mlflow.data.context"] != "training" {
		t.Errorf("dataset input: %v", inputs[0])
	}

	// get-history returns every value, NaN included.
	hist := c.ok("GET", api("metrics/get-history?run_id="+runID+"&run_uuid="+runID+"&metric_key=acc"), nil)
	if ms := list(t, hist, "metrics"); len(ms) != 3 {
		t.Fatalf("acc history: %v", hist)
	}
	hist = c.ok("GET", api("metrics/get-history?run_uuid="+runID+"&metric_key=loss"), nil)
	if ms := list(t, hist, "metrics"); len(ms) != 1 || ms[0].(map[string]any)["value"] != "NaN" {
		t.Fatalf("loss history: %v", hist)
	}

	// outputs (MLflow 3) show up on the run.
	model := obj(t, c.ok("POST", api("logged-models"), map[string]any{"experiment_id": expID, "name": "model", "source_run_id": runID}), "model", "info")
	c.ok("POST", api("runs/outputs"), map[string]any{"run_id": runID, "models": []any{map[string]any{"model_id": str(t, model, "model_id"), "step": 0}}})
	run = obj(t, c.ok("GET", api("runs/get?run_uuid="+runID), nil), "run")
	if outs := list(t, obj(t, run, "outputs"), "model_outputs"); len(outs) != 1 || str(t, outs[0].(map[string]any), "model_id") != str(t, model, "model_id") {
		t.Errorf("outputs: %v", run["outputs"])
	}

	ri := obj(t, c.ok("POST", api("runs/update"), map[string]any{"run_id": runID, "run_uuid": runID, "status": "FINISHED", "end_time": 1718000005000}), "run_info")
	if str(t, ri, "status") != "FINISHED" || num(t, ri, "end_time").String() != "1718000005000" {
		t.Errorf("update: %v", ri)
	}
}

func TestMLflowSearchRuns(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	expID := str(t, c.ok("POST", api("experiments/create"), map[string]any{"name": "search"}), "experiment_id")
	ids := map[string]string{}
	for i, acc := range []float64{0.9, 0.4, 0.7, 0.8} {
		name := fmt.Sprintf("r%d", i)
		run := obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": expID, "run_name": name, "start_time": 1000 + i}), "run", "info")
		id := str(t, run, "run_id")
		ids[name] = id
		c.ok("POST", api("runs/log-batch"), map[string]any{"run_id": id,
			"metrics": []any{map[string]any{"key": "acc", "value": acc, "timestamp": 1, "step": 0}},
			"params":  []any{map[string]any{"key": "model", "value": map[bool]string{true: "cnn", false: "mlp"}[i%2 == 0]}},
		})
	}
	// Filter, order and page: cnn runs with acc > 0.5, best first, one per page.
	req := map[string]any{
		"experiment_ids": []string{expID},
		"filter":         "params.model = 'cnn' and metrics.acc > 0.5",
		"order_by":       []string{"metrics.acc DESC"},
		"max_results":    1,
		"run_view_type":  "ACTIVE_ONLY",
	}
	var order []string
	for range 5 {
		res := c.ok("POST", api("runs/search"), req)
		for _, r := range list(t, res, "runs") {
			order = append(order, str(t, obj(t, r, "info"), "run_name"))
		}
		tok, _ := res["next_page_token"].(string)
		if tok == "" {
			break
		}
		req["page_token"] = tok
	}
	if strings.Join(order, ",") != "r0,r2" {
		t.Fatalf("search order = %v, want r0,r2", order)
	}
	// Search results carry the same shape as runs/get.
	res := c.ok("POST", api("runs/search"), map[string]any{"experiment_ids": []string{expID}, "filter": "attributes.run_name = 'r3'"})
	runs := list(t, res, "runs")
	if len(runs) != 1 {
		t.Fatalf("r3: %v", res)
	}
	info := obj(t, runs[0], "info")
	if str(t, info, "run_id") != ids["r3"] || str(t, info, "run_uuid") != ids["r3"] || str(t, info, "experiment_id") != expID {
		t.Errorf("search info: %v", info)
	}
	if ms := list(t, obj(t, runs[0], "data"), "metrics"); len(ms) != 1 || num(t, ms[0].(map[string]any), "value").String() != "0.8" {
		t.Errorf("search metrics: %v", ms)
	}
	// Default order: start_time DESC.
	res = c.ok("POST", api("runs/search"), map[string]any{"experiment_ids": []string{expID}})
	order = nil
	for _, r := range list(t, res, "runs") {
		order = append(order, str(t, obj(t, r, "info"), "run_name"))
	}
	if strings.Join(order, ",") != "r3,r2,r1,r0" {
		t.Errorf("default order = %v", order)
	}
	c.fails("POST", api("runs/search"), map[string]any{"experiment_ids": []string{expID}, "filter": "metrics.acc >"}, 400, "INVALID_PARAMETER_VALUE")
	c.fails("POST", api("runs/search"), map[string]any{"experiment_ids": []string{expID}, "max_results": 50001}, 400, "INVALID_PARAMETER_VALUE")
}

// TestMLflowParamConflict: a param is written once; a batch that would
// change one is refused whole.
func TestMLflowParamConflict(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	runID := str(t, obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")
	c.ok("POST", api("runs/log-parameter"), map[string]any{"run_id": runID, "key": "lr", "value": "0.1"})
	c.fails("POST", api("runs/log-parameter"), map[string]any{"run_id": runID, "key": "lr", "value": "0.2"}, 400, "INVALID_PARAMETER_VALUE")
	c.fails("POST", api("runs/log-batch"), map[string]any{"run_id": runID,
		"params":  []any{map[string]any{"key": "fresh", "value": "1"}, map[string]any{"key": "lr", "value": "0.3"}},
		"metrics": []any{map[string]any{"key": "m", "value": 1, "timestamp": 1}},
		"tags":    []any{map[string]any{"key": "t", "value": "1"}},
	}, 400, "INVALID_PARAMETER_VALUE")
	// The same key twice with two values in one batch.
	c.fails("POST", api("runs/log-batch"), map[string]any{"run_id": runID,
		"params": []any{map[string]any{"key": "x", "value": "1"}, map[string]any{"key": "x", "value": "2"}},
	}, 400, "INVALID_PARAMETER_VALUE")

	data := obj(t, c.ok("GET", api("runs/get?run_id="+runID), nil), "run", "data")
	if p := kvs(t, data, "params"); len(p) != 1 || p["lr"] != "0.1" {
		t.Errorf("params after refused batches = %v", p)
	}
	if ms := list(t, data, "metrics"); len(ms) != 0 {
		t.Errorf("metrics of a refused batch were written: %v", ms)
	}
	if tags := kvs(t, data, "tags"); tags["t"] != "" {
		t.Errorf("tags of a refused batch were written: %v", tags)
	}
}

func TestMLflowMissingRun(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	missing := strings.Repeat("ab", 16)
	c.fails("GET", api("runs/get?run_id="+missing), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("POST", api("runs/log-metric"), map[string]any{"run_id": missing, "key": "k", "value": 1, "timestamp": 1}, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("POST", api("runs/update"), map[string]any{"run_id": missing, "status": "FINISHED"}, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("GET", api("metrics/get-history?run_id="+missing+"&metric_key=k"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("POST", api("runs/create"), map[string]any{"experiment_id": "999"}, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("GET", api("experiments/get?experiment_id=999"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}

// TestMLflowBadRequests: malformed JSON, wrong types and missing fields are
// 400 INVALID_PARAMETER_VALUE naming the field, and change nothing.
func TestMLflowBadRequests(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	runID := str(t, obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")

	cases := []struct {
		path, body, mention string
	}{
		{"experiments/create", `{"name": "x"`, "JSON"},
		{"experiments/create", `{"name": 5}`, "'name'"},
		{"experiments/create", `{}`, "Missing value for required parameter 'name'"},
		{"experiments/create", ``, "Missing value for required parameter 'name'"},
		{"experiments/create", `[1,2]`, "object"},
		{"experiments/create", `{"name": "y", "tags": {"k": "v"}}`, "'tags'"},
		{"experiments/delete", `{}`, "Missing value for required parameter 'experiment_id'"},
		{"experiments/create", `{"name": "z", "artifact_location": "runs:/abc/x"}`, "runs:/"},
		{"experiments/create", `{"name": "z", "artifact_location": "mlflow-artifacts:/../other"}`, "artifact location"},
		{"runs/log-metric", `{"run_id": "` + runID + `", "key": "k", "value": "abc", "timestamp": 1}`, "'value'"},
		{"runs/log-metric", `{"run_id": "` + runID + `", "key": "k", "value": 1, "timestamp": "soon"}`, "'timestamp'"},
		{"runs/log-metric", `{"run_id": "` + runID + `", "key": "k", "value": 1}`, "'timestamp'"},
		{"runs/log-metric", `{"run_id": "` + runID + `", "key": "k", "value": true, "timestamp": 1}`, "'value'"},
		{"runs/log-metric", `{"key": "k", "value": 1, "timestamp": 1}`, "'run_id'"},
		{"runs/log-metric", `{"run_id": "` + runID + `", "key": "k", "value": 1, "timestamp": 1, "step": 1.5}`, "'step'"},
		{"runs/log-batch", `{"run_id": "` + runID + `", "metrics": [{"key": "k", "value": 1, "timestamp": 1}, {"key": "k2", "value": "x", "timestamp": 1}]}`, "'metrics[1].value'"},
		{"runs/log-batch", `{"run_id": "` + runID + `", "params": [{"key": "p"}]}`, "'params[0].value'"},
		{"runs/log-batch", `{"run_id": "` + runID + `", "metrics": "none"}`, "'metrics'"},
		{"runs/update", `{"run_id": "` + runID + `", "status": "DONE"}`, "'status'"},
		{"runs/search", `{"experiment_ids": "0"}`, "'experiment_ids'"},
		{"runs/search", `{"experiment_ids": ["0"], "max_results": "many"}`, "'max_results'"},
	}
	for _, tc := range cases {
		r := c.fails("POST", api(tc.path), tc.body, 400, "INVALID_PARAMETER_VALUE")
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, tc.mention) {
			t.Errorf("%s %s: message %q does not mention %s", tc.path, tc.body, msg, tc.mention)
		}
	}
	c.fails("GET", api("experiments/get"), nil, 400, "INVALID_PARAMETER_VALUE")
	c.fails("GET", api("metrics/get-history?run_id="+runID+"&metric_key=k&max_results=x"), nil, 400, "INVALID_PARAMETER_VALUE")

	data := obj(t, c.ok("GET", api("runs/get?run_id="+runID), nil), "run", "data")
	if len(list(t, data, "metrics")) != 0 || len(list(t, data, "params")) != 0 {
		t.Errorf("a refused request wrote data: %v", data)
	}
	res := c.ok("POST", api("experiments/search"), nil)
	if es := list(t, res, "experiments"); len(es) != 1 {
		t.Errorf("a refused request created experiments: %v", res)
	}

	// Lenient where MLflow is: a double-encoded body, numbers as strings,
	// unknown fields, enum numbers.
	enc, _ := json.Marshal(`{"name": "twice", "whatever": [1, 2]}`)
	c.ok("POST", api("experiments/create"), string(enc))
	c.ok("POST", api("runs/log-metric"), `{"run_id": "`+runID+`", "key": "k", "value": "1.5", "timestamp": "7", "step": "2", "extra": null}`)
	ri := obj(t, c.ok("POST", api("runs/update"), `{"run_id": "`+runID+`", "status": 4}`), "run_info")
	if str(t, ri, "status") != "FAILED" {
		t.Errorf("status by number: %v", ri)
	}
}

func TestMLflowWorkspaceIsolation(t *testing.T) {
	f := newMLflowFixture(t)
	f.Workspace("ws-b")
	a := f.owner
	b := f.client("ws-b", a.token)
	id := str(t, a.ok("POST", api("experiments/create"), map[string]any{"name": "only-in-a"}), "experiment_id")
	runID := str(t, obj(t, a.ok("POST", api("runs/create"), map[string]any{"experiment_id": id}), "run", "info"), "run_id")

	b.fails("GET", api("experiments/get?experiment_id="+id), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	b.fails("GET", api("experiments/get-by-name?experiment_name=only-in-a"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	b.fails("GET", api("runs/get?run_id="+runID), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	b.fails("POST", api("runs/log-metric"), map[string]any{"run_id": runID, "key": "k", "value": 1, "timestamp": 1}, 404, "RESOURCE_DOES_NOT_EXIST")
	batch := map[string]any{"run_id": runID, "metrics": []any{map[string]any{"key": "k", "value": 1, "timestamp": 1}}}
	if r := b.fails("POST", api("runs/log-batch"), batch, 404, "RESOURCE_DOES_NOT_EXIST"); !strings.Contains(r.body["message"].(string), runID) {
		t.Errorf("log-batch into another workspace's run: %s", r.raw)
	}
	res := b.ok("POST", api("experiments/search"), map[string]any{"filter": "name = 'only-in-a'"})
	if es := list(t, res, "experiments"); len(es) != 0 {
		t.Fatalf("ws-b sees ws-a's experiment: %v", res)
	}
	// The same name is free in ws-b.
	b.ok("POST", api("experiments/create"), map[string]any{"name": "only-in-a"})

	// A workspace that does not exist.
	r := f.client("ws-none", a.token).fails("GET", api("experiments/get?experiment_id=0"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	if msg := r.body["message"].(string); !strings.Contains(msg, "workspace") {
		t.Errorf("unknown workspace message: %q", msg)
	}
	// log-batch looks the workspace up only when the run is not found,
	// and answers as every call does.
	r = f.client("ws-none", a.token).fails("POST", api("runs/log-batch"), batch, 404, "RESOURCE_DOES_NOT_EXIST")
	if msg := r.body["message"].(string); msg != `workspace "ws-none" not found` {
		t.Errorf("log-batch under an unknown workspace: %q", msg)
	}
	r = f.client("ws-none", a.token).fails("POST", api("runs/log-batch"), "{", 404, "RESOURCE_DOES_NOT_EXIST")
	if msg := r.body["message"].(string); msg != `workspace "ws-none" not found` {
		t.Errorf("malformed log-batch under an unknown workspace: %q", msg)
	}
	if _, err := f.DB.FindWorkspace(t.Context(), "ws-none"); err == nil {
		t.Errorf("a call under an unknown workspace created it")
	}
}

// TestMLflowReaderAndAuth: a Reader can search but not log; errors from
// authentication and authorization come in MLflow's shape.
func TestMLflowReaderAndAuth(t *testing.T) {
	f := newMLflowFixture(t)
	runID := str(t, obj(t, f.owner.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")
	reader := f.client("ws-a", f.Principal("reader", [2]string{wharf.RoleReader, "/"}))

	reader.ok("POST", api("experiments/search"), map[string]any{})
	reader.ok("POST", api("runs/search"), map[string]any{"experiment_ids": []string{"0"}})
	reader.ok("GET", api("runs/get?run_id="+runID), nil)
	r := reader.fails("POST", api("runs/log-metric"), map[string]any{"run_id": runID, "key": "k", "value": 1, "timestamp": 1}, 403, "PERMISSION_DENIED")
	if _, ok := r.body["error"]; ok {
		t.Errorf("403 in Wharf's shape, not MLflow's: %s", r.raw)
	}
	reader.fails("POST", api("experiments/create"), map[string]any{"name": "x"}, 403, "PERMISSION_DENIED")
	reader.fails("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x.txt", "data", 403, "PERMISSION_DENIED")

	anon := f.client("ws-a", "")
	anon.fails("POST", api("experiments/search"), map[string]any{}, 401, "UNAUTHENTICATED")
	anon.fails("GET", api("no/such/thing"), nil, 401, "UNAUTHENTICATED")
	bad := f.client("ws-a", "not-a-token")
	bad.fails("GET", api("runs/get?run_id="+runID), nil, 401, "UNAUTHENTICATED")

	data := obj(t, f.owner.ok("GET", api("runs/get?run_id="+runID), nil), "run", "data")
	if len(list(t, data, "metrics")) != 0 {
		t.Errorf("a denied log-metric wrote a metric")
	}
}

func TestMLflowUnknownEndpoint(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	for _, tc := range []struct{ method, path string }{
		{"GET", api("no-such-thing")},
		{"POST", api("traces/search")},
		{"GET", "/api/3.0/mlflow/server-info"},
		{"GET", api("runs/create")},    // a POST-only route
		{"PUT", api("runs/log-batch")}, // no such method
		{"POST", "/api/2.0/mlflow-artifacts/mpu/create/0/x"},
		{"DELETE", "/anything/at/all"},
	} {
		r := c.fails(tc.method, tc.path, nil, 404, "ENDPOINT_NOT_FOUND")
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, r.header.Get("Content-Type"))
		}
	}
	// The client's fallback: POST get-latest-versions exists, so it is never
	// needed here, and GET works too.
	c.ok("POST", api("registered-models/create"), map[string]any{"name": "m"})
	c.ok("POST", api("registered-models/get-latest-versions"), map[string]any{"name": "m"})
	c.ok("GET", api("registered-models/get-latest-versions?name=m"), nil)
	if r := c.do("GET", api("registered-models/get-latest-versions?name=m"), nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
}
