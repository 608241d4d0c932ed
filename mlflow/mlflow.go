// Package mlflow serves MLflow's REST protocol: tracking, the model
// registry (logged models included) and the artifact proxy, so that the
// unchanged mlflow client, 2.x or 3.x, works against a Wharf workspace.
// Each workspace is its own MLflow namespace: with
// MLFLOW_TRACKING_URI=<server>/mlflow/v1.0/workspaces/<ws> the client
// appends /api/2.0/mlflow/... to it.
//
// The package knows the protocol, not the server: Register puts its routes
// into a Group, which authenticates, authorizes, audits and measures each
// request as every other route of the server, and answers its own refusals
// (401, 403, a bad workspace name) with WriteError, in MLflow's shape.
package mlflow

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/wharfml/wharf"
)

// Prefix is the root of a workspace's MLflow API, the path of its tracking
// URI; routes are registered below it.
const Prefix = "/mlflow/v1.0/workspaces/{workspace}"

// TrackingURI is a workspace's MLFLOW_TRACKING_URI on the server at
// serverURL.
func TrackingURI(serverURL, workspace string) string {
	return serverURL + strings.Replace(Prefix, "{workspace}", workspace, 1)
}

// Group is where a Handler registers its routes: below Prefix, each guarded
// by its action at the request's workspace, with errors of the guard
// written by the Handler's WriteError. Wharf's http.Server.Group is one.
type Group interface {
	// Route registers h for pattern, "METHOD /path" below the prefix,
	// for callers granted action at the request's scope.
	Route(pattern, action string, h http.HandlerFunc)
	// Upload is Route for a route whose body is streamed content, exempt
	// from the size limit on JSON bodies.
	Upload(pattern, action string, h http.HandlerFunc)
	// Authenticated registers h for any caller with a valid token.
	Authenticated(pattern string, h http.HandlerFunc)
}

// Handler serves the MLflow API of every workspace.
type Handler struct {
	Store wharf.Store
	// Blobs holds artifact content; nil makes the artifact proxy answer
	// TEMPORARILY_UNAVAILABLE, as MLflow's server does with artifact
	// serving off.
	Blobs  wharf.BlobStore
	Logger *slog.Logger

	// spansMu serializes the updates of traces.json by OTLP ingestion,
	// each a read, a merge and a write.
	spansMu sync.Mutex
}

func (h *Handler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// bothPrefixes registers each route under /api/ also under /ajax-api/,
// where MLflow's server mounts every route of its services for its web UI.
type bothPrefixes struct{ Group }

// ajaxPattern is pattern under /ajax-api/, if it is under /api/.
func ajaxPattern(pattern string) (string, bool) {
	method, p, _ := strings.Cut(pattern, " ")
	rest, ok := strings.CutPrefix(p, "/api/")
	return method + " /ajax-api/" + rest, ok
}

func (b bothPrefixes) Route(pattern, action string, h http.HandlerFunc) {
	b.Group.Route(pattern, action, h)
	if ajax, ok := ajaxPattern(pattern); ok {
		b.Group.Route(ajax, action, h)
	}
}

func (b bothPrefixes) Upload(pattern, action string, h http.HandlerFunc) {
	b.Group.Upload(pattern, action, h)
	if ajax, ok := ajaxPattern(pattern); ok {
		b.Group.Upload(ajax, action, h)
	}
}

// Register registers the MLflow API into g: tracking, the model registry
// (logged models included), the artifact proxy and the routes of MLflow's
// web UI, each route with the action its role check uses. Every route
// under /api/ answers under /ajax-api/ too, as in MLflow's server.
func (h *Handler) Register(root Group) {
	g := bothPrefixes{root}
	const api = "/api/2.0/mlflow/"
	g.Route("POST "+api+"experiments/create", wharf.ActionExperimentWrite, h.call(h.createExperiment))
	g.Route("GET "+api+"experiments/get", wharf.ActionExperimentRead, h.call(h.getExperiment))
	g.Route("GET "+api+"experiments/get-by-name", wharf.ActionExperimentRead, h.call(h.getExperimentByName))
	g.Route("POST "+api+"experiments/search", wharf.ActionExperimentRead, h.call(h.searchExperiments))
	g.Route("GET "+api+"experiments/search", wharf.ActionExperimentRead, h.call(h.searchExperiments))
	g.Route("POST "+api+"experiments/update", wharf.ActionExperimentWrite, h.call(h.updateExperiment))
	g.Route("POST "+api+"experiments/delete", wharf.ActionExperimentDelete, h.call(h.deleteExperiment))
	g.Route("POST "+api+"experiments/restore", wharf.ActionExperimentWrite, h.call(h.restoreExperiment))
	g.Route("POST "+api+"experiments/set-experiment-tag", wharf.ActionExperimentWrite, h.call(h.setExperimentTag))
	g.Route("POST "+api+"experiments/delete-experiment-tag", wharf.ActionExperimentWrite, h.call(h.deleteExperimentTag))

	g.Route("POST "+api+"runs/create", wharf.ActionExperimentWrite, h.call(h.createRun))
	g.Route("GET "+api+"runs/get", wharf.ActionExperimentRead, h.call(h.getRun))
	g.Route("POST "+api+"runs/update", wharf.ActionExperimentWrite, h.call(h.updateRun))
	g.Route("POST "+api+"runs/delete", wharf.ActionExperimentDelete, h.call(h.deleteRun))
	g.Route("POST "+api+"runs/restore", wharf.ActionExperimentWrite, h.call(h.restoreRun))
	g.Route("POST "+api+"runs/search", wharf.ActionExperimentRead, h.call(h.searchRuns))
	g.Route("POST "+api+"runs/log-metric", wharf.ActionExperimentWrite, h.call(h.logMetric))
	g.Route("POST "+api+"runs/log-parameter", wharf.ActionExperimentWrite, h.call(h.logParam))
	g.Route("POST "+api+"runs/set-tag", wharf.ActionExperimentWrite, h.call(h.setTag))
	g.Route("POST "+api+"runs/delete-tag", wharf.ActionExperimentWrite, h.call(h.deleteTag))
	g.Route("POST "+api+"runs/log-batch", wharf.ActionExperimentWrite, h.callFast(h.serveLogBatch, h.logBatch))
	g.Route("POST "+api+"runs/log-inputs", wharf.ActionExperimentWrite, h.call(h.logInputs))
	g.Route("POST "+api+"runs/outputs", wharf.ActionExperimentWrite, h.call(h.logOutputs))
	g.Route("POST "+api+"runs/log-model", wharf.ActionExperimentWrite, h.call(h.logModel))
	g.Route("GET "+api+"metrics/get-history", wharf.ActionExperimentRead, h.call(h.getMetricHistory))
	g.Route("GET "+api+"artifacts/list", wharf.ActionArtifactRead, h.call(h.listRunArtifacts))

	// The web UI's own routes. MLflow's server mounts get-history-bulk,
	// search-datasets, upload-artifact and the logged-model files route
	// under /ajax-api/ only; here they answer under /api/ as well.
	g.Route("GET "+api+"metrics/get-history-bulk", wharf.ActionExperimentRead, h.call(h.getMetricHistoryBulk))
	g.Route("GET "+api+"metrics/get-history-bulk-interval", wharf.ActionExperimentRead, h.call(h.getMetricHistoryBulkInterval))
	g.Route("POST "+api+"experiments/search-datasets", wharf.ActionExperimentRead, h.call(h.searchDatasets))
	g.Upload("POST "+api+"upload-artifact", wharf.ActionArtifactWrite, h.uploadRunArtifact)
	root.Route("GET /get-artifact", wharf.ActionArtifactRead, h.getRunArtifactFile)
	root.Route("GET /model-versions/get-artifact", wharf.ActionArtifactRead, h.getModelVersionArtifactFile)

	const lm = api + "logged-models"
	g.Route("POST "+lm, wharf.ActionModelWrite, h.call(h.createLoggedModel))
	g.Route("POST "+lm+"/search", wharf.ActionModelRead, h.call(h.searchLoggedModels))
	g.Route("GET "+lm+"/{model_id}", wharf.ActionModelRead, h.call(h.getLoggedModel))
	g.Route("DELETE "+lm+"/{model_id}", wharf.ActionModelDelete, h.call(h.deleteLoggedModel))
	g.Route("PATCH "+lm+"/{model_id}", wharf.ActionModelWrite, h.call(h.finalizeLoggedModel))
	g.Route("PATCH "+lm+"/{model_id}/tags", wharf.ActionModelWrite, h.call(h.setLoggedModelTags))
	// Tag keys may hold slashes.
	g.Route("DELETE "+lm+"/{model_id}/tags/{tag_key...}", wharf.ActionModelWrite, h.call(h.deleteLoggedModelTag))
	g.Route("POST "+lm+"/{model_id}/params", wharf.ActionModelWrite, h.call(h.logLoggedModelParams))
	g.Route("GET "+lm+"/{model_id}/artifacts/directories", wharf.ActionArtifactRead, h.call(h.listLoggedModelArtifacts))
	g.Route("GET "+lm+"/{model_id}/artifacts/files", wharf.ActionArtifactRead, h.getLoggedModelArtifactFile)

	const rm = api + "registered-models/"
	g.Route("POST "+rm+"create", wharf.ActionModelWrite, h.call(h.createRegisteredModel))
	g.Route("GET "+rm+"get", wharf.ActionModelRead, h.call(h.getRegisteredModel))
	g.Route("POST "+rm+"rename", wharf.ActionModelWrite, h.call(h.renameRegisteredModel))
	g.Route("PATCH "+rm+"update", wharf.ActionModelWrite, h.call(h.updateRegisteredModel))
	g.Route("DELETE "+rm+"delete", wharf.ActionModelDelete, h.call(h.deleteRegisteredModel))
	g.Route("GET "+rm+"search", wharf.ActionModelRead, h.call(h.searchRegisteredModels))
	// The client POSTs first and falls back to GET on ENDPOINT_NOT_FOUND.
	g.Route("POST "+rm+"get-latest-versions", wharf.ActionModelRead, h.call(h.getLatestVersions))
	g.Route("GET "+rm+"get-latest-versions", wharf.ActionModelRead, h.call(h.getLatestVersions))
	g.Route("POST "+rm+"set-tag", wharf.ActionModelWrite, h.call(h.setRegisteredModelTag))
	g.Route("DELETE "+rm+"delete-tag", wharf.ActionModelWrite, h.call(h.deleteRegisteredModelTag))
	g.Route("POST "+rm+"alias", wharf.ActionModelWrite, h.call(h.setModelAlias))
	g.Route("DELETE "+rm+"alias", wharf.ActionModelWrite, h.call(h.deleteModelAlias))
	g.Route("GET "+rm+"alias", wharf.ActionModelRead, h.call(h.getModelVersionByAlias))

	const mv = api + "model-versions/"
	g.Route("POST "+mv+"create", wharf.ActionModelWrite, h.call(h.createModelVersion))
	g.Route("GET "+mv+"get", wharf.ActionModelRead, h.call(h.getModelVersion))
	g.Route("PATCH "+mv+"update", wharf.ActionModelWrite, h.call(h.updateModelVersion))
	g.Route("DELETE "+mv+"delete", wharf.ActionModelDelete, h.call(h.deleteModelVersion))
	g.Route("GET "+mv+"search", wharf.ActionModelRead, h.call(h.searchModelVersions))
	g.Route("POST "+mv+"transition-stage", wharf.ActionModelWrite, h.call(h.transitionModelVersionStage))
	g.Route("GET "+mv+"get-download-uri", wharf.ActionModelRead, h.call(h.getModelVersionDownloadURI))
	g.Route("POST "+mv+"set-tag", wharf.ActionModelWrite, h.call(h.setModelVersionTag))
	g.Route("DELETE "+mv+"delete-tag", wharf.ActionModelWrite, h.call(h.deleteModelVersionTag))

	// Tracing: the v3 API and the v2 one older servers have, to which the
	// client falls back on ENDPOINT_NOT_FOUND.
	const tr2, tr3 = api + "traces", "/api/3.0/mlflow/traces"
	g.Route("POST "+tr3, wharf.ActionExperimentWrite, h.call(h.startTraceV3))
	g.Route("POST "+tr2, wharf.ActionExperimentWrite, h.call(h.startTraceV2))
	g.Route("PATCH "+tr2+"/{request_id}", wharf.ActionExperimentWrite, h.call(h.endTraceV2))
	g.Route("GET "+tr3+"/{trace_id}", wharf.ActionExperimentRead, h.call(h.getTraceInfoV3))
	g.Route("GET "+tr2+"/{request_id}/info", wharf.ActionExperimentRead, h.call(h.getTraceInfoV2))
	g.Route("POST "+tr3+"/search", wharf.ActionExperimentRead, h.call(h.searchTracesV3))
	g.Route("GET "+tr2, wharf.ActionExperimentRead, h.call(h.searchTracesV2))
	g.Route("PATCH "+tr2+"/{request_id}/tags", wharf.ActionExperimentWrite, h.call(h.setTraceTag("request_id")))
	g.Route("PATCH "+tr3+"/{trace_id}/tags", wharf.ActionExperimentWrite, h.call(h.setTraceTag("trace_id")))
	g.Route("DELETE "+tr2+"/{request_id}/tags", wharf.ActionExperimentWrite, h.call(h.deleteTraceTag("request_id")))
	g.Route("DELETE "+tr3+"/{trace_id}/tags", wharf.ActionExperimentWrite, h.call(h.deleteTraceTag("trace_id")))
	g.Route("POST "+tr2+"/delete-traces", wharf.ActionExperimentDelete, h.call(h.deleteTraces))
	g.Route("POST "+tr3+"/delete-traces", wharf.ActionExperimentDelete, h.call(h.deleteTraces))
	g.Route("POST "+tr3+"/{trace_id}/assessments", wharf.ActionExperimentWrite, h.call(h.createAssessment))
	g.Route("GET "+tr3+"/{trace_id}/assessments/{assessment_id}", wharf.ActionExperimentRead, h.call(h.getAssessment))
	g.Route("PATCH "+tr3+"/{trace_id}/assessments/{assessment_id}", wharf.ActionExperimentWrite, h.call(h.updateAssessment))
	g.Route("DELETE "+tr3+"/{trace_id}/assessments/{assessment_id}", wharf.ActionExperimentWrite, h.call(h.deleteAssessment))

	// Spans from OpenTelemetry exporters (OTLP/HTTP).
	g.Route("POST /v1/traces", wharf.ActionExperimentWrite, h.exportTraces)

	const art = "/api/2.0/mlflow-artifacts/artifacts"
	g.Upload("PUT "+art+"/{path...}", wharf.ActionArtifactWrite, h.putArtifact)
	g.Route("GET "+art+"/{path...}", wharf.ActionArtifactRead, h.getArtifact)
	g.Route("DELETE "+art+"/{path...}", wharf.ActionArtifactDelete, h.deleteArtifact)
	g.Route("GET "+art, wharf.ActionArtifactRead, h.listArtifacts)

	// Everything else under the prefix is ENDPOINT_NOT_FOUND in MLflow's
	// shape: the client's fallback from POST to GET get-latest-versions,
	// and its probes for optional endpoints, key on that code. These routes
	// need a valid token but no role: saying that an endpoint does not
	// exist reveals nothing about the workspace.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		g.Authenticated(m+" /{rest...}", h.notFound)
	}
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, Error{
		ErrorCode: "ENDPOINT_NOT_FOUND",
		Message:   "no MLflow endpoint " + r.Method + " " + r.URL.Path,
	})
}

// callFunc handles one MLflow JSON call in workspace ws. It returns the
// response object, or nil for MLflow's empty response {}. It reads its
// parameters from a, whose first error it returns (a.Err) before acting on
// any of them.
type callFunc func(r *http.Request, ws string, a *args) (any, error)

// call adapts a callFunc: it checks the workspace exists, parses the
// parameters, keeps a job's token to its own runs, and writes the result or
// the error in MLflow's shape.
func (h *Handler) call(fn callFunc) http.HandlerFunc {
	return h.callFast(nil, fn)
}

// fastCallFunc handles the common bodies of one MLflow call from their
// bytes, in workspace ws, sparing them the general parser; handled is
// false for a body it leaves to the call's callFunc. It checks what
// serveCall checks before a callFunc runs (checkJobRunWrite), except that
// the workspace exists: a call that finds its run found the workspace
// too, so the workspace is looked up only to word a not-found answer
// (see notFoundIn).
type fastCallFunc func(r *http.Request, ws string, body []byte) (out any, handled bool, err error)

// callFast is call for a route whose common bodies fast handles.
func (h *Handler) callFast(fast fastCallFunc, fn callFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := h.serveCall(r, fast, fn)
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		if out == nil {
			out = struct{}{}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *Handler) serveCall(r *http.Request, fast fastCallFunc, fn callFunc) (any, error) {
	var body []byte
	if fast != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		var err error
		if body, err = readBody(r); err != nil {
			// A missing workspace is the first error, as below.
			if _, wsErr := h.workspace(r); wsErr != nil {
				return nil, wsErr
			}
			return nil, err
		}
		// The fast path checks the workspace only when the store finds
		// nothing (see fastCallFunc).
		if out, handled, err := fast(r, r.PathValue("workspace"), body); handled {
			return out, err
		}
	}
	ws, err := h.workspace(r)
	if err != nil {
		return nil, err
	}
	var a *args
	if body != nil {
		a, err = argsFromBody(body)
	} else {
		a, err = parseArgs(r)
	}
	if err != nil {
		return nil, err
	}
	// peek, not str: a malformed parameter is the handler's to report,
	// in its turn.
	runID := a.peek("run_id")
	if runID == "" {
		runID = a.peek("run_uuid")
	}
	if err := h.checkJobRunWrite(r, ws, a.peek("key"), runID); err != nil {
		return nil, err
	}
	out, err := fn(r, ws, a)
	if err == nil {
		// Handlers check a.Err before they act; this keeps one that
		// forgot from answering 200 to a malformed request.
		err = a.Err()
	}
	return out, err
}

// jobTag is the run tag naming the job a run belongs to: set by the
// scheduler on a step's run, and on every run a job's token creates.
const jobTag = "wharf.job"

// checkJobRunWrite keeps a job's token to its own runs: a write that names
// a run (id) must name one whose jobTag is the token's job, and the tag
// itself (key, the request's tag key) cannot be changed with a job's
// token. Other callers pass.
func (h *Handler) checkJobRunWrite(r *http.Request, ws, key, id string) error {
	c := wharf.CallerFromContext(r.Context())
	if c == nil || c.Job == "" || r.Method == http.MethodGet {
		return nil
	}
	if key == jobTag {
		return wharf.Errorf(wharf.EFORBIDDEN, "the tag %s is set by Wharf and cannot be changed by a job", jobTag)
	}
	if id == "" {
		return nil
	}
	run, err := h.Store.FindRun(r.Context(), ws, id)
	if err != nil {
		// The handler answers a missing run in MLflow's words.
		return nil
	}
	if run.Tags[jobTag] != c.Job {
		return wharf.Errorf(wharf.EFORBIDDEN, "job %s may write only its own runs; run %s is not one of them", c.Job, id)
	}
	return nil
}

// workspace returns the workspace named in the path, which must exist:
// each workspace is its own MLflow namespace, and a store must not be
// asked to create experiment "0" in a workspace nobody made.
func (h *Handler) workspace(r *http.Request) (string, error) {
	name := r.PathValue("workspace")
	if _, err := h.Store.FindWorkspace(r.Context(), name); err != nil {
		if wharf.IsNotFound(err) {
			return "", wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", name)
		}
		return "", err
	}
	return name, nil
}

// notFoundIn returns err, or the workspace's own error when err is
// ENOTFOUND because the request's workspace does not exist: the answer a
// call that checked the workspace first would give.
func (h *Handler) notFoundIn(r *http.Request, err error) error {
	if !wharf.IsNotFound(err) {
		return err
	}
	if _, wsErr := h.workspace(r); wsErr != nil {
		return wsErr
	}
	return err
}

// callerID is the principal making the request, recorded as MLflow's
// user_id: the identity the token proved, not the one the client claims.
func callerID(r *http.Request) string {
	if c := wharf.CallerFromContext(r.Context()); c != nil {
		return c.PrincipalID
	}
	return ""
}
