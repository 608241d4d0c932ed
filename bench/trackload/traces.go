package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// traceSpans is the traces.json of every trace: the three spans of a small
// retrieval pipeline, about 3 KB, in the form the mlflow 3.x client
// uploads.
var traceSpans = func() string {
	span := func(name, id, parent, kind string, in, out any) map[string]any {
		attrs := map[string]string{}
		for k, v := range map[string]any{"mlflow.spanType": kind, "mlflow.spanInputs": in, "mlflow.spanOutputs": out,
			"mlflow.traceRequestId": "TRACE"} {
			b, _ := json.Marshal(v)
			attrs[k] = string(b)
		}
		return map[string]any{
			"trace_id": "TRACE", "span_id": id, "parent_span_id": parent, "name": name,
			"start_time_unix_nano": 1700000000000000000, "end_time_unix_nano": 1700000000012000000,
			"status": map[string]string{"code": "STATUS_CODE_OK", "message": ""}, "attributes": attrs, "events": []any{},
		}
	}
	docs := []string{strings.Repeat("Wharf keeps traces. ", 20), strings.Repeat("Spans are artifacts. ", 20)}
	b, _ := json.Marshal(map[string]any{"spans": []any{
		span("pipeline", "AAAAAAAAAAE=", "", "CHAIN", map[string]any{"question": "what is wharf?"}, map[string]any{"answer": "a server"}),
		span("retrieve", "AAAAAAAAAAI=", "AAAAAAAAAAE=", "RETRIEVER", map[string]any{"question": "what is wharf?", "k": 2}, docs),
		span("llm", "AAAAAAAAAAM=", "AAAAAAAAAAE=", "LLM", map[string]any{"docs": docs}, map[string]any{"answer": "a server"}),
	}})
	return string(b)
}()

// startTraceBody is a StartTraceV3 request for trace id in experiment exp.
func startTraceBody(id, exp string, now time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"trace": map[string]any{"spans": []any{}, "trace_info": map[string]any{
		"trace_id":           id,
		"trace_location":     map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]string{"experiment_id": exp}},
		"request_preview":    `{"question": "what is wharf?"}`,
		"response_preview":   `{"answer": "a server"}`,
		"request_time":       now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"execution_duration": "0.012s",
		"state":              "OK",
		"trace_metadata":     map[string]string{"mlflow.trace_schema.version": "3", "mlflow.user": "bench", "mlflow.source.type": "LOCAL"},
		"tags":               map[string]string{"mlflow.traceName": "pipeline", "mlflow.trace.spansLocation": "ARTIFACT_REPO"},
	}}})
	return b
}

// logTrace logs one trace: its info, then its spans where the answer says.
func (c *client) logTrace(ctx context.Context, exp string) outcome {
	var id [16]byte
	_, _ = rand.Read(id[:])
	traceID := "tr-" + hex.EncodeToString(id[:])
	var out struct {
		Trace struct {
			TraceInfo struct {
				Tags map[string]string `json:"tags"`
			} `json:"trace_info"`
		} `json:"trace"`
	}
	if o := c.send(ctx, http.MethodPost, c.root+"/api/3.0/mlflow/traces", "traces", "application/json",
		startTraceBody(traceID, exp, time.Now()), &out); o.err != nil {
		return o
	}
	loc := out.Trace.TraceInfo.Tags["mlflow.artifactLocation"]
	path, ok := strings.CutPrefix(loc, "mlflow-artifacts:")
	if !ok {
		return outcome{err: fmt.Errorf("trace %s: artifact location %q is not served by the artifact proxy", traceID, loc), kind: "traces bad location"}
	}
	path = strings.TrimLeft(path, "/")
	return c.send(ctx, http.MethodPut, c.root+"/api/2.0/mlflow-artifacts/artifacts/"+path+"/traces.json",
		"traces.json", "application/json", []byte(strings.ReplaceAll(traceSpans, "TRACE", traceID)), nil)
}

// traces: each worker logs whole traces, info then spans.
func traces(ctx context.Context, c *client, o options) (*loadReport, error) {
	exp, err := c.createExperiment(ctx, "trackload-traces")
	if err != nil {
		return nil, err
	}
	drive := func(d time.Duration) (tally, time.Duration) {
		ts := make([]tally, o.concurrency)
		var wg sync.WaitGroup
		t0 := time.Now()
		deadline := t0.Add(d)
		for w := range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := tally{latencies: make([]time.Duration, 0, 1024)}
				for time.Now().Before(deadline) {
					r0 := time.Now()
					oc := c.logTrace(ctx, exp)
					t.add(time.Since(r0), oc)
				}
				ts[w] = t
			}()
		}
		wg.Wait()
		return merge(ts), time.Since(t0)
	}
	if o.warmup > 0 {
		if t, _ := drive(o.warmup); t.errors > 0 {
			printErrors(t)
			return nil, fmt.Errorf("warm-up: %d errors", t.errors)
		}
	}
	t, elapsed := drive(o.duration)
	printErrors(t)
	return newLoadReport(scTraces, o.concurrency, 1, t, elapsed), nil
}
