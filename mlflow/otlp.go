package mlflow

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Span ingestion over OTLP/HTTP (POST <tracking URI>/v1/traces), as
// MLflow's server offers it to OpenTelemetry exporters: the header
// x-mlflow-experiment-id names the experiment. Spans are kept where the
// mlflow client puts them, in the trace's traces.json artifact, so that
// get_trace and search_traces read them the same way; a trace that does
// not exist yet is created from its spans.

// otlpExperimentHeader names the experiment OTLP spans go to.
const otlpExperimentHeader = "X-Mlflow-Experiment-Id"

// traceDataFile is the artifact holding a trace's spans.
const traceDataFile = "traces.json"

// Span attributes MLflow derives a trace's info from.
const (
	spanRequestIDAttr = "mlflow.traceRequestId"
	spanInputsAttr    = "mlflow.spanInputs"
	spanOutputsAttr   = "mlflow.spanOutputs"
	previewLength     = 1000
)

// maxOTLPBody bounds a decompressed OTLP request.
const maxOTLPBody = 64 << 20

// traceData is traces.json: the spans in the form the mlflow client
// writes them (Span.to_dict), kept as JSON objects.
type traceData struct {
	Spans []map[string]any `json:"spans"`
}

// exportTraces ingests an OTLP ExportTraceServiceRequest, protobuf or
// OTLP JSON, gzip-compressed or not.
func (h *Handler) exportTraces(w http.ResponseWriter, r *http.Request) {
	isJSON, err := h.serveExport(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if isJSON {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse is no bytes
}

func (h *Handler) serveExport(r *http.Request) (isJSON bool, err error) {
	ws, err := h.workspace(r)
	if err != nil {
		return false, err
	}
	if h.Blobs == nil {
		return false, wharf.Errorf(wharf.EUNAVAILABLE, "artifact serving is not configured on this server, and spans are artifacts")
	}
	expID := r.Header.Get(otlpExperimentHeader)
	if expID == "" {
		return false, wharf.Errorf(wharf.EINVALID, "the %s header must name the experiment the spans belong to", otlpExperimentHeader).WithField(otlpExperimentHeader)
	}
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if media != "application/x-protobuf" && media != "application/json" {
		return false, wharf.Errorf(wharf.EINVALID, "Invalid Content-Type %q: expected application/x-protobuf or application/json", r.Header.Get("Content-Type"))
	}
	isJSON = media == "application/json"
	body, err := readOTLPBody(r)
	if err != nil {
		return isJSON, err
	}
	// TracesData is ExportTraceServiceRequest's twin, field for field, and
	// spares the server the gRPC service's packages.
	req := &tracepb.TracesData{}
	if isJSON {
		body, err = otlpJSONIDsToBase64(body)
		if err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, req)
		}
	} else {
		err = proto.Unmarshal(body, req)
	}
	if err != nil {
		return isJSON, wharf.Errorf(wharf.EINVALID, "the body is not an OTLP ExportTraceServiceRequest: %s", err.Error())
	}
	byTrace := map[string][]map[string]any{}
	var order []string
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s, id, err := spanDict(sp)
				if err != nil {
					return isJSON, err
				}
				if byTrace[id] == nil {
					order = append(order, id)
				}
				byTrace[id] = append(byTrace[id], s)
			}
		}
	}
	h.spansMu.Lock()
	defer h.spansMu.Unlock()
	for _, id := range order {
		if err := h.ingestSpans(r, ws, expID, id, byTrace[id]); err != nil {
			return isJSON, err
		}
	}
	return isJSON, nil
}

func readOTLPBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "the body is not gzip: %s", err.Error())
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, wharf.Errorf(wharf.EINVALID, "Content-Encoding %q is not supported; send gzip or none", enc)
	}
	b, err := io.ReadAll(io.LimitReader(rd, maxOTLPBody+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if len(b) > maxOTLPBody {
		return nil, wharf.Errorf(wharf.ETOOLARGE, "the decompressed body exceeds %d bytes", maxOTLPBody)
	}
	return b, nil
}

// otlpJSONIDsToBase64 rewrites the hex trace and span ids of OTLP JSON as
// the base64 protobuf's JSON form of bytes expects.
func otlpJSONIDsToBase64(body []byte) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	each := func(v any, fn func(map[string]any)) {
		l, _ := v.([]any)
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				fn(m)
			}
		}
	}
	var bad error
	each(doc["resourceSpans"], func(rs map[string]any) {
		each(rs["scopeSpans"], func(ss map[string]any) {
			each(ss["spans"], func(sp map[string]any) {
				for _, k := range []string{"traceId", "spanId", "parentSpanId"} {
					s, _ := sp[k].(string)
					if s == "" {
						continue
					}
					b, err := hex.DecodeString(s)
					if err != nil {
						bad = errors.New(k + " is not hex")
						return
					}
					sp[k] = base64.StdEncoding.EncodeToString(b)
				}
			})
		})
	})
	if bad != nil {
		return nil, bad
	}
	return json.Marshal(doc)
}

// spanDict converts an OTLP span to the mlflow client's span form and
// returns it with the MLflow id of its trace ("tr-" and the OTel trace id
// in hex, the id the client itself derives).
func spanDict(sp *tracepb.Span) (map[string]any, string, error) {
	if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
		return nil, "", wharf.Errorf(wharf.EINVALID, "span %q: a trace id is 16 bytes and a span id 8", sp.GetName())
	}
	traceID := "tr-" + hex.EncodeToString(sp.GetTraceId())
	attrs := map[string]any{}
	for _, kv := range sp.GetAttributes() {
		attrs[kv.GetKey()] = dumpAttribute(anyValue(kv.GetValue()))
	}
	// The request id is derived from the trace id, whatever the client sent.
	attrs[spanRequestIDAttr] = dumpAttribute(traceID)
	var parent any
	if p := sp.GetParentSpanId(); len(p) > 0 {
		parent = base64.StdEncoding.EncodeToString(p)
	}
	events := []any{}
	for _, e := range sp.GetEvents() {
		ea := map[string]any{}
		for _, kv := range e.GetAttributes() {
			ea[kv.GetKey()] = anyValue(kv.GetValue())
		}
		events = append(events, map[string]any{"name": e.GetName(), "time_unix_nano": e.GetTimeUnixNano(), "attributes": ea})
	}
	code := "STATUS_CODE_UNSET"
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		code = "STATUS_CODE_OK"
	case tracepb.Status_STATUS_CODE_ERROR:
		code = "STATUS_CODE_ERROR"
	}
	return map[string]any{
		"trace_id":             base64.StdEncoding.EncodeToString(sp.GetTraceId()),
		"span_id":              base64.StdEncoding.EncodeToString(sp.GetSpanId()),
		"parent_span_id":       parent,
		"name":                 sp.GetName(),
		"start_time_unix_nano": sp.GetStartTimeUnixNano(),
		"end_time_unix_nano":   sp.GetEndTimeUnixNano(),
		"events":               events,
		"status":               map[string]any{"code": code, "message": sp.GetStatus().GetMessage()},
		"attributes":           attrs,
		"links":                []any{},
	}, traceID, nil
}

// anyValue turns an OTLP value into plain Go data.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return nil
		}
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := []any{}
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := map[string]any{}
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyValue(kv.GetValue())
		}
		return out
	}
	return nil
}

// dumpAttribute is the client's dump_span_attribute_value: a span keeps
// each attribute as the JSON text of its value.
func dumpAttribute(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "null"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ingestSpans adds spans to their trace's traces.json, creating the trace
// from its spans when it does not exist, and completing one created so
// when its root span arrives.
func (h *Handler) ingestSpans(r *http.Request, ws, expID, traceID string, spans []map[string]any) error {
	ctx := r.Context()
	t, err := h.Store.FindTrace(ctx, ws, traceID)
	var loc string
	switch {
	case wharf.IsNotFound(err):
		t = &wharf.Trace{Workspace: ws, ID: traceID, ExperimentID: expID, ExecutionTime: -1, State: wharf.TraceStateInProgress}
		e, err := h.Store.FindExperiment(ctx, ws, expID)
		if err != nil {
			return err
		}
		// Where the store will put the trace's artifacts (checked below
		// before anything is written).
		loc = strings.TrimRight(e.ArtifactLocation, "/") + "/traces/" + traceID + "/artifacts"
	case err != nil:
		return err
	case t.ExperimentID != expID:
		return wharf.Errorf(wharf.ECONFLICT, "Trace with ID '%s' belongs to experiment %s, not %s", traceID, t.ExperimentID, expID)
	default:
		loc = t.Tags[wharf.TraceArtifactLocationTag]
	}
	root, ok := ArtifactRoot(loc)
	if !ok || root == "" {
		return wharf.Errorf(wharf.EINVALID, "the spans of trace %s belong at %s, outside this server's artifact store; log them with the mlflow client", traceID, loc)
	}
	old, err := h.readTraceData(r, ws, root)
	if err != nil {
		return err
	}
	merged := mergeSpans(old.Spans, spans)
	if t.State == wharf.TraceStateInProgress {
		fillTraceFromSpans(t, merged)
		if err := h.Store.CreateTrace(ctx, t); err != nil {
			return err
		}
	}
	b, err := json.Marshal(traceData{Spans: merged})
	if err != nil {
		return err
	}
	digest, size, err := h.Blobs.Put(ctx, bytes.NewReader(b))
	if err != nil {
		return err
	}
	return h.Store.PutArtifact(ctx, &wharf.Artifact{Workspace: ws, Path: joinArtifactPath(root, traceDataFile),
		Digest: digest, Size: size, UpdatedAt: nowMillis()})
}

// readTraceData reads the traces.json below root; none yet is no spans.
func (h *Handler) readTraceData(r *http.Request, ws, root string) (traceData, error) {
	var d traceData
	a, err := h.Store.FindArtifact(r.Context(), ws, joinArtifactPath(root, traceDataFile))
	if wharf.IsNotFound(err) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	rc, _, err := h.Blobs.Open(r.Context(), a.Digest)
	if err != nil {
		return d, err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return d, wharf.Errorf(wharf.EINVALID, "the stored spans of this trace are not JSON: %s", err.Error())
	}
	return d, nil
}

// mergeSpans adds spans to old, a span sent again replacing its earlier
// form, in start time order.
func mergeSpans(old, spans []map[string]any) []map[string]any {
	byID := map[string]int{}
	out := append([]map[string]any{}, old...)
	for i, s := range out {
		id, _ := s["span_id"].(string)
		byID[id] = i
	}
	for _, s := range spans {
		id, _ := s["span_id"].(string)
		if i, ok := byID[id]; ok {
			out[i] = s
			continue
		}
		byID[id] = len(out)
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return spanStart(out[i]) < spanStart(out[j]) })
	return out
}

func spanStart(s map[string]any) uint64 { return spanTime(s, "start_time_unix_nano") }

func spanEnd(s map[string]any) uint64 { return spanTime(s, "end_time_unix_nano") }

// spanTime reads a time of a span, converted here or read back from JSON.
func spanTime(s map[string]any, key string) uint64 {
	switch v := s[key].(type) {
	case uint64:
		return v
	case json.Number:
		n, _ := strconv.ParseUint(v.String(), 10, 64)
		return n
	}
	return 0
}

// fillTraceFromSpans derives a trace's info from its spans, as MLflow's
// server does for spans that arrive before (or without) the trace's info:
// the root span gives the times, the state, the name and the previews;
// without it the trace stays in progress from its earliest span.
func fillTraceFromSpans(t *wharf.Trace, spans []map[string]any) {
	if t.Tags == nil {
		t.Tags = map[string]string{}
	}
	if len(spans) > 0 {
		t.RequestTime = int64(spanStart(spans[0]) / 1e6)
	}
	for _, s := range spans {
		if s["parent_span_id"] != nil {
			continue
		}
		start, end := spanStart(s), spanEnd(s)
		t.RequestTime = int64(start / 1e6)
		if end >= start && end > 0 {
			t.ExecutionTime = int64((end - start) / 1e6)
		}
		t.State = wharf.TraceStateOK
		if st, _ := s["status"].(map[string]any); st["code"] == "STATUS_CODE_ERROR" {
			t.State = wharf.TraceStateError
		}
		if name, _ := s["name"].(string); name != "" {
			t.Tags["mlflow.traceName"] = name
		}
		attrs, _ := s["attributes"].(map[string]any)
		t.RequestPreview = preview(attrs[spanInputsAttr])
		t.ResponsePreview = preview(attrs[spanOutputsAttr])
	}
}

func preview(v any) string {
	s, _ := v.(string)
	if r := []rune(s); len(r) > previewLength {
		return string(r[:previewLength-3]) + "..."
	}
	return s
}
