package mlflow_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpPost sends an OTLP body to the workspace's /v1/traces.
func (c *mlflowClient) otlpPost(body []byte, headers map[string]string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.base+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func otlpSpan(id, parent byte, name string, start, end uint64, attrs ...*commonpb.KeyValue) *tracepb.Span {
	sp := &tracepb.Span{
		TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, id},
		Name: name, StartTimeUnixNano: start, EndTimeUnixNano: end, Attributes: attrs,
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
	}
	if parent != 0 {
		sp.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, parent}
	}
	return sp
}

func otlpBody(t *testing.T, spans ...*tracepb.Span) []byte {
	t.Helper()
	b, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMLflowOTLPIngest sends a trace's spans over OTLP in two requests,
// the child before its root, and reads the trace and its traces.json
// back: the trace exists from the first span, is complete once its root
// is in, and its spans carry their attributes as the client stores them.
func TestMLflowOTLPIngest(t *testing.T) {
	f := newMLflowFixture(t)
	const traceID = "tr-abababababababababababababababab"
	pb := map[string]string{"Content-Type": "application/x-protobuf", "X-Mlflow-Experiment-Id": "0"}

	child := otlpSpan(2, 1, "child", 1_500_000_000, 1_900_000_000,
		strAttr("llm.model", "small"),
		&commonpb.KeyValue{Key: "tokens", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}})
	if status, raw := f.owner.otlpPost(otlpBody(t, child), pb); status != 200 {
		t.Fatalf("OTLP child: %d %s", status, raw)
	}
	info := obj(t, f.owner.ok("GET", api3("traces/"+traceID), nil), "trace", "trace_info")
	if str(t, info, "state") != "IN_PROGRESS" {
		t.Errorf("trace with only a child span: %v, want IN_PROGRESS", info)
	}

	root := otlpSpan(1, 0, "root", 1_000_000_000, 3_000_000_000,
		strAttr("mlflow.spanInputs", `{"q": 1}`), strAttr("mlflow.spanOutputs", `"a"`))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(otlpBody(t, root))
	_ = zw.Close()
	if status, raw := f.owner.otlpPost(gz.Bytes(), map[string]string{"Content-Type": "application/x-protobuf",
		"Content-Encoding": "gzip", "X-Mlflow-Experiment-Id": "0"}); status != 200 {
		t.Fatalf("OTLP root: %d %s", status, raw)
	}
	info = obj(t, f.owner.ok("GET", api3("traces/"+traceID), nil), "trace", "trace_info")
	if str(t, info, "state") != "OK" || str(t, info, "request_time") != "1970-01-01T00:00:01.000Z" ||
		str(t, info, "execution_duration") != "2.000s" || str(t, obj(t, info, "tags"), "mlflow.traceName") != "root" {
		t.Errorf("trace after its root span: %v", info)
	}

	r := f.owner.do("GET", "/api/2.0/mlflow-artifacts/artifacts/0/traces/"+traceID+"/artifacts/traces.json", nil)
	if r.status != 200 {
		t.Fatalf("traces.json: %d %s", r.status, r.raw)
	}
	var data struct {
		Spans []struct {
			Name       string                `json:"name"`
			SpanID     string                `json:"span_id"`
			Parent     *string               `json:"parent_span_id"`
			Attributes map[string]string     `json:"attributes"`
			Status     struct{ Code string } `json:"status"`
		} `json:"spans"`
	}
	if err := json.Unmarshal(r.raw, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Spans) != 2 || data.Spans[0].Name != "root" || data.Spans[1].Name != "child" {
		t.Fatalf("traces.json spans: %s", r.raw)
	}
	c := data.Spans[1]
	if c.Parent == nil || *c.Parent != data.Spans[0].SpanID || c.Status.Code != "STATUS_CODE_OK" {
		t.Errorf("child span: %+v", c)
	}
	want := map[string]string{"llm.model": `"small"`, "tokens": "42", "mlflow.traceRequestId": `"` + traceID + `"`}
	for k, v := range want {
		if c.Attributes[k] != v {
			t.Errorf("child attribute %s = %q, want %q", k, c.Attributes[k], v)
		}
	}

	// OTLP JSON, with hex ids, adds a span to the same trace.
	jsonBody := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abababababababababababababababab","spanId":"0000000000000003","parentSpanId":"0000000000000001","name":"json","startTimeUnixNano":"2000000000","endTimeUnixNano":"2100000000"}]}]}]}`
	if status, raw := f.owner.otlpPost([]byte(jsonBody), map[string]string{"Content-Type": "application/json", "X-Mlflow-Experiment-Id": "0"}); status != 200 {
		t.Fatalf("OTLP JSON: %d %s", status, raw)
	}
	r = f.owner.do("GET", "/api/2.0/mlflow-artifacts/artifacts/0/traces/"+traceID+"/artifacts/traces.json", nil)
	if err := json.Unmarshal(r.raw, &data); err != nil || len(data.Spans) != 3 {
		t.Errorf("after the JSON request traces.json has %d spans (%v), want 3", len(data.Spans), err)
	}

	for name, h := range map[string]map[string]string{
		"no experiment header": {"Content-Type": "application/x-protobuf"},
		"text body":            {"Content-Type": "text/plain", "X-Mlflow-Experiment-Id": "0"},
		"unknown encoding":     {"Content-Type": "application/x-protobuf", "Content-Encoding": "br", "X-Mlflow-Experiment-Id": "0"},
	} {
		if status, raw := f.owner.otlpPost(otlpBody(t, root), h); status != 400 {
			t.Errorf("%s: %d %s, want 400", name, status, raw)
		}
	}
	if status, raw := f.owner.otlpPost([]byte("not protobuf at all"), pb); status != 400 {
		t.Errorf("garbage body: %d %s, want 400", status, raw)
	}
	if status, raw := f.owner.otlpPost(otlpBody(t, root), map[string]string{"Content-Type": "application/x-protobuf", "X-Mlflow-Experiment-Id": "7"}); status != 400 || !bytes.Contains(raw, []byte("RESOURCE_ALREADY_EXISTS")) {
		t.Errorf("the trace's spans sent to another experiment: %d %s, want 400 RESOURCE_ALREADY_EXISTS", status, raw)
	}
}

// TestMLflowOTLPElsewhere refuses spans of an experiment whose artifacts
// the server does not hold, and records nothing of them.
func TestMLflowOTLPElsewhere(t *testing.T) {
	f := newMLflowFixture(t)
	exp := str(t, f.owner.ok("POST", api("experiments/create"), map[string]any{"name": "on-s3", "artifact_location": "s3://bucket/x"}), "experiment_id")
	status, raw := f.owner.otlpPost(otlpBody(t, otlpSpan(1, 0, "root", 1, 2)), map[string]string{"Content-Type": "application/x-protobuf", "X-Mlflow-Experiment-Id": exp})
	if status != 400 || !bytes.Contains(raw, []byte("s3://bucket/x/traces/")) {
		t.Errorf("spans for an experiment on s3: %d %s, want 400 naming the location", status, raw)
	}
	f.owner.fails("GET", api3("traces/tr-abababababababababababababababab"), nil, 404, "RESOURCE_DOES_NOT_EXIST")
}
