package mlflow_test

import (
	"net/url"
	"testing"

	"github.com/wharfml/wharf"
)

// api3 prefixes an MLflow 3 REST path.
func api3(p string) string { return "/api/3.0/mlflow/" + p }

// traceV3 is a StartTraceV3 body as the 3.x client sends it.
func traceV3(id, expID string, extra map[string]any) map[string]any {
	info := map[string]any{
		"trace_id":           id,
		"trace_location":     map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": expID}},
		"request_preview":    `{"q": 1}`,
		"response_preview":   `"a"`,
		"request_time":       "2025-01-02T03:04:05.678Z",
		"execution_duration": "1.5s",
		"state":              "OK",
		"trace_metadata":     map[string]any{"mlflow.sourceRun": "r1"},
		"tags":               map[string]any{"mlflow.traceName": "root"},
	}
	for k, v := range extra {
		info[k] = v
	}
	return map[string]any{"trace": map[string]any{"trace_info": info, "spans": []any{}}}
}

// TestMLflowTraceV3Shapes checks the wire forms of the v3 API: times as
// protobuf's Timestamp and Duration, states by name, maps as objects, and
// the artifact location the client uploads spans to.
func TestMLflowTraceV3Shapes(t *testing.T) {
	f := newMLflowFixture(t)
	info := obj(t, f.owner.ok("POST", api3("traces"), traceV3("tr-1", "0", nil)), "trace", "trace_info")
	if got := str(t, info, "request_time"); got != "2025-01-02T03:04:05.678Z" {
		t.Errorf("request_time = %q", got)
	}
	if got := str(t, info, "execution_duration"); got != "1.500s" {
		t.Errorf("execution_duration = %q, want 1.500s", got)
	}
	if got := str(t, obj(t, info, "tags"), wharf.TraceArtifactLocationTag); got != "mlflow-artifacts:/0/traces/tr-1/artifacts" {
		t.Errorf("artifact location = %q", got)
	}
	got := obj(t, f.owner.ok("GET", api3("traces/tr-1"), nil), "trace", "trace_info")
	if str(t, got, "state") != "OK" || str(t, obj(t, got, "trace_location", "mlflow_experiment"), "experiment_id") != "0" ||
		str(t, obj(t, got, "trace_metadata"), "mlflow.sourceRun") != "r1" || str(t, got, "request_preview") != `{"q": 1}` {
		t.Errorf("trace info read back: %v", got)
	}
	// The client's probe for a newer endpoint reads as an unknown trace.
	r := f.owner.fails("GET", api3("traces/get?trace_id=tr-1"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
	if msg := str(t, r.body, "message"); msg != "Trace with ID 'get' not found." {
		t.Errorf("traces/get answered %q", msg)
	}

	for name, body := range map[string]map[string]any{
		"no trace":           {},
		"bad time":           traceV3("tr-2", "0", map[string]any{"request_time": "yesterday"}),
		"bad duration":       traceV3("tr-2", "0", map[string]any{"execution_duration": "-1s"}),
		"bad state":          traceV3("tr-2", "0", map[string]any{"state": "DONE"}),
		"table location":     traceV3("tr-2", "0", map[string]any{"trace_location": map[string]any{"type": "INFERENCE_TABLE"}}),
		"id with a slash":    traceV3("tr/2", "0", nil),
		"tags not an object": traceV3("tr-2", "0", map[string]any{"tags": []any{"x"}}),
	} {
		r := f.owner.do("POST", api3("traces"), body)
		if r.status != 400 || r.body["error_code"] != "INVALID_PARAMETER_VALUE" {
			t.Errorf("%s: %d %s, want 400 INVALID_PARAMETER_VALUE", name, r.status, r.raw)
		}
	}
	f.owner.fails("POST", api3("traces"), traceV3("tr-2", "42", nil), 404, "RESOURCE_DOES_NOT_EXIST")
	f.owner.fails("GET", api3("traces/tr-2"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}

// TestMLflowTraceV2 drives the v2 API the client falls back to: start,
// end, get, search, tags and delete.
func TestMLflowTraceV2(t *testing.T) {
	f := newMLflowFixture(t)
	started := obj(t, f.owner.ok("POST", api("traces"), map[string]any{
		"experiment_id": "0", "timestamp_ms": 1000,
		"request_metadata": []any{map[string]any{"key": "m", "value": "1"}},
		"tags":             []any{map[string]any{"key": "t", "value": "1"}},
	}), "trace_info")
	id := str(t, started, "request_id")
	if len(id) != 32 || str(t, started, "status") != "IN_PROGRESS" {
		t.Errorf("started trace %v: want a 32-hex id, IN_PROGRESS", started)
	}
	if _, ok := started["execution_time_ms"]; ok {
		t.Errorf("a trace not ended has an execution time: %v", started)
	}
	ended := obj(t, f.owner.ok("PATCH", api("traces/"+id), map[string]any{
		"request_id": id, "timestamp_ms": 1250, "status": "ERROR",
		"tags": []any{map[string]any{"key": "t2", "value": "2"}},
	}), "trace_info")
	if num(t, ended, "execution_time_ms").String() != "250" || str(t, ended, "status") != "ERROR" {
		t.Errorf("ended trace %v: want 250 ms, ERROR", ended)
	}
	if tags := kvs(t, ended, "tags"); tags["t"] != "1" || tags["t2"] != "2" {
		t.Errorf("ended trace tags %v", tags)
	}
	info := obj(t, f.owner.ok("GET", api("traces/"+id+"/info"), nil), "trace_info")
	if kvs(t, info, "request_metadata")["m"] != "1" {
		t.Errorf("v2 info %v lacks its metadata", info)
	}

	q := url.Values{"experiment_ids": {"0"}, "filter": {"status = 'ERROR'"}, "max_results": {"10"}}
	found := list(t, f.owner.ok("GET", api("traces?"+q.Encode()), nil), "traces")
	if len(found) != 1 || str(t, found[0].(map[string]any), "request_id") != id {
		t.Errorf("v2 search found %v", found)
	}
	f.owner.ok("PATCH", api("traces/"+id+"/tags"), map[string]any{"key": "team", "value": "nlp"})
	f.owner.ok("DELETE", api("traces/"+id+"/tags"), map[string]any{"key": "t"})
	tags := kvs(t, obj(t, f.owner.ok("GET", api("traces/"+id+"/info"), nil), "trace_info"), "tags")
	if tags["team"] != "nlp" || tags["t"] != "" {
		t.Errorf("tags after set and delete: %v", tags)
	}
	f.owner.fails("PATCH", api("traces/"+id+"/tags"), map[string]any{"value": "x"}, 400, "INVALID_PARAMETER_VALUE")

	f.owner.fails("POST", api("traces/delete-traces"), map[string]any{"experiment_id": "0"}, 400, "INVALID_PARAMETER_VALUE")
	f.owner.fails("POST", api("traces/delete-traces"), map[string]any{"experiment_id": "0", "max_timestamp_millis": 1, "request_ids": []string{id}}, 400, "INVALID_PARAMETER_VALUE")
	f.owner.fails("POST", api("traces/delete-traces"), map[string]any{"experiment_id": "0", "request_ids": []string{id}, "max_traces": 1}, 400, "INVALID_PARAMETER_VALUE")
	del := f.owner.ok("POST", api("traces/delete-traces"), map[string]any{"experiment_id": "0", "request_ids": []string{id}})
	if num(t, del, "traces_deleted").String() != "1" {
		t.Errorf("delete-traces answered %v", del)
	}
	f.owner.fails("GET", api("traces/"+id+"/info"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}

// TestMLflowTraceDeleteRemovesSpans checks that deleting a trace deletes
// the spans and attachments stored below its artifact location, and
// nothing beside them.
func TestMLflowTraceDeleteRemovesSpans(t *testing.T) {
	f := newMLflowFixture(t)
	f.owner.ok("POST", api3("traces"), traceV3("tr-1", "0", nil))
	f.owner.ok("POST", api3("traces"), traceV3("tr-2", "0", nil))
	for _, p := range []string{"0/traces/tr-1/artifacts/traces.json", "0/traces/tr-1/artifacts/attachments/a.png", "0/traces/tr-2/artifacts/traces.json"} {
		f.owner.ok("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+p, `{"spans": []}`)
	}
	f.owner.ok("POST", api3("traces/delete-traces"), map[string]any{"experiment_id": "0", "request_ids": []string{"tr-1"}})
	f.owner.fails("GET", "/api/2.0/mlflow-artifacts/artifacts/0/traces/tr-1/artifacts/traces.json", nil, 404, "RESOURCE_DOES_NOT_EXIST")
	f.owner.fails("GET", "/api/2.0/mlflow-artifacts/artifacts/0/traces/tr-1/artifacts/attachments/a.png", nil, 404, "RESOURCE_DOES_NOT_EXIST")
	if r := f.owner.do("GET", "/api/2.0/mlflow-artifacts/artifacts/0/traces/tr-2/artifacts/traces.json", nil); r.status != 200 || string(r.raw) != `{"spans": []}` {
		t.Errorf("the other trace's spans: %d %s", r.status, r.raw)
	}
}

// TestMLflowAssessmentUpdateMask checks the FieldMask forms of an update:
// protobuf's JSON string of camelCase paths, and fields outside the mask
// left alone.
func TestMLflowAssessmentUpdateMask(t *testing.T) {
	f := newMLflowFixture(t)
	f.owner.ok("POST", api3("traces"), traceV3("tr-1", "0", nil))
	created := obj(t, f.owner.ok("POST", api3("traces/tr-1/assessments"), map[string]any{"assessment": map[string]any{
		"assessment_name": "q", "trace_id": "tr-1", "rationale": "r0",
		"source":   map[string]any{"source_type": "HUMAN", "source_id": "ana"},
		"feedback": map[string]any{"value": map[string]any{"score": 1, "tags": []any{"a"}}},
		"metadata": map[string]any{"k1": "v1"},
	}}), "assessment")
	id := str(t, created, "assessment_id")
	path := api3("traces/tr-1/assessments/" + id)
	upd := obj(t, f.owner.ok("PATCH", path, map[string]any{
		"assessment":  map[string]any{"assessment_name": "q2", "rationale": "ignored", "metadata": map[string]any{"k2": "v2"}},
		"update_mask": "assessmentName,metadata",
	}), "assessment")
	if str(t, upd, "assessment_name") != "q2" || str(t, upd, "rationale") != "r0" {
		t.Errorf("update touched what the mask left out, or not what it named: %v", upd)
	}
	if md := obj(t, upd, "metadata"); md["k1"] != "v1" || md["k2"] != "v2" {
		t.Errorf("metadata not merged: %v", md)
	}
	if v := obj(t, upd, "feedback", "value"); v["score"].(interface{ String() string }).String() != "1" {
		t.Errorf("feedback value changed: %v", v)
	}
	f.owner.fails("PATCH", path, map[string]any{"assessment": map[string]any{"expectation": map[string]any{"value": 1}}, "update_mask": "expectation"}, 400, "INVALID_PARAMETER_VALUE")
	f.owner.fails("PATCH", path, map[string]any{"assessment": map[string]any{}, "update_mask": "sourceId"}, 400, "INVALID_PARAMETER_VALUE")
	f.owner.fails("POST", api3("traces/tr-9/assessments"), map[string]any{"assessment": map[string]any{"assessment_name": "q", "feedback": map[string]any{"value": 1}}}, 404, "RESOURCE_DOES_NOT_EXIST")

	reader := f.client("ws-a", f.Principal("reader", [2]string{wharf.RoleReader, "/"}))
	reader.ok("GET", path, nil)
	reader.ok("POST", api3("traces/search"), map[string]any{"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": "0"}}}})
	reader.fails("DELETE", path, map[string]any{}, 403, "PERMISSION_DENIED")
	reader.fails("POST", api3("traces/delete-traces"), map[string]any{"experiment_id": "0", "request_ids": []string{"tr-1"}}, 403, "PERMISSION_DENIED")
	f.owner.ok("DELETE", path, map[string]any{})
	f.owner.fails("GET", path, nil, 404, "RESOURCE_DOES_NOT_EXIST")
}
