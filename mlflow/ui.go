package mlflow

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wharfml/wharf"
)

// The routes MLflow's web UI calls beside the REST API: metric histories
// of many runs for its charts, the datasets of experiments, and artifact
// files by run, model version or logged model, read and (for runs)
// written. Their checks and messages are those of MLflow's server.

// MLflow's bounds on the UI's metric and dataset calls.
const (
	maxBulkHistoryRuns      = 100
	maxBulkHistoryResults   = 25000
	maxIntervalResultsRun   = 2500
	maxDatasetExperimentIDs = 20
	maxUploadArtifactBytes  = 10 << 20
)

type bulkMetricsResponse struct {
	Metrics []mlflowMetric `json:"metrics"`
}

// getMetricHistoryBulk answers metrics/get-history-bulk: the whole history
// of one metric in up to 100 runs.
func (h *Handler) getMetricHistoryBulk(r *http.Request, ws string, a *args) (any, error) {
	runIDs := a.strs("run_id")
	if len(runIDs) == 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "GetMetricHistoryBulk request must specify at least one run_id.")
	}
	if len(runIDs) > maxBulkHistoryRuns {
		return nil, wharf.Errorf(wharf.EINVALID, "GetMetricHistoryBulk request cannot specify more than %d run_ids. Received %d run_ids.", maxBulkHistoryRuns, len(runIDs))
	}
	if !a.query.Has("metric_key") {
		return nil, wharf.Errorf(wharf.EINVALID, "GetMetricHistoryBulk request must specify a metric_key.")
	}
	key := a.query.Get("metric_key")
	limit := int64(maxBulkHistoryResults)
	if n, ok := a.int64("max_results"); ok {
		limit = min(n, limit)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	ms, err := h.Store.MetricHistoryBulk(r.Context(), ws, runIDs, key, int(limit))
	if err != nil {
		return nil, err
	}
	out := bulkMetricsResponse{Metrics: make([]mlflowMetric, 0, len(ms))}
	for _, m := range ms {
		out.Metrics = append(out.Metrics, mlflowMetric{Key: m.Key, Value: mlflowDouble(m.Value), Timestamp: m.Timestamp, Step: m.Step, RunID: m.RunID})
	}
	return out, nil
}

type intervalMetricsResponse struct {
	Metrics []mlflowMetric `json:"metrics,omitempty"`
}

// getMetricHistoryBulkInterval answers metrics/get-history-bulk-interval:
// each run's history of one metric sampled to at most max_results values,
// within [start_step, end_step] when both are given.
func (h *Handler) getMetricHistoryBulkInterval(r *http.Request, ws string, a *args) (any, error) {
	runIDs := a.strs("run_ids")
	if len(runIDs) == 0 {
		a.check(missingParam("run_ids"))
	} else if len(runIDs) > maxBulkHistoryRuns {
		a.check(wharf.Errorf(wharf.EINVALID, "GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids.", maxBulkHistoryRuns, len(runIDs)).WithField("run_ids"))
	}
	key := a.required("metric_key")
	start, hasStart := a.int64("start_step")
	end, hasEnd := a.int64("end_step")
	limit := int64(maxIntervalResultsRun)
	if n, ok := a.int64("max_results"); ok {
		if n < 1 || n > maxIntervalResultsRun {
			a.check(wharf.Errorf(wharf.EINVALID, "max_results must be between 1 and %d. See the API docs for more information about request parameters.", maxIntervalResultsRun).WithField("max_results"))
		}
		limit = n
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	var steps *[2]int64
	switch {
	case hasStart && hasEnd:
		if start > end {
			return nil, wharf.Errorf(wharf.EINVALID, "end_step must be greater than start_step. Found start_step=%d and end_step=%d.", start, end)
		}
		steps = &[2]int64{start, end}
	case hasStart || hasEnd:
		return nil, wharf.Errorf(wharf.EINVALID, "If either start step or end step are specified, both must be specified.")
	}
	ms, err := h.Store.MetricHistoryBulkInterval(r.Context(), ws, runIDs, key, int(limit), steps)
	if err != nil {
		return nil, err
	}
	var out intervalMetricsResponse
	for _, m := range ms {
		out.Metrics = append(out.Metrics, mlflowMetric{Key: m.Key, Value: mlflowDouble(m.Value), Timestamp: m.Timestamp, Step: m.Step, RunID: m.RunID})
	}
	return out, nil
}

type mlflowDatasetSummary struct {
	ExperimentID string  `json:"experiment_id"`
	Name         string  `json:"name"`
	Digest       string  `json:"digest"`
	Context      *string `json:"context,omitempty"`
}

type searchDatasetsResponse struct {
	DatasetSummaries []mlflowDatasetSummary `json:"dataset_summaries,omitempty"`
}

// searchDatasets answers experiments/search-datasets: the datasets the
// runs of up to 20 experiments used.
func (h *Handler) searchDatasets(r *http.Request, ws string, a *args) (any, error) {
	ids := a.ids("experiment_ids")
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "SearchDatasets request must specify at least one experiment_id.")
	}
	if len(ids) > maxDatasetExperimentIDs {
		return nil, wharf.Errorf(wharf.EINVALID, "SearchDatasets request cannot specify more than %d experiment_ids. Received %d experiment_ids.", maxDatasetExperimentIDs, len(ids))
	}
	ds, err := h.Store.SearchDatasets(r.Context(), ws, ids)
	if err != nil {
		return nil, err
	}
	var out searchDatasetsResponse
	for _, d := range ds {
		s := mlflowDatasetSummary{ExperimentID: d.ExperimentID, Name: d.Name, Digest: d.Digest}
		if d.HasContext {
			s.Context = &d.Context
		}
		out.DatasetSummaries = append(out.DatasetSummaries, s)
	}
	return out, nil
}

// artifactLocator finds, from a request's query, the artifact location a
// file is read from or written to, and the file's path below it.
type artifactLocator func(ctx context.Context, ws string, q url.Values) (rootURI, sub string, err error)

// fileAt resolves a UI file request to the stored path of the file: the
// path must be safe, and the location one of the artifact proxy.
func (h *Handler) fileAt(w http.ResponseWriter, r *http.Request, locate artifactLocator) (ws, p string, ok bool) {
	ws, err := h.workspace(r)
	if err == nil && h.Blobs == nil {
		err = wharf.Errorf(wharf.EUNAVAILABLE, "artifact serving is not configured on this server")
	}
	var rootURI, sub string
	if err == nil {
		rootURI, sub, err = locate(r.Context(), ws, r.URL.Query())
	}
	if err == nil {
		sub, err = cleanArtifactPath(sub, false)
	}
	if err == nil {
		root, isProxy := ArtifactRoot(rootURI)
		if !isProxy {
			err = wharf.Errorf(wharf.EINVALID, "artifact location %q is not served by this server", rootURI)
		}
		p = joinArtifactPath(root, sub)
	}
	if err != nil {
		h.WriteError(w, r, err)
		return "", "", false
	}
	return ws, p, true
}

// queryParam reads a required query parameter.
func queryParam(q url.Values, name string) (string, error) {
	if v := q.Get(name); v != "" {
		return v, nil
	}
	return "", missingParam(name)
}

// runFile locates a run's artifact by run_id (or run_uuid) and path.
func (h *Handler) runFile(idParam string) artifactLocator {
	return func(ctx context.Context, ws string, q url.Values) (string, string, error) {
		id := q.Get(idParam)
		if id == "" && idParam == "run_id" {
			id = q.Get("run_uuid")
		}
		if id == "" {
			return "", "", missingParam(idParam)
		}
		p, err := queryParam(q, "path")
		if err != nil {
			return "", "", err
		}
		run, err := h.Store.FindRun(ctx, ws, id)
		if err != nil {
			return "", "", err
		}
		return run.ArtifactURI, p, nil
	}
}

// getRunArtifactFile answers get-artifact: one file of a run.
func (h *Handler) getRunArtifactFile(w http.ResponseWriter, r *http.Request) {
	if ws, p, ok := h.fileAt(w, r, h.runFile("run_id")); ok {
		h.serveArtifact(w, r, ws, p)
	}
}

// getModelVersionArtifactFile answers model-versions/get-artifact: one
// file of a registered version, below its download URI.
func (h *Handler) getModelVersionArtifactFile(w http.ResponseWriter, r *http.Request) {
	ws, p, ok := h.fileAt(w, r, func(ctx context.Context, ws string, q url.Values) (string, string, error) {
		name, err := queryParam(q, "name")
		if err != nil {
			return "", "", err
		}
		ver, err := queryParam(q, "version")
		if err != nil {
			return "", "", err
		}
		sub, err := queryParam(q, "path")
		if err != nil {
			return "", "", err
		}
		n, perr := strconv.ParseInt(ver, 10, 64)
		if perr != nil {
			return "", "", wharf.Errorf(wharf.EINVALID, "Version must be an integer, got '%s'", ver).WithField("version")
		}
		v, err := h.Store.FindModelVersion(ctx, ws, name, n)
		if err != nil {
			return "", "", err
		}
		uri, err := h.downloadURI(ctx, ws, &wharf.ModelVersion{Workspace: ws, Name: v.Name, Version: v.Version, Source: v.Source})
		if err != nil {
			return "", "", err
		}
		// A runs:/ download URI is the client's to resolve; the server
		// reads the run's files itself.
		uri, err = wharf.ModelLocation(ctx, h.Store, ws, &wharf.ModelVersion{Source: uri})
		return uri, sub, err
	})
	if ok {
		h.serveArtifact(w, r, ws, p)
	}
}

// getLoggedModelArtifactFile answers logged-models/{id}/artifacts/files:
// one file of a logged model.
func (h *Handler) getLoggedModelArtifactFile(w http.ResponseWriter, r *http.Request) {
	ws, p, ok := h.fileAt(w, r, func(ctx context.Context, ws string, q url.Values) (string, string, error) {
		sub := q.Get("artifact_file_path")
		if sub == "" {
			return "", "", wharf.Errorf(wharf.EINVALID, `Request must include the "artifact_file_path" query parameter.`)
		}
		m, err := h.Store.FindLoggedModel(ctx, ws, r.PathValue("model_id"))
		if err != nil {
			return "", "", err
		}
		return m.ArtifactURI, sub, nil
	})
	if ok {
		h.serveArtifact(w, r, ws, p)
	}
}

// uploadRunArtifact answers upload-artifact: the request body, up to
// 10 MB, becomes the run's file at path. MLflow answers with an empty
// body.
func (h *Handler) uploadRunArtifact(w http.ResponseWriter, r *http.Request) {
	ws, p, ok := h.fileAt(w, r, func(ctx context.Context, ws string, q url.Values) (string, string, error) {
		if q.Get("run_uuid") == "" {
			return "", "", wharf.Errorf(wharf.EINVALID, "Request must specify run_uuid.")
		}
		if q.Get("path") == "" {
			return "", "", wharf.Errorf(wharf.EINVALID, "Request must specify path.")
		}
		// A job's token writes only its own runs, here as through the
		// REST API.
		if c := wharf.CallerFromContext(ctx); c != nil && c.Job != "" {
			run, err := h.Store.FindRun(ctx, ws, q.Get("run_uuid"))
			if err == nil && run.Tags[jobTag] != c.Job {
				err = wharf.Errorf(wharf.EFORBIDDEN, "job %s may write only its own runs; run %s is not one of them", c.Job, run.ID)
			}
			if err != nil {
				return "", "", err
			}
		}
		return h.runFile("run_uuid")(ctx, ws, q)
	})
	if !ok {
		return
	}
	tooLarge := wharf.Errorf(wharf.EINVALID, "Artifact size is too large. Max size is 10MB.")
	if r.ContentLength > maxUploadArtifactBytes {
		h.WriteError(w, r, tooLarge)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxUploadArtifactBytes+1))
	switch {
	case err != nil:
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "read the artifact: %v", err))
		return
	case len(data) == 0:
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "Request must specify data."))
		return
	case len(data) > maxUploadArtifactBytes:
		h.WriteError(w, r, tooLarge)
		return
	}
	digest, size, err := h.Blobs.Put(r.Context(), bytes.NewReader(data))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	a := &wharf.Artifact{Workspace: ws, Path: p, Digest: digest, Size: size, UpdatedAt: nowMillis()}
	if err := h.Store.PutArtifact(r.Context(), a); err != nil {
		h.WriteError(w, r, fmt.Errorf("upload artifact: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
}
