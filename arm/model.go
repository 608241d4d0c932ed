package arm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

// Models is Wharf's model registration, the one `wharf ml model create`
// uses, which the ARM routes translate onto: the registry is the one the
// mlflow client sees. *http.Server is one.
type Models interface {
	RegisterModel(ctx context.Context, ws, name string, req *wharfhttp.ModelRegistration) (*wharf.ModelVersion, error)
	ModelContentDigest(ctx context.Context, ws, path string) (string, error)
}

// armModelBody is a model version as the SDK sends it.
type armModelBody struct {
	Properties struct {
		ModelType   string            `json:"modelType"`
		ModelURI    string            `json:"modelUri"`
		Description string            `json:"description"`
		Tags        map[string]string `json:"tags"`
		JobName     string            `json:"jobName"`
	} `json:"properties"`
}

// putModelVersion registers a model version from where the SDK names its
// files: a datastore path its upload wrote (azureml://datastores/...), a
// job's output (azureml://jobs/<job>/outputs/<output>/paths/...), a run's
// artifacts (runs:/) or artifacts already uploaded (mlflow-artifacts:/).
// Files kept elsewhere than the artifact tree are recorded there, under
// the model's name, as `wharf ml model create` uploads them; their content
// is not copied. Creating a version that exists with the same files
// answers it, as Azure does; with other files it is a conflict, since a
// version never changes.
func (h *Handler) putModelVersion(w http.ResponseWriter, r *http.Request) {
	var body armModelBody
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	ws, name, version := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version")
	if err := wharf.ValidateName("name", name); err != nil {
		h.WriteError(w, r, err)
		return
	}
	p := body.Properties
	switch p.ModelType {
	case "", wharf.ModelTypeCustom, wharf.ModelTypeMLflow:
	default:
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "model %s:%s: modelType %q is not supported (allowed: custom_model, mlflow_model)", name, version, p.ModelType).WithField("properties.modelType"))
		return
	}
	source, runID, err := h.modelSource(ctx, ws, name, p.ModelURI)
	if err == nil {
		if runID == "" {
			runID = p.JobName
		}
		var existing *wharf.ModelVersion
		existing, err = h.Store.FindModelAssetVersion(ctx, ws, name, version)
		switch {
		case err == nil:
			err = h.sameModel(ctx, existing, source)
		case wharf.IsNotFound(err):
			_, err = h.Models.RegisterModel(ctx, ws, name, &wharfhttp.ModelRegistration{Version: version, Type: p.ModelType,
				Path: source, Description: p.Description, Tags: p.Tags, JobName: runID})
			if e, ok := err.(*wharf.Error); ok && e.Field == "path" {
				e.Field = "properties.modelUri"
			}
		}
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.getModelVersion(w, r)
}

// sameModel refuses to register existing again with the files at source
// unless they are the files it holds.
func (h *Handler) sameModel(ctx context.Context, existing *wharf.ModelVersion, source string) error {
	digest, err := h.Models.ModelContentDigest(ctx, existing.Workspace, source)
	if err != nil {
		return err
	}
	if digest != existing.ContentDigest {
		return wharf.Errorf(wharf.ECONFLICT, "model %s version %s already exists with other files; a version never changes: give the model another version",
			existing.Name, existing.AzureVersion()).WithField("properties.modelUri")
	}
	return nil
}

// modelSource resolves a modelUri to an mlflow-artifacts:/ path of the
// files, and the run that made them when it is a job's.
func (h *Handler) modelSource(ctx context.Context, ws, name, uri string) (source, runID string, err error) {
	const field = "properties.modelUri"
	if uri == "" {
		return "", "", wharf.Errorf(wharf.EINVALID, "modelUri is required: where the model's files are").WithField(field)
	}
	if _, ok := mlflow.ArtifactRoot(uri); ok {
		return uri, "", nil
	}
	if strings.HasPrefix(uri, "runs:/") {
		loc, err := wharf.ModelLocation(ctx, h.Store, ws, &wharf.ModelVersion{Source: uri})
		return loc, "", fieldOnInvalid(err, field)
	}
	rest, ok := strings.CutPrefix(uri, "azureml://")
	if !ok {
		return "", "", wharf.Errorf(wharf.EINVALID, "modelUri %q is not a place Wharf holds files (azureml://datastores/<ds>/paths/<path>, azureml://jobs/<job>/outputs/<output>/paths/<path>, runs:/ or mlflow-artifacts:/)", uri).WithField(field)
	}
	if i := strings.Index(rest, "/datastores/"); i >= 0 && strings.HasPrefix(rest, "subscriptions/") {
		rest = rest[i+1:] // the workspace is the request's
	}
	var files []modelFile
	var base string
	switch {
	case strings.HasPrefix(rest, "datastores/"):
		// What a job reading the path would see: one file, or the
		// folder of everything below it.
		res := &resolve.Resolver{Store: h.Store, Blobs: h.Blobs}
		var in scheduler.InputSpec
		if in, err = res.Input(ctx, ws, "", "azureml://"+rest, field); err != nil {
			return "", "", fieldOnInvalid(notFoundInvalid(err), field)
		}
		base = path.Base(strings.TrimRight(rest, "/"))
		files, err = h.contentFiles(ctx, in.Digest, in.Kind, "")
	case strings.HasPrefix(rest, "jobs/"):
		var job, output, p string
		job, after, _ := strings.Cut(strings.TrimPrefix(rest, "jobs/"), "/outputs/")
		output, p, _ = strings.Cut(after, "/paths/")
		output = strings.Trim(output, "/")
		if job == "" || output == "" {
			return "", "", wharf.Errorf(wharf.EINVALID, "modelUri %q names no job output (azureml://jobs/<job>/outputs/<output>/paths/<path>)", uri).WithField(field)
		}
		var j *wharf.Job
		if j, err = h.Store.FindJob(ctx, ws, job); err != nil {
			return "", "", fieldOnInvalid(notFoundInvalid(err), field)
		}
		p = strings.Trim(p, "/")
		if output == "artifacts" {
			// A job's default output is its run's artifacts, where
			// mlflow.log_model writes.
			if j.RunID == "" {
				return "", "", wharf.Errorf(wharf.EINVALID, "job %s has no run, so no artifacts", job).WithField(field)
			}
			loc, err := wharf.ModelLocation(ctx, h.Store, ws, &wharf.ModelVersion{Source: "runs:/" + j.RunID + "/" + p})
			return loc, j.RunID, fieldOnInvalid(err, field)
		}
		out, ok := j.Outputs[output]
		if !ok {
			return "", "", wharf.Errorf(wharf.EINVALID, "job %s (%s) has no output %q", job, j.Status, output).WithField(field)
		}
		base = output
		if p != "" {
			base = path.Base(p)
		}
		files, err = h.contentFiles(ctx, out.Digest, out.Kind, p)
		runID = j.RunID
	default:
		return "", "", wharf.Errorf(wharf.EINVALID, "modelUri %q is neither a datastore path nor a job output", uri).WithField(field)
	}
	if err != nil {
		return "", "", fieldOnInvalid(err, field)
	}
	if len(files) == 0 {
		return "", "", wharf.Errorf(wharf.EINVALID, "modelUri %s holds no files", uri).WithField(field)
	}
	source, err = h.recordModelFiles(ctx, ws, name, base, files)
	return source, runID, err
}

// fieldOnInvalid names field in an EINVALID error that names none.
func fieldOnInvalid(err error, field string) error {
	if e, ok := err.(*wharf.Error); ok && e.Code == wharf.EINVALID && e.Field == "" {
		return e.WithField(field)
	}
	return err
}

// notFoundInvalid makes a missing referenced resource bad input, not a
// missing route.
func notFoundInvalid(err error) error {
	if wharf.IsNotFound(err) {
		return wharf.Errorf(wharf.EINVALID, "%s", wharf.ErrorMessage(err))
	}
	return err
}

// modelFile is one file of a model being registered: its path below the
// registered folder ("" when the model is one file) and content.
type modelFile struct {
	rel    string
	digest string
	size   int64
}

// contentFiles are the files of stored content, a blob ("file") or a
// folder snapshot, below sub when given.
func (h *Handler) contentFiles(ctx context.Context, digest, kind, sub string) ([]modelFile, error) {
	if kind != scheduler.KindFolder {
		if sub != "" {
			return nil, wharf.Errorf(wharf.EINVALID, "the output is a file, with no path %s below it", sub)
		}
		size, err := h.Blobs.Stat(ctx, digest)
		return []modelFile{{digest: digest, size: size}}, err
	}
	m, err := snapshot.Load(ctx, digest, h.Blobs)
	if err != nil {
		return nil, err
	}
	var out []modelFile
	for _, f := range m.Files {
		rel := f.Path
		if sub != "" {
			if f.Path == sub {
				rel = ""
			} else if r, ok := strings.CutPrefix(f.Path, sub+"/"); ok {
				rel = r
			} else {
				continue
			}
		}
		out = append(out, modelFile{rel: rel, digest: f.Digest, size: f.Size})
	}
	return out, nil
}

// recordModelFiles records files in the artifact tree below
// models/<name>/<random>/<base>, the layout `wharf ml model create`
// uploads to, and returns that folder's (or file's) mlflow-artifacts:/ URI.
func (h *Handler) recordModelFiles(ctx context.Context, ws, name, base string, files []modelFile) (string, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	root := "models/" + name + "/" + hex.EncodeToString(id[:]) + "/" + base
	for _, f := range files {
		p := root
		if f.rel != "" {
			p += "/" + f.rel
		}
		if err := h.Store.PutArtifact(ctx, &wharf.Artifact{Workspace: ws, Path: p, Digest: f.digest, Size: f.size}); err != nil {
			return "", err
		}
	}
	return "mlflow-artifacts:/" + root, nil
}

func (h *Handler) getModelVersion(w http.ResponseWriter, r *http.Request) {
	v, err := h.Store.FindModelAssetVersion(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.modelVersionJSON(r, v))
}

// listModelVersions lists a model's versions, newest first, at most
// $top of them.
func (h *Handler) listModelVersions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	limit := 10000
	if top, err := strconv.Atoi(r.URL.Query().Get("$top")); err == nil && top > 0 {
		limit = top
	}
	list, err := h.modelVersions(r.Context(), r.PathValue("workspace"), name, limit)
	writeList(h, w, r, list, err, h.modelVersionJSON)
}

// modelVersionJSON is a model version in ARM's shape. An MLflow model's
// flavors are read from its MLmodel file, as Azure reports them.
func (h *Handler) modelVersionJSON(r *http.Request, v *wharf.ModelVersion) armVersion {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	typ := v.Type
	if typ == "" {
		typ = wharf.ModelTypeMLflow // registered through MLflow
	}
	loc, err := wharf.ModelLocation(r.Context(), h.Store, v.Workspace, v)
	if err != nil {
		loc = v.Source
	}
	props := map[string]any{
		"description":       v.Description,
		"tags":              tags,
		"properties":        map[string]string{},
		"isAnonymous":       false,
		"isArchived":        v.CurrentStage == wharf.StageArchived,
		"modelType":         typ,
		"modelUri":          loc,
		"flavors":           h.flavors(r.Context(), v.Workspace, loc),
		"stage":             v.CurrentStage,
		"provisioningState": "Succeeded",
	}
	if v.RunID != "" {
		props["jobName"] = v.RunID
	}
	return armVersion{
		ID:   workspaceID(r, v.Workspace) + "/models/" + v.Name + "/versions/" + v.AzureVersion(),
		Name: v.AzureVersion(), Type: "Microsoft.MachineLearningServices/workspaces/models/versions",
		Properties: props, SystemData: systemData(v.UserID, unixMillis(v.CreationTime)),
	}
}

// flavors are the flavors of the MLmodel file at loc, each flavor's
// settings as strings (Azure's FlavorData); none when there is no such
// file.
func (h *Handler) flavors(ctx context.Context, ws, loc string) map[string]any {
	out := map[string]any{}
	root, ok := mlflow.ArtifactRoot(loc)
	if !ok || h.Blobs == nil {
		return out
	}
	a, err := h.Store.FindArtifact(ctx, ws, strings.TrimSuffix(root, "/")+"/MLmodel")
	if err != nil {
		return out
	}
	rc, _, err := h.Blobs.Open(ctx, a.Digest)
	if err != nil {
		return out
	}
	defer rc.Close()
	var mlmodel struct {
		Flavors map[string]map[string]any `yaml:"flavors"`
	}
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil || yaml.Unmarshal(b, &mlmodel) != nil {
		return out
	}
	for name, settings := range mlmodel.Flavors {
		data := map[string]string{}
		for k, v := range settings {
			if s, ok := v.(string); ok {
				data[k] = s
			} else if j, err := json.Marshal(v); err == nil {
				data[k] = string(j)
			}
		}
		out[name] = map[string]any{"data": data}
	}
	return out
}

// getModel answers a model (a container of versions, in ARM's terms) with
// its latest and next version, which the SDK reads to number a version
// created without one.
func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) {
	m, err := h.Store.FindRegisteredModel(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out, err := h.modelJSON(r, m)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	list, _, err := h.Store.SearchRegisteredModels(r.Context(), r.PathValue("workspace"), wharf.SearchQuery{MaxResults: 1000})
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := make([]armVersion, 0, len(list))
	for _, m := range list {
		j, err := h.modelJSON(r, m)
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (h *Handler) modelJSON(r *http.Request, m *wharf.RegisteredModel) (armVersion, error) {
	latest, err := h.modelVersions(r.Context(), m.Workspace, m.Name, 1)
	if err != nil {
		return armVersion{}, err
	}
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	props := map[string]any{"description": m.Description, "tags": tags, "properties": map[string]string{},
		"isArchived": false, "provisioningState": "Succeeded", "nextVersion": "1"}
	if len(latest) > 0 {
		props["latestVersion"] = latest[0].AzureVersion()
		props["nextVersion"] = strconv.FormatInt(latest[0].Version+1, 10)
	}
	return armVersion{
		ID: workspaceID(r, m.Workspace) + "/models/" + m.Name, Name: m.Name, Type: "Microsoft.MachineLearningServices/workspaces/models",
		Properties: props, SystemData: systemData(m.UserID, unixMillis(m.CreationTime)),
	}, nil
}

// modelVersions are the newest versions of model name, at most limit.
func (h *Handler) modelVersions(ctx context.Context, ws, name string, limit int) ([]*wharf.ModelVersion, error) {
	list, _, err := h.Store.SearchModelVersions(ctx, ws, wharf.SearchQuery{
		Filter: fmt.Sprintf("name = '%s'", strings.ReplaceAll(name, "'", "''")), OrderBy: []string{"version_number DESC"}, MaxResults: limit})
	return list, err
}

// unixMillis is a registry time, milliseconds since the epoch as MLflow
// keeps it.
func unixMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
