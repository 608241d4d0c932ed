package mlflow_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestMLflowRegistryFlow registers a model with three versions from the
// three kinds of source the client sends, then searches, aliases and
// resolves download URIs as load_model does.
func TestMLflowRegistryFlow(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	run := obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info")
	runID, runURI := str(t, run, "run_id"), str(t, run, "artifact_uri")
	lm := obj(t, c.ok("POST", api("logged-models"), map[string]any{"experiment_id": "0", "name": "model"}), "model", "info")
	modelID, modelURI := str(t, lm, "model_id"), str(t, lm, "artifact_uri")

	rm := obj(t, c.ok("POST", api("registered-models/create"), map[string]any{
		"name": "x", "description": "first", "tags": []map[string]string{{"key": "team", "value": "a"}},
	}), "registered_model")
	if str(t, rm, "name") != "x" || str(t, rm, "user_id") != "app-owner" || str(t, rm, "description") != "first" {
		t.Errorf("created: %v", rm)
	}
	num(t, rm, "creation_timestamp")
	// A duplicate is RESOURCE_ALREADY_EXISTS with status 400, which the
	// client tolerates in register_model.
	c.fails("POST", api("registered-models/create"), map[string]any{"name": "x"}, 400, "RESOURCE_ALREADY_EXISTS")

	sources := []string{"runs:/" + runID + "/model", "models:/" + modelID, runURI + "/model"}
	for i, src := range sources {
		body := map[string]any{"name": "x", "source": src, "run_id": runID, "tags": []map[string]string{{"key": "i", "value": string(rune('0' + i))}}}
		if strings.HasPrefix(src, "models:/") {
			body["model_id"] = modelID
		}
		mv := obj(t, c.ok("POST", api("model-versions/create"), body), "model_version")
		if v := str(t, mv, "version"); v != string(rune('1'+i)) {
			t.Fatalf("version %d = %q, want a string", i, v)
		}
		if str(t, mv, "status") != "READY" || str(t, mv, "current_stage") != "None" || str(t, mv, "source") != src {
			t.Errorf("version %d: %v", i+1, mv)
		}
		if str(t, mv, "user_id") != "app-owner" {
			t.Errorf("version user_id: %v", mv)
		}
	}
	c.fails("POST", api("model-versions/create"), map[string]any{"name": "nope", "source": "s3://b/m"}, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("POST", api("model-versions/create"), map[string]any{"name": "x"}, 400, "INVALID_PARAMETER_VALUE")
	// Sources MLflow refuses: a local path, a path that climbs out, files
	// of another run.
	for _, bad := range []map[string]any{
		{"name": "x", "source": "/tmp/model"},
		{"name": "x", "source": "s3://b/a/../m"},
		{"name": "x", "source": runURI + "/../../other", "run_id": runID},
		{"name": "x", "source": "mlflow-artifacts:/0/elsewhere/model", "run_id": runID},
		{"name": "x", "source": "models:/" + modelID},
	} {
		c.fails("POST", api("model-versions/create"), bad, 400, "INVALID_PARAMETER_VALUE")
	}

	res := c.ok("GET", api("model-versions/search?filter="+url.QueryEscape("name='x'")+"&max_results=10000"), nil)
	vs := list(t, res, "model_versions")
	if len(vs) != 3 {
		t.Fatalf("search versions: %v", res)
	}
	for _, v := range vs {
		str(t, v.(map[string]any), "version")
	}
	res = c.ok("GET", api("registered-models/search?filter="+url.QueryEscape("name LIKE 'x%'")+"&max_results=100"), nil)
	if ms := list(t, res, "registered_models"); len(ms) != 1 {
		t.Fatalf("search models: %v", res)
	}

	c.ok("POST", api("registered-models/alias"), map[string]any{"name": "x", "alias": "champion", "version": "2"})
	c.fails("POST", api("registered-models/alias"), map[string]any{"name": "x", "alias": "latest", "version": "2"}, 400, "INVALID_PARAMETER_VALUE")
	byAlias := obj(t, c.ok("GET", api("registered-models/alias?name=x&alias=champion"), nil), "model_version")
	if str(t, byAlias, "version") != "2" {
		t.Fatalf("alias: %v", byAlias)
	}
	if a := list(t, byAlias, "aliases"); len(a) != 1 || a[0] != "champion" {
		t.Errorf("version aliases: %v", byAlias["aliases"])
	}
	rm = obj(t, c.ok("GET", api("registered-models/get?name=x"), nil), "registered_model")
	aliases := list(t, rm, "aliases")
	if len(aliases) != 1 || str(t, aliases[0].(map[string]any), "alias") != "champion" || str(t, aliases[0].(map[string]any), "version") != "2" {
		t.Errorf("model aliases: %v", rm["aliases"])
	}
	if lv := list(t, rm, "latest_versions"); len(lv) != 1 || str(t, lv[0].(map[string]any), "version") != "3" {
		t.Errorf("latest_versions: %v", rm["latest_versions"])
	}

	// get-download-uri answers as MLflow's registry does: a runs:/ source
	// as it is (the client resolves it), a logged model's location for
	// models:/<id>, any other source as it is.
	want := []string{sources[0], modelURI, sources[2]}
	for i, w := range want {
		res := c.ok("GET", api("model-versions/get-download-uri?name=x&version="+string(rune('1'+i))), nil)
		if got := str(t, res, "artifact_uri"); got != w {
			t.Errorf("download uri of version %d = %q, want %q", i+1, got, w)
		}
	}

	// Stages, for clients that still use them.
	mv := obj(t, c.ok("POST", api("model-versions/transition-stage"), map[string]any{"name": "x", "version": "1", "stage": "production", "archive_existing_versions": false}), "model_version")
	if str(t, mv, "current_stage") != "Production" {
		t.Errorf("transition: %v", mv)
	}
	latest := list(t, c.ok("POST", api("registered-models/get-latest-versions"), map[string]any{"name": "x", "stages": []string{"Production"}}), "model_versions")
	if len(latest) != 1 || str(t, latest[0].(map[string]any), "version") != "1" {
		t.Errorf("latest Production: %v", latest)
	}
	latest = list(t, c.ok("GET", api("registered-models/get-latest-versions?name=x&stages=Production&stages=None"), nil), "model_versions")
	if len(latest) != 2 {
		t.Errorf("latest Production+None: %v", latest)
	}

	// Updates by PATCH, deletes by DELETE with a JSON body.
	if d := str(t, obj(t, c.ok("PATCH", api("model-versions/update"), map[string]any{"name": "x", "version": "3", "description": "third"}), "model_version"), "description"); d != "third" {
		t.Errorf("version description = %q", d)
	}
	if d := str(t, obj(t, c.ok("PATCH", api("registered-models/update"), map[string]any{"name": "x", "description": "second"}), "registered_model"), "description"); d != "second" {
		t.Errorf("model description = %q", d)
	}
	c.ok("POST", api("model-versions/set-tag"), map[string]any{"name": "x", "version": "3", "key": "k", "value": "v"})
	c.ok("DELETE", api("model-versions/delete-tag"), map[string]any{"name": "x", "version": "3", "key": "k"})
	c.ok("POST", api("registered-models/set-tag"), map[string]any{"name": "x", "key": "k", "value": "v"})
	c.ok("DELETE", api("registered-models/delete-tag"), map[string]any{"name": "x", "key": "k"})
	c.ok("DELETE", api("registered-models/alias"), map[string]any{"name": "x", "alias": "champion"})
	c.fails("GET", api("registered-models/alias?name=x&alias=champion"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	c.ok("DELETE", api("model-versions/delete"), map[string]any{"name": "x", "version": "3"})
	c.fails("GET", api("model-versions/get?name=x&version=3"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	c.fails("GET", api("model-versions/get?name=x&version=three"), nil, 400, "INVALID_PARAMETER_VALUE")
	renamed := obj(t, c.ok("POST", api("registered-models/rename"), map[string]any{"name": "x", "new_name": "y"}), "registered_model")
	if str(t, renamed, "name") != "y" {
		t.Errorf("rename: %v", renamed)
	}
	c.ok("DELETE", api("registered-models/delete"), map[string]any{"name": "y"})
	c.fails("GET", api("registered-models/get?name=y"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}

// TestMLflowLoggedModels follows MLflow 3's log_model: create, tags,
// params, finalize, search.
func TestMLflowLoggedModels(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	runID := str(t, obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")
	m := obj(t, c.ok("POST", api("logged-models"), map[string]any{
		"experiment_id": "0", "name": "model", "model_type": "sklearn", "source_run_id": runID,
		"params": []map[string]string{{"key": "alpha", "value": "0.5"}},
		"tags":   []map[string]string{{"key": "mlflow.source.type", "value": "LOCAL"}},
	}), "model")
	info := obj(t, m, "info")
	id := str(t, info, "model_id")
	if !strings.HasPrefix(id, "m-") || len(id) != 34 {
		t.Fatalf("model_id = %q", id)
	}
	if str(t, info, "status") != "LOGGED_MODEL_PENDING" || str(t, info, "experiment_id") != "0" || str(t, info, "source_run_id") != runID {
		t.Errorf("info: %v", info)
	}
	if uri := str(t, info, "artifact_uri"); uri != "mlflow-artifacts:/0/models/"+id+"/artifacts" {
		t.Errorf("artifact_uri = %q", uri)
	}
	if _, ok := info["creator_id"]; ok {
		t.Errorf("creator_id must be an int64 or absent: %v", info["creator_id"])
	}
	num(t, info, "creation_timestamp_ms")
	if p := kvs(t, obj(t, m, "data"), "params"); p["alpha"] != "0.5" {
		t.Errorf("params: %v", p)
	}

	got := obj(t, c.ok("PATCH", api("logged-models/"+id), map[string]any{"model_id": id, "status": "LOGGED_MODEL_READY"}), "model", "info")
	if str(t, got, "status") != "LOGGED_MODEL_READY" {
		t.Errorf("finalize: %v", got)
	}
	c.fails("PATCH", api("logged-models/"+id), map[string]any{"model_id": id, "status": "DONE"}, 400, "INVALID_PARAMETER_VALUE")
	got = obj(t, c.ok("PATCH", api("logged-models/"+id+"/tags"), map[string]any{"tags": []map[string]string{{"key": "mlflow.modelVersions", "value": `[{"name":"x","version":"1"}]`}, {"key": "a/b", "value": "1"}}}), "model", "info")
	if tags := kvs(t, got, "tags"); tags["mlflow.modelVersions"] == "" || tags["a/b"] != "1" {
		t.Errorf("tags: %v", tags)
	}
	c.ok("DELETE", api("logged-models/"+id+"/tags/a/b"), nil)
	c.ok("POST", api("logged-models/"+id+"/params"), map[string]any{"params": []map[string]string{{"key": "beta", "value": "2"}}})
	got = obj(t, c.ok("GET", api("logged-models/"+id), nil), "model")
	if tags := kvs(t, obj(t, got, "info"), "tags"); tags["a/b"] != "" {
		t.Errorf("deleted tag: %v", tags)
	}
	if p := kvs(t, obj(t, got, "data"), "params"); p["beta"] != "2" || p["alpha"] != "0.5" {
		t.Errorf("params: %v", p)
	}

	res := c.ok("POST", api("logged-models/search"), map[string]any{
		"experiment_ids": []string{"0"}, "filter": "name = 'model'",
		"order_by":    []any{map[string]any{"field_name": "creation_timestamp", "ascending": false}},
		"max_results": 10,
	})
	if ms := list(t, res, "models"); len(ms) != 1 || str(t, obj(t, ms[0], "info"), "model_id") != id {
		t.Fatalf("search: %v", res)
	}
	c.fails("POST", api("logged-models/search"), map[string]any{}, 400, "INVALID_PARAMETER_VALUE")

	c.ok("DELETE", api("logged-models/"+id), nil)
	c.fails("GET", api("logged-models/"+id), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}
