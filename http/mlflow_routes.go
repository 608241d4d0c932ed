package http

import (
	"net/http"

	"github.com/wharfml/wharf"
)

// mlflowPrefix is the root of a workspace's MLflow API: with
// MLFLOW_TRACKING_URI=<server>/mlflow/v1.0/workspaces/<ws>, the unchanged
// mlflow client appends /api/2.0/mlflow/... to it.
const mlflowPrefix = "/mlflow/v1.0/workspaces/{workspace}"

// registerMLflowRoutes registers the MLflow-compatible API: tracking, the
// model registry (logged models included) and the artifact proxy, each
// route with the action its role check uses.
func (s *Server) registerMLflowRoutes() {
	const api = mlflowPrefix + "/api/2.0/mlflow/"
	s.mlflowRoute("POST "+api+"experiments/create", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleCreateExperiment))
	s.mlflowRoute("GET "+api+"experiments/get", wharf.ActionExperimentRead, s.mlflowJSON(s.handleGetExperiment))
	s.mlflowRoute("GET "+api+"experiments/get-by-name", wharf.ActionExperimentRead, s.mlflowJSON(s.handleGetExperimentByName))
	s.mlflowRoute("POST "+api+"experiments/search", wharf.ActionExperimentRead, s.mlflowJSON(s.handleSearchExperiments))
	s.mlflowRoute("GET "+api+"experiments/search", wharf.ActionExperimentRead, s.mlflowJSON(s.handleSearchExperiments))
	s.mlflowRoute("POST "+api+"experiments/update", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleUpdateExperiment))
	s.mlflowRoute("POST "+api+"experiments/delete", wharf.ActionExperimentDelete, s.mlflowJSON(s.handleDeleteExperiment))
	s.mlflowRoute("POST "+api+"experiments/restore", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleRestoreExperiment))
	s.mlflowRoute("POST "+api+"experiments/set-experiment-tag", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleSetExperimentTag))
	s.mlflowRoute("POST "+api+"experiments/delete-experiment-tag", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleDeleteExperimentTag))

	s.mlflowRoute("POST "+api+"runs/create", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleCreateRun))
	s.mlflowRoute("GET "+api+"runs/get", wharf.ActionExperimentRead, s.mlflowJSON(s.handleGetRun))
	s.mlflowRoute("POST "+api+"runs/update", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleUpdateRun))
	s.mlflowRoute("POST "+api+"runs/delete", wharf.ActionExperimentDelete, s.mlflowJSON(s.handleDeleteRun))
	s.mlflowRoute("POST "+api+"runs/restore", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleRestoreRun))
	s.mlflowRoute("POST "+api+"runs/search", wharf.ActionExperimentRead, s.mlflowJSON(s.handleSearchRuns))
	s.mlflowRoute("POST "+api+"runs/log-metric", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogMetric))
	s.mlflowRoute("POST "+api+"runs/log-parameter", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogParam))
	s.mlflowRoute("POST "+api+"runs/set-tag", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleSetTag))
	s.mlflowRoute("POST "+api+"runs/delete-tag", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleDeleteTag))
	s.mlflowRoute("POST "+api+"runs/log-batch", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogBatch))
	s.mlflowRoute("POST "+api+"runs/log-inputs", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogInputs))
	s.mlflowRoute("POST "+api+"runs/outputs", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogOutputs))
	s.mlflowRoute("POST "+api+"runs/log-model", wharf.ActionExperimentWrite, s.mlflowJSON(s.handleLogModel))
	s.mlflowRoute("GET "+api+"metrics/get-history", wharf.ActionExperimentRead, s.mlflowJSON(s.handleGetMetricHistory))
	s.mlflowRoute("GET "+api+"artifacts/list", wharf.ActionArtifactRead, s.mlflowJSON(s.handleListRunArtifacts))

	const lm = api + "logged-models"
	s.mlflowRoute("POST "+lm, wharf.ActionModelWrite, s.mlflowJSON(s.handleCreateLoggedModel))
	s.mlflowRoute("POST "+lm+"/search", wharf.ActionModelRead, s.mlflowJSON(s.handleSearchLoggedModels))
	s.mlflowRoute("GET "+lm+"/{model_id}", wharf.ActionModelRead, s.mlflowJSON(s.handleGetLoggedModel))
	s.mlflowRoute("DELETE "+lm+"/{model_id}", wharf.ActionModelDelete, s.mlflowJSON(s.handleDeleteLoggedModel))
	s.mlflowRoute("PATCH "+lm+"/{model_id}", wharf.ActionModelWrite, s.mlflowJSON(s.handleFinalizeLoggedModel))
	s.mlflowRoute("PATCH "+lm+"/{model_id}/tags", wharf.ActionModelWrite, s.mlflowJSON(s.handleSetLoggedModelTags))
	// Tag keys may hold slashes.
	s.mlflowRoute("DELETE "+lm+"/{model_id}/tags/{tag_key...}", wharf.ActionModelWrite, s.mlflowJSON(s.handleDeleteLoggedModelTag))
	s.mlflowRoute("POST "+lm+"/{model_id}/params", wharf.ActionModelWrite, s.mlflowJSON(s.handleLogLoggedModelParams))
	s.mlflowRoute("GET "+lm+"/{model_id}/artifacts/directories", wharf.ActionArtifactRead, s.mlflowJSON(s.handleListLoggedModelArtifacts))

	const rm = api + "registered-models/"
	s.mlflowRoute("POST "+rm+"create", wharf.ActionModelWrite, s.mlflowJSON(s.handleCreateRegisteredModel))
	s.mlflowRoute("GET "+rm+"get", wharf.ActionModelRead, s.mlflowJSON(s.handleGetRegisteredModel))
	s.mlflowRoute("POST "+rm+"rename", wharf.ActionModelWrite, s.mlflowJSON(s.handleRenameRegisteredModel))
	s.mlflowRoute("PATCH "+rm+"update", wharf.ActionModelWrite, s.mlflowJSON(s.handleUpdateRegisteredModel))
	s.mlflowRoute("DELETE "+rm+"delete", wharf.ActionModelDelete, s.mlflowJSON(s.handleDeleteRegisteredModel))
	s.mlflowRoute("GET "+rm+"search", wharf.ActionModelRead, s.mlflowJSON(s.handleSearchRegisteredModels))
	// The client POSTs first and falls back to GET on ENDPOINT_NOT_FOUND.
	s.mlflowRoute("POST "+rm+"get-latest-versions", wharf.ActionModelRead, s.mlflowJSON(s.handleGetLatestVersions))
	s.mlflowRoute("GET "+rm+"get-latest-versions", wharf.ActionModelRead, s.mlflowJSON(s.handleGetLatestVersions))
	s.mlflowRoute("POST "+rm+"set-tag", wharf.ActionModelWrite, s.mlflowJSON(s.handleSetRegisteredModelTag))
	s.mlflowRoute("DELETE "+rm+"delete-tag", wharf.ActionModelWrite, s.mlflowJSON(s.handleDeleteRegisteredModelTag))
	s.mlflowRoute("POST "+rm+"alias", wharf.ActionModelWrite, s.mlflowJSON(s.handleSetModelAlias))
	s.mlflowRoute("DELETE "+rm+"alias", wharf.ActionModelWrite, s.mlflowJSON(s.handleDeleteModelAlias))
	s.mlflowRoute("GET "+rm+"alias", wharf.ActionModelRead, s.mlflowJSON(s.handleGetModelVersionByAlias))

	const mv = api + "model-versions/"
	s.mlflowRoute("POST "+mv+"create", wharf.ActionModelWrite, s.mlflowJSON(s.handleCreateModelVersion))
	s.mlflowRoute("GET "+mv+"get", wharf.ActionModelRead, s.mlflowJSON(s.handleGetModelVersion))
	s.mlflowRoute("PATCH "+mv+"update", wharf.ActionModelWrite, s.mlflowJSON(s.handleUpdateModelVersion))
	s.mlflowRoute("DELETE "+mv+"delete", wharf.ActionModelDelete, s.mlflowJSON(s.handleDeleteModelVersion))
	s.mlflowRoute("GET "+mv+"search", wharf.ActionModelRead, s.mlflowJSON(s.handleSearchModelVersions))
	s.mlflowRoute("POST "+mv+"transition-stage", wharf.ActionModelWrite, s.mlflowJSON(s.handleTransitionModelVersionStage))
	s.mlflowRoute("GET "+mv+"get-download-uri", wharf.ActionModelRead, s.mlflowJSON(s.handleGetModelVersionDownloadURI))
	s.mlflowRoute("POST "+mv+"set-tag", wharf.ActionModelWrite, s.mlflowJSON(s.handleSetModelVersionTag))
	s.mlflowRoute("DELETE "+mv+"delete-tag", wharf.ActionModelWrite, s.mlflowJSON(s.handleDeleteModelVersionTag))

	const art = mlflowPrefix + "/api/2.0/mlflow-artifacts/artifacts"
	s.mlflowUpload("PUT "+art+"/{path...}", wharf.ActionArtifactWrite, s.handlePutArtifact)
	s.mlflowRoute("GET "+art+"/{path...}", wharf.ActionArtifactRead, s.handleGetArtifact)
	s.mlflowRoute("DELETE "+art+"/{path...}", wharf.ActionArtifactDelete, s.handleDeleteArtifact)
	s.mlflowRoute("GET "+art, wharf.ActionArtifactRead, s.handleListArtifacts)

	// Everything else under the prefix is ENDPOINT_NOT_FOUND in MLflow's
	// shape: the client's fallback from POST to GET get-latest-versions,
	// and its probes for optional endpoints, key on that code. These routes
	// need a valid token but no role: saying that an endpoint does not
	// exist reveals nothing about the workspace.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		s.authenticated(m+" "+mlflowPrefix+"/{rest...}", s.handleMLflowNotFound)
		s.routes[len(s.routes)-1].MLflow = true
	}
}

// mlflowUpload registers an upload route: an MLflow route whose body is
// streamed, exempt from the JSON body size limit.
func (s *Server) mlflowUpload(pattern, action string, h http.HandlerFunc) {
	s.mlflowRoute(pattern, action, h)
	s.routes[len(s.routes)-1].RawBody = true
}

func (s *Server) handleMLflowNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, MLflowError{
		ErrorCode: "ENDPOINT_NOT_FOUND",
		Message:   "no MLflow endpoint " + r.Method + " " + r.URL.Path,
	})
}

// mlflowFunc handles one MLflow JSON call in workspace ws. It returns the
// response object, or nil for MLflow's empty response {}.
type mlflowFunc func(r *http.Request, ws string, a *mlflowArgs) (any, error)

// mlflowJSON adapts an mlflowFunc: it checks the workspace exists, parses
// the parameters, and writes the result or the error in MLflow's shape.
func (s *Server) mlflowJSON(h mlflowFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, err := s.mlflowWorkspace(r)
		if err != nil {
			s.writeMLflowError(w, r, err)
			return
		}
		a, err := parseMLflowArgs(r)
		if err != nil {
			s.writeMLflowError(w, r, err)
			return
		}
		if err := s.checkJobRunWrite(r, ws, a); err != nil {
			s.writeMLflowError(w, r, err)
			return
		}
		out, err := h(r, ws, a)
		if err != nil {
			s.writeMLflowError(w, r, err)
			return
		}
		if out == nil {
			out = struct{}{}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// jobTag is the run tag naming the job a run belongs to: set by the
// scheduler on a step's run, and on every run a job's token creates.
const jobTag = "wharf.job"

// checkJobRunWrite keeps a job's token to its own runs: a write that names
// a run must name one whose jobTag is the token's job, and the tag itself
// cannot be changed with a job's token. Other callers pass.
func (s *Server) checkJobRunWrite(r *http.Request, ws string, a *mlflowArgs) error {
	c := wharf.CallerFromContext(r.Context())
	if c == nil || c.Job == "" || r.Method == http.MethodGet {
		return nil
	}
	if key, _ := a.str("key"); key == jobTag {
		return wharf.Errorf(wharf.EFORBIDDEN, "the tag %s is set by Wharf and cannot be changed by a job", jobTag)
	}
	id, _ := a.str("run_id")
	if id == "" {
		id, _ = a.str("run_uuid")
	}
	if id == "" {
		return nil
	}
	run, err := s.Store.FindRun(r.Context(), ws, id)
	if err != nil {
		// The handler answers a missing run in MLflow's words.
		return nil
	}
	if run.Tags[jobTag] != c.Job {
		return wharf.Errorf(wharf.EFORBIDDEN, "job %s may write only its own runs; run %s is not one of them", c.Job, id)
	}
	return nil
}

// mlflowWorkspace returns the workspace named in the path, which must exist:
// each workspace is its own MLflow namespace, and a store must not be
// asked to create experiment "0" in a workspace nobody made.
func (s *Server) mlflowWorkspace(r *http.Request) (string, error) {
	name := r.PathValue("workspace")
	if _, err := s.Store.FindWorkspace(r.Context(), name); err != nil {
		if wharf.IsNotFound(err) {
			return "", wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", name)
		}
		return "", err
	}
	return name, nil
}

// callerID is the principal making the request, recorded as MLflow's
// user_id: the identity the token proved, not the one the client claims.
func callerID(r *http.Request) string {
	if c := wharf.CallerFromContext(r.Context()); c != nil {
		return c.PrincipalID
	}
	return ""
}
