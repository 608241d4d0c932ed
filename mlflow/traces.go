package mlflow

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// MLflow tracing. The client reports a finished trace's info (StartTraceV3,
// or StartTrace then EndTrace on the v2 API) and then uploads its spans as
// traces.json through the artifact proxy, below the trace's
// mlflow.artifactLocation tag; reading a trace is the reverse. The server
// keeps the info, tags, request metadata and assessments.

// Trace page sizes: MLflow's default, and the most its server returns.
const (
	defaultTraceResults = 100
	maxTraceResults     = 500
)

// traceStates maps TraceInfoV3.State and the v2 TraceStatus, by name or
// number, to the stored state.
var traceStates = map[string]string{
	"STATE_UNSPECIFIED": wharf.TraceStateUnspecified, "TRACE_STATUS_UNSPECIFIED": wharf.TraceStateUnspecified, "0": wharf.TraceStateUnspecified,
	"OK": wharf.TraceStateOK, "1": wharf.TraceStateOK,
	"ERROR": wharf.TraceStateError, "2": wharf.TraceStateError,
	"IN_PROGRESS": wharf.TraceStateInProgress, "3": wharf.TraceStateInProgress,
}

// mlflowTraceLocation is TraceLocation for a trace of an experiment.
type mlflowTraceLocation struct {
	Type             string `json:"type"`
	MlflowExperiment struct {
		ExperimentID string `json:"experiment_id"`
	} `json:"mlflow_experiment"`
}

// mlflowTraceInfo is TraceInfoV3. Times are protobuf's JSON forms of
// Timestamp and Duration.
type mlflowTraceInfo struct {
	TraceID           string              `json:"trace_id"`
	ClientRequestID   string              `json:"client_request_id,omitempty"`
	TraceLocation     mlflowTraceLocation `json:"trace_location"`
	RequestPreview    string              `json:"request_preview,omitempty"`
	ResponsePreview   string              `json:"response_preview,omitempty"`
	RequestTime       string              `json:"request_time"`
	ExecutionDuration string              `json:"execution_duration,omitempty"`
	State             string              `json:"state"`
	TraceMetadata     map[string]string   `json:"trace_metadata"`
	Tags              map[string]string   `json:"tags"`
	Assessments       []json.RawMessage   `json:"assessments,omitempty"`
}

// mlflowTrace is Trace; the server never holds spans, so they are empty.
type mlflowTrace struct {
	TraceInfo mlflowTraceInfo `json:"trace_info"`
	Spans     []struct{}      `json:"spans"`
}

func traceInfoJSON(t *wharf.Trace) mlflowTraceInfo {
	out := mlflowTraceInfo{
		TraceID:         t.ID,
		ClientRequestID: t.ClientRequestID,
		RequestPreview:  t.RequestPreview,
		ResponsePreview: t.ResponsePreview,
		RequestTime:     timestampJSON(t.RequestTime),
		State:           t.State,
		TraceMetadata:   t.Metadata,
		Tags:            t.Tags,
	}
	out.TraceLocation.Type = "MLFLOW_EXPERIMENT"
	out.TraceLocation.MlflowExperiment.ExperimentID = t.ExperimentID
	if t.ExecutionTime >= 0 {
		out.ExecutionDuration = durationJSON(t.ExecutionTime)
	}
	for _, a := range t.Assessments {
		out.Assessments = append(out.Assessments, a.Document)
	}
	return out
}

// mlflowTraceInfoV2 is the v2 API's TraceInfo.
type mlflowTraceInfoV2 struct {
	RequestID       string     `json:"request_id"`
	ExperimentID    string     `json:"experiment_id"`
	TimestampMs     int64      `json:"timestamp_ms"`
	ExecutionTimeMs *int64     `json:"execution_time_ms,omitempty"`
	Status          string     `json:"status"`
	RequestMetadata []mlflowKV `json:"request_metadata"`
	Tags            []mlflowKV `json:"tags"`
}

func traceInfoV2JSON(t *wharf.Trace) mlflowTraceInfoV2 {
	out := mlflowTraceInfoV2{
		RequestID:       t.ID,
		ExperimentID:    t.ExperimentID,
		TimestampMs:     t.RequestTime,
		Status:          t.State,
		RequestMetadata: kvList(t.Metadata),
		Tags:            kvList(t.Tags),
	}
	if t.State == wharf.TraceStateUnspecified {
		out.Status = "TRACE_STATUS_UNSPECIFIED"
	}
	if t.ExecutionTime >= 0 {
		ms := t.ExecutionTime
		out.ExecutionTimeMs = &ms
	}
	return out
}

// timestampJSON writes milliseconds as protobuf's JSON Timestamp.
func timestampJSON(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// durationJSON writes milliseconds as protobuf's JSON Duration.
func durationJSON(ms int64) string {
	return fmt.Sprintf("%d.%03ds", ms/1000, ms%1000)
}

// timestamp reads a Timestamp (an RFC 3339 string) as milliseconds; ok is
// false when absent.
func (a *args) timestamp(name string) (ms int64, ok bool) {
	s := a.str(name)
	if s == "" {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		a.check(invalidParam(a.field(name), s, "an RFC 3339 timestamp"))
		return 0, false
	}
	return t.UnixMilli(), true
}

// duration reads a Duration ("1.5s") as milliseconds; ok is false when
// absent.
func (a *args) duration(name string) (ms int64, ok bool) {
	s := a.str(name)
	if s == "" {
		return 0, false
	}
	secs, frac, _ := strings.Cut(strings.TrimSuffix(s, "s"), ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || !strings.HasSuffix(s, "s") || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" ||
		n < 0 || n > 1<<40 || strings.HasPrefix(secs, "+") {
		a.check(invalidParam(a.field(name), s, "a duration such as \"1.5s\""))
		return 0, false
	}
	nanos, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	return n*1000 + nanos/1e6, true
}

// stringMap reads a map<string, string> (a JSON object of strings).
func (a *args) stringMap(name string) map[string]string {
	o := a.object(name)
	if o == nil {
		return nil
	}
	m := make(map[string]string, len(o.body))
	for k := range o.body {
		m[k] = o.str(k)
	}
	return m
}

// path returns the object at the end of a chain of nested message
// parameters, each of which must be given.
func (a *args) path(names ...string) (*args, error) {
	cur := a
	for _, n := range names {
		next := cur.object(n)
		if err := a.Err(); err != nil {
			return nil, err
		}
		if next == nil {
			return nil, missingParam(cur.field(n))
		}
		cur = next
	}
	return cur, nil
}

// traceIDFromPath returns the trace named in the request's path.
func traceIDFromPath(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if id == "" {
		return "", missingParam(name)
	}
	return id, nil
}

// startTraceV3 records the info of a finished trace (StartTraceV3, which
// the client calls when the trace ends).
func (h *Handler) startTraceV3(r *http.Request, ws string, a *args) (any, error) {
	info, err := a.path("trace", "trace_info")
	if err != nil {
		return nil, err
	}
	t := &wharf.Trace{Workspace: ws, ExecutionTime: -1}
	t.ID = info.required("trace_id")
	t.ClientRequestID = info.str("client_request_id")
	loc, err := info.path("trace_location")
	if err != nil {
		return nil, err
	}
	if typ := loc.str("type"); typ != "" && typ != "MLFLOW_EXPERIMENT" && typ != "1" {
		a.check(wharf.Errorf(wharf.EINVALID, "trace location %s is not supported: Wharf keeps traces in MLflow experiments", typ).WithField("trace.trace_info.trace_location.type"))
	}
	if exp := loc.object("mlflow_experiment"); exp != nil {
		t.ExperimentID = exp.requiredID("experiment_id")
	} else if a.Err() == nil {
		a.check(missingParam("trace.trace_info.trace_location.mlflow_experiment"))
	}
	t.RequestPreview = info.str("request_preview")
	t.ResponsePreview = info.str("response_preview")
	if ms, ok := info.timestamp("request_time"); ok {
		t.RequestTime = ms
	} else {
		a.check(missingParam("trace.trace_info.request_time"))
	}
	if ms, ok := info.duration("execution_duration"); ok {
		t.ExecutionTime = ms
	}
	t.State = info.enum("state", traceStates)
	t.Metadata = info.stringMap("trace_metadata")
	t.Tags = info.stringMap("tags")
	now := nowMillis()
	for _, o := range info.objects("assessments") {
		as, err := newAssessment(o, ws, t.ID, now)
		if err != nil {
			a.check(err)
			break
		}
		t.Assessments = append(t.Assessments, as)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if err := h.Store.CreateTrace(wharf.ArmAudit(r.Context(), http.StatusOK), t); err != nil {
		return nil, err
	}
	return map[string]any{"trace": mlflowTrace{TraceInfo: traceInfoJSON(t), Spans: []struct{}{}}}, nil
}

// startTraceV2 begins a trace on the v2 API; EndTrace completes it. The
// server chooses the id, as MLflow's does.
func (h *Handler) startTraceV2(r *http.Request, ws string, a *args) (any, error) {
	t := &wharf.Trace{Workspace: ws, ExecutionTime: -1, State: wharf.TraceStateInProgress}
	t.ExperimentID = a.requiredID("experiment_id")
	t.RequestTime = a.requiredInt64("timestamp_ms")
	t.Metadata = a.tagMap("request_metadata")
	t.Tags = a.tagMap("tags")
	if err := a.Err(); err != nil {
		return nil, err
	}
	id, err := randomHex()
	if err != nil {
		return nil, err
	}
	t.ID = id
	if err := h.Store.CreateTrace(wharf.ArmAudit(r.Context(), http.StatusOK), t); err != nil {
		return nil, err
	}
	return map[string]any{"trace_info": traceInfoV2JSON(t)}, nil
}

func randomHex() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// endTraceV2 completes a trace begun with startTraceV2.
func (h *Handler) endTraceV2(r *http.Request, ws string, a *args) (any, error) {
	id, err := traceIDFromPath(r, "request_id")
	if err != nil {
		return nil, err
	}
	end := a.requiredInt64("timestamp_ms")
	state := a.enum("status", traceStates)
	if state == "" {
		a.check(missingParam("status"))
	}
	metadata := a.tagMap("request_metadata")
	tags := a.tagMap("tags")
	if err := a.Err(); err != nil {
		return nil, err
	}
	t, err := h.Store.EndTrace(wharf.ArmAudit(r.Context(), http.StatusOK), ws, id, end, state, metadata, tags)
	if err != nil {
		return nil, err
	}
	return map[string]any{"trace_info": traceInfoV2JSON(t)}, nil
}

func (h *Handler) getTraceInfoV3(r *http.Request, ws string, a *args) (any, error) {
	id, err := traceIDFromPath(r, "trace_id")
	if err != nil {
		return nil, err
	}
	t, err := h.Store.FindTrace(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"trace": mlflowTrace{TraceInfo: traceInfoJSON(t), Spans: []struct{}{}}}, nil
}

func (h *Handler) getTraceInfoV2(r *http.Request, ws string, a *args) (any, error) {
	id, err := traceIDFromPath(r, "request_id")
	if err != nil {
		return nil, err
	}
	t, err := h.Store.FindTrace(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"trace_info": traceInfoV2JSON(t)}, nil
}

// traceSearch reads what both search APIs share.
func traceSearch(a *args, experimentIDs []string) wharf.SearchQuery {
	q := a.searchQuery()
	q.ExperimentIDs = experimentIDs
	q.MaxResults = a.maxResults(defaultTraceResults, maxTraceResults)
	if len(experimentIDs) == 0 {
		a.check(missingParam("locations"))
	}
	return q
}

type searchTracesV3Response struct {
	Traces        []mlflowTraceInfo `json:"traces"`
	NextPageToken string            `json:"next_page_token,omitempty"`
}

func (h *Handler) searchTracesV3(r *http.Request, ws string, a *args) (any, error) {
	var ids []string
	for _, loc := range a.objects("locations") {
		if exp := loc.object("mlflow_experiment"); exp != nil {
			ids = append(ids, exp.requiredID("experiment_id"))
		}
	}
	q := traceSearch(a, ids)
	if err := a.Err(); err != nil {
		return nil, err
	}
	ts, next, err := h.Store.SearchTraces(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchTracesV3Response{Traces: []mlflowTraceInfo{}, NextPageToken: next}
	for _, t := range ts {
		out.Traces = append(out.Traces, traceInfoJSON(t))
	}
	return out, nil
}

type searchTracesV2Response struct {
	Traces        []mlflowTraceInfoV2 `json:"traces"`
	NextPageToken string              `json:"next_page_token,omitempty"`
}

func (h *Handler) searchTracesV2(r *http.Request, ws string, a *args) (any, error) {
	q := traceSearch(a, a.ids("experiment_ids"))
	if err := a.Err(); err != nil {
		return nil, err
	}
	ts, next, err := h.Store.SearchTraces(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchTracesV2Response{Traces: []mlflowTraceInfoV2{}, NextPageToken: next}
	for _, t := range ts {
		out.Traces = append(out.Traces, traceInfoV2JSON(t))
	}
	return out, nil
}

// deleteTraces deletes traces of an experiment by id, or by age, and
// then their spans and attachments in the artifact store.
func (h *Handler) deleteTraces(r *http.Request, ws string, a *args) (any, error) {
	d := wharf.TraceDeletion{ExperimentID: a.requiredID("experiment_id")}
	maxTS, byAge := a.int64("max_timestamp_millis")
	maxTraces, limited := a.int64("max_traces")
	d.IDs = a.strs("request_ids")
	if err := a.Err(); err != nil {
		return nil, err
	}
	switch {
	case byAge == (len(d.IDs) > 0):
		return nil, wharf.Errorf(wharf.EINVALID, "Exactly one of `max_timestamp_millis` and `request_ids` must be specified.")
	case limited && !byAge:
		return nil, wharf.Errorf(wharf.EINVALID, "`max_traces` can't be specified if `request_ids` is specified.").WithField("max_traces")
	case limited && maxTraces <= 0:
		return nil, wharf.Errorf(wharf.EINVALID, "`max_traces` must be a positive integer, got %d", maxTraces).WithField("max_traces")
	}
	d.MaxTimestamp, d.MaxTraces = maxTS, int(min(maxTraces, 1<<31-1))
	deleted, err := h.Store.DeleteTraces(r.Context(), ws, d)
	if err != nil {
		return nil, err
	}
	for _, t := range deleted {
		root, ok := ArtifactRoot(t.Tags[wharf.TraceArtifactLocationTag])
		if !ok || root == "" {
			continue
		}
		if err := h.Store.DeleteArtifacts(r.Context(), ws, root); err != nil {
			// The trace is gone; its files are garbage a later delete of
			// the experiment's tree also removes.
			h.log().Warn("deleting a deleted trace's artifacts failed", "workspace", ws, "trace", t.ID, "err", err)
		}
	}
	return map[string]int{"traces_deleted": len(deleted)}, nil
}

// setTraceTag sets a tag of the trace named by the path parameter idParam
// (request_id on the v2 API, trace_id on v3).
func (h *Handler) setTraceTag(idParam string) callFunc {
	return func(r *http.Request, ws string, a *args) (any, error) {
		id, err := traceIDFromPath(r, idParam)
		if err != nil {
			return nil, err
		}
		key := a.required("key")
		value := a.str("value")
		if err := a.Err(); err != nil {
			return nil, err
		}
		return nil, h.Store.SetTraceTag(r.Context(), ws, id, key, value)
	}
}

// deleteTraceTag is setTraceTag's inverse.
func (h *Handler) deleteTraceTag(idParam string) callFunc {
	return func(r *http.Request, ws string, a *args) (any, error) {
		id, err := traceIDFromPath(r, idParam)
		if err != nil {
			return nil, err
		}
		key := a.required("key")
		if err := a.Err(); err != nil {
			return nil, err
		}
		return nil, h.Store.DeleteTraceTag(r.Context(), ws, id, key)
	}
}
