package http

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// modelJSON is a registered model version as `az ml model show` prints it,
// with the lineage of the run that produced it.
type modelJSON struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Type            string            `json:"type"`
	Path            string            `json:"path"`
	Description     string            `json:"description"`
	Tags            map[string]string `json:"tags"`
	Stage           string            `json:"stage"`
	Aliases         []string          `json:"aliases"`
	JobName         string            `json:"job_name,omitempty"`
	CreationContext map[string]string `json:"creation_context"`
	Lineage         *lineageJSON      `json:"lineage,omitempty"`
}

// lineageJSON says where a model came from: its run, the run's metrics and
// parameters, and the datasets the run read.
type lineageJSON struct {
	// Job is the job (pipeline step) the run belongs to, when a job made it.
	Job          string             `json:"job,omitempty"`
	RunID        string             `json:"run_id"`
	ExperimentID string             `json:"experiment_id"`
	RunName      string             `json:"run_name"`
	Metrics      map[string]float64 `json:"metrics"`
	Params       map[string]string  `json:"params"`
	Datasets     []datasetRefJSON   `json:"datasets"`
}

type datasetRefJSON struct {
	Name    string `json:"name"`
	Digest  string `json:"digest"`
	Source  string `json:"source"`
	Context string `json:"context,omitempty"`
}

func toModelJSON(v *wharf.ModelVersion, path string) modelJSON {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	aliases := v.Aliases
	if aliases == nil {
		aliases = []string{}
	}
	return modelJSON{
		Name: v.Name, Version: strconv.FormatInt(v.Version, 10), Type: v.Type, Path: path,
		Description: v.Description, Tags: tags, Stage: v.CurrentStage, Aliases: aliases, JobName: v.RunID,
		CreationContext: map[string]string{
			"created_at": time.UnixMilli(v.CreationTime).UTC().Format(time.RFC3339Nano),
			"created_by": v.UserID,
		},
	}
}

// lineage loads the producing run; a version registered without a run, or
// whose run was removed, simply has none.
func (s *Server) lineage(r *http.Request, ws string, v *wharf.ModelVersion) *lineageJSON {
	if v.RunID == "" {
		return nil
	}
	run, err := s.Store.FindRun(r.Context(), ws, v.RunID)
	if err != nil {
		return nil
	}
	l := &lineageJSON{Job: run.Tags["wharf.job"], RunID: run.ID, ExperimentID: run.ExperimentID, RunName: run.Name,
		Metrics: map[string]float64{}, Params: run.Params, Datasets: []datasetRefJSON{}}
	if l.Params == nil {
		l.Params = map[string]string{}
	}
	for _, m := range run.Metrics {
		l.Metrics[m.Key] = m.Value
	}
	for _, in := range run.Inputs {
		l.Datasets = append(l.Datasets, datasetRefJSON{Name: in.Dataset.Name, Digest: in.Dataset.Digest, Source: in.Dataset.Source, Context: in.Tags["mlflow.data.context"]})
	}
	return l
}

// findVersion resolves "latest" or a number.
func (s *Server) findVersion(r *http.Request, ws, name, version string) (*wharf.ModelVersion, error) {
	return s.findVersionCtx(r.Context(), ws, name, version)
}

// findVersionCtx is findVersion outside a request.
func (s *Server) findVersionCtx(ctx context.Context, ws, name, version string) (*wharf.ModelVersion, error) {
	if version == "latest" {
		vs, _, err := s.Store.SearchModelVersions(ctx, ws, wharf.SearchQuery{Filter: "name = '" + strings.ReplaceAll(name, "'", "\\'") + "'", OrderBy: []string{"version_number DESC"}, MaxResults: 1})
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, wharf.Errorf(wharf.ENOTFOUND, "model %q has no versions", name)
		}
		return vs[0], nil
	}
	n, err := strconv.ParseInt(version, 10, 64)
	if err != nil || n < 1 {
		return nil, wharf.Errorf(wharf.EINVALID, "version must be a positive integer or \"latest\", got %q", version).WithField("version")
	}
	return s.Store.FindModelVersion(ctx, ws, name, n)
}

func (s *Server) handleListModels(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	if err := s.ensureWorkspace(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []modelJSON{}
	if name := r.URL.Query().Get("name"); name != "" {
		vs, _, err := s.Store.SearchModelVersions(r.Context(), ws, wharf.SearchQuery{Filter: "name = '" + strings.ReplaceAll(name, "'", "\\'") + "'", OrderBy: []string{"version_number DESC"}, MaxResults: 10000})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, v := range vs {
			out = append(out, toModelJSON(v, s.modelPath(r, ws, v)))
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	models, _, err := s.Store.SearchRegisteredModels(r.Context(), ws, wharf.SearchQuery{MaxResults: 1000})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, m := range models {
		v, err := s.findVersion(r, ws, m.Name, "latest")
		if wharf.IsNotFound(err) {
			continue
		} else if err != nil {
			s.writeError(w, r, err)
			return
		}
		out = append(out, toModelJSON(v, s.modelPath(r, ws, v)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// modelPath is where a version's files are, as a download URI.
func (s *Server) modelPath(r *http.Request, ws string, v *wharf.ModelVersion) string {
	uri, err := s.downloadURI(r, ws, v)
	if err != nil {
		return v.Source
	}
	return uri
}

func (s *Server) handleGetModel(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	v, err := s.findVersion(r, ws, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j := toModelJSON(v, s.modelPath(r, ws, v))
	j.Lineage = s.lineage(r, ws, v)
	if j.Lineage != nil && j.Lineage.Job != "" {
		j.JobName = j.Lineage.Job // as az ml shows it: the job, not the run
	}
	writeJSON(w, http.StatusOK, j)
}

// createModelRequest is `az ml model create`: the files are uploaded to the
// artifact store first, and Path names where.
type createModelRequest struct {
	Version     string            `json:"version"`
	Type        string            `json:"type"`
	Path        string            `json:"path"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	JobName     string            `json:"job_name"`
}

func (s *Server) handleCreateModel(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	name, err := pathName(r, "name")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createModelRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Type == "" {
		req.Type = wharf.ModelTypeCustom
	}
	if req.Type != wharf.ModelTypeMLflow && req.Type != wharf.ModelTypeCustom {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "type %q is not supported (allowed: mlflow_model, custom_model)", req.Type).WithField("type"))
		return
	}
	if _, ok := artifactRootOf(req.Path); !ok || req.Path == "" {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "path must be an mlflow-artifacts:/ URI of uploaded files, got %q", req.Path).WithField("path"))
		return
	}
	if err := s.ensureWorkspace(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.Store.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: ws, Name: name, UserID: callerID(r)}); err != nil && wharf.ErrorCode(err) != wharf.ECONFLICT {
		s.writeError(w, r, err)
		return
	}
	// Versions are numbered by the registry, in order, as MLflow numbers
	// them; an explicit version must be the next one.
	if req.Version != "" {
		want, err := strconv.ParseInt(req.Version, 10, 64)
		if err != nil || want < 1 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "version must be a positive integer, got %q", req.Version).WithField("version"))
			return
		}
		if _, err := s.Store.FindModelVersion(ctx, ws, name, want); err == nil {
			s.writeError(w, r, wharf.Errorf(wharf.ECONFLICT, "model %s version %d already exists", name, want).WithField("version"))
			return
		}
		latest, err := s.findVersion(r, ws, name, "latest")
		next := int64(1)
		if err == nil {
			next = latest.Version + 1
		}
		if want != next {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "model versions are numbered in order: the next version of %s is %d, not %d (omit --version to take it)", name, next, want).WithField("version"))
			return
		}
	}
	v := &wharf.ModelVersion{Workspace: ws, Name: name, Source: req.Path, RunID: req.JobName, Description: req.Description,
		Tags: req.Tags, Type: req.Type, UserID: callerID(r)}
	if err := s.Store.CreateModelVersion(ctx, v); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toModelJSON(v, s.modelPath(r, ws, v)))
}

// modelFileJSON is one file of a model version.
type modelFileJSON struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// handleListModelFiles lists every file of a version, recursively, with
// paths relative to the version's folder, for `wharf ml model download`.
func (s *Server) handleListModelFiles(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	v, err := s.findVersion(r, ws, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	uri, err := s.downloadURI(r, ws, v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	root, ok := artifactRootOf(uri)
	if !ok {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "model %s:%d is stored outside this server (%s)", v.Name, v.Version, uri))
		return
	}
	arts, err := s.Store.ListArtifacts(r.Context(), ws, root)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	files := []modelFileJSON{}
	for _, a := range arts {
		rel := strings.TrimPrefix(strings.TrimPrefix(a.Path, root), "/")
		if rel == "" {
			rel = a.Path[strings.LastIndex(a.Path, "/")+1:]
		}
		files = append(files, modelFileJSON{Path: rel, Size: a.Size})
	}
	writeJSON(w, http.StatusOK, map[string]any{"root": root, "files": files})
}
