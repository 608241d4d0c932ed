package http

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/snapshot"
)

// modelJSON is a registered model version as `az ml model show` prints it,
// with the lineage of the run that produced it.
type modelJSON struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Type        string            `json:"type"`
	Path        string            `json:"path"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Stage       string            `json:"stage"`
	Aliases     []string          `json:"aliases"`
	JobName     string            `json:"job_name,omitempty"`
	// ContentDigest identifies the files the version was registered with
	// (wharf.ModelContentDigest), so a client can reuse a version that
	// holds the files it would upload.
	ContentDigest string `json:"content_digest,omitempty"`
	// DatastorePath is where the files are in the default datastore's
	// container, for a model registered from local files while that
	// datastore was an azure_blob or s3 one.
	DatastorePath   string            `json:"datastore_path,omitempty"`
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
		Name: v.Name, Version: v.AzureVersion(), Type: v.Type, Path: path, ContentDigest: v.ContentDigest,
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

// nameFilter is the search filter for the versions of model name.
func nameFilter(name string) string {
	return "name = '" + strings.ReplaceAll(name, "'", "\\'") + "'"
}

// findVersion resolves "latest", a number or a version string.
func (s *Server) findVersion(r *http.Request, ws, name, version string) (*wharf.ModelVersion, error) {
	return s.findVersionCtx(r.Context(), ws, name, version)
}

// findVersionCtx is findVersion outside a request.
func (s *Server) findVersionCtx(ctx context.Context, ws, name, version string) (*wharf.ModelVersion, error) {
	if version == "latest" {
		vs, _, err := s.Store.SearchModelVersions(ctx, ws, wharf.SearchQuery{Filter: nameFilter(name), OrderBy: []string{"version_number DESC"}, MaxResults: 1})
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, wharf.Errorf(wharf.ENOTFOUND, "model %q has no versions", name)
		}
		return vs[0], nil
	}
	if version == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "version is required (a version or \"latest\")").WithField("version")
	}
	return s.Store.FindModelAssetVersion(ctx, ws, name, version)
}

// listModels lists the latest version of every model, or with ?name= every
// version of one, newest first.
func (s *Server) listModels(r *http.Request, _ *noBody) (int, []modelJSON, error) {
	ws := r.PathValue("workspace")
	if err := s.ensureWorkspace(r); err != nil {
		return 0, nil, err
	}
	out := []modelJSON{}
	if name := r.URL.Query().Get("name"); name != "" {
		vs, _, err := s.Store.SearchModelVersions(r.Context(), ws, wharf.SearchQuery{Filter: nameFilter(name), OrderBy: []string{"version_number DESC"}, MaxResults: 10000})
		if err != nil {
			return 0, nil, err
		}
		for _, v := range vs {
			out = append(out, toModelJSON(v, s.modelPath(r, ws, v)))
		}
		return http.StatusOK, out, nil
	}
	models, _, err := s.Store.SearchRegisteredModels(r.Context(), ws, wharf.SearchQuery{MaxResults: 1000})
	if err != nil {
		return 0, nil, err
	}
	for _, m := range models {
		v, err := s.findVersion(r, ws, m.Name, "latest")
		if wharf.IsNotFound(err) {
			continue
		} else if err != nil {
			return 0, nil, err
		}
		out = append(out, toModelJSON(v, s.modelPath(r, ws, v)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return http.StatusOK, out, nil
}

// downloadURI resolves a version's source to where its files can be
// fetched (see wharf.ModelLocation).
func (s *Server) downloadURI(r *http.Request, ws string, v *wharf.ModelVersion) (string, error) {
	return wharf.ModelLocation(r.Context(), s.Store, ws, v)
}

// modelPath is where a version's files are, as a download URI.
func (s *Server) modelPath(r *http.Request, ws string, v *wharf.ModelVersion) string {
	uri, err := s.downloadURI(r, ws, v)
	if err != nil {
		return v.Source
	}
	return uri
}

func (s *Server) getModel(r *http.Request, _ *noBody) (int, modelJSON, error) {
	ws := r.PathValue("workspace")
	v, err := s.findVersion(r, ws, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return 0, modelJSON{}, err
	}
	j := toModelJSON(v, s.modelPath(r, ws, v))
	j.DatastorePath = s.modelDatastorePath(r.Context(), ws, v)
	j.Lineage = s.lineage(r, ws, v)
	if j.Lineage != nil && j.Lineage.Job != "" {
		j.JobName = j.Lineage.Job // as az ml shows it: the job, not the run
	}
	return http.StatusOK, j, nil
}

// ModelRegistration is `az ml model create`: the files are uploaded to the
// artifact store first, and Path names where.
type ModelRegistration struct {
	Version     string            `json:"version"`
	Type        string            `json:"type"`
	Path        string            `json:"path"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	JobName     string            `json:"job_name"`
}

func (s *Server) createModel(r *http.Request, req *ModelRegistration) (int, modelJSON, error) {
	ws := r.PathValue("workspace")
	name, err := pathName(r, "name")
	if err != nil {
		return 0, modelJSON{}, err
	}
	if err := s.ensureWorkspace(r); err != nil {
		return 0, modelJSON{}, err
	}
	// As Azure ML's CLI uploads a local model into the default
	// datastore, its files land in that datastore's container when it
	// is one, before the version is recorded.
	digest, err := s.ModelContentDigest(r.Context(), ws, req.Path)
	if err != nil {
		return 0, modelJSON{}, err
	}
	if err := s.publishModel(r.Context(), ws, req.Path, digest); err != nil {
		return 0, modelJSON{}, err
	}
	v, err := s.RegisterModel(r.Context(), ws, name, req)
	if err != nil {
		return 0, modelJSON{}, err
	}
	j := toModelJSON(v, s.modelPath(r, ws, v))
	j.DatastorePath = s.modelDatastorePath(r.Context(), ws, v)
	return http.StatusCreated, j, nil
}

// modelUploadPath is where the files of a model registered from path (an
// mlflow-artifacts:/ URI), with content digest, are in the default
// datastore: LocalUpload/<hash>/<its folder's or file's name>, as Azure
// ML's CLI puts them.
func modelUploadPath(path, digest string) string {
	root, _ := mlflow.ArtifactRoot(path)
	return modelUploadFolder(digest) + "/" + wharf.ModelDirPath(root, root)
}

// modelUploadFolder is the LocalUpload/<hash> folder of a model's files.
func modelUploadFolder(digest string) string {
	return resolve.UploadFolder + "/" + strings.TrimPrefix(digest, "sha256:")[:32]
}

// publishModel writes the files uploaded at path (an mlflow-artifacts:/
// URI) into the container of the workspace's default datastore at
// modelUploadPath when that datastore is an azure_blob or s3 one; files
// already there are not sent again.
func (s *Server) publishModel(ctx context.Context, ws, path, digest string) error {
	d, err := s.Store.FindDatastore(ctx, ws, resolve.UploadDatastore)
	if wharf.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c, ok, err := blob.OpenContainer(ctx, s.Store, s.Blobs, d)
	if err != nil || !ok {
		return err
	}
	root, _ := mlflow.ArtifactRoot(path)
	arts, err := s.Store.ListArtifacts(ctx, ws, root)
	if err != nil {
		return err
	}
	files := make([]snapshot.File, len(arts))
	for i, a := range arts {
		files[i] = snapshot.File{Path: wharf.ModelDirPath(root, a.Path), Digest: a.Digest, Size: a.Size}
	}
	return blob.DefinitionFault(c.WriteMissingFiles(ctx, modelUploadFolder(digest), files))
}

// modelDatastorePath is the azureml://datastores/ URI of a version's files
// in the default datastore's container, when they were written there;
// empty otherwise.
func (s *Server) modelDatastorePath(ctx context.Context, ws string, v *wharf.ModelVersion) string {
	if len(v.ContentDigest) < len("sha256:")+32 {
		return ""
	}
	p := modelUploadPath(v.Source, v.ContentDigest)
	if objects, err := s.Store.ListDatastoreObjects(ctx, ws, resolve.UploadDatastore, p); err != nil || len(objects) == 0 {
		return ""
	}
	return "azureml://datastores/" + resolve.UploadDatastore + "/paths/" + p
}

// RegisterModel registers the files uploaded at req.Path as a new version
// of model name (created on first use), by the context's caller.
func (s *Server) RegisterModel(ctx context.Context, ws, name string, req *ModelRegistration) (*wharf.ModelVersion, error) {
	if req.Type == "" {
		req.Type = wharf.ModelTypeCustom
	}
	if req.Type != wharf.ModelTypeMLflow && req.Type != wharf.ModelTypeCustom {
		return nil, wharf.Errorf(wharf.EINVALID, "type %q is not supported (allowed: mlflow_model, custom_model)", req.Type).WithField("type")
	}
	if _, ok := mlflow.ArtifactRoot(req.Path); !ok || req.Path == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "path must be an mlflow-artifacts:/ URI of uploaded files, got %q", req.Path).WithField("path")
	}
	var caller string
	if c := wharf.CallerFromContext(ctx); c != nil {
		caller = c.PrincipalID
	}
	if err := s.Store.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: ws, Name: name, UserID: caller}); err != nil && wharf.ErrorCode(err) != wharf.ECONFLICT {
		return nil, err
	}
	digest, err := s.ModelContentDigest(ctx, ws, req.Path)
	if err != nil {
		return nil, err
	}
	v := &wharf.ModelVersion{Workspace: ws, Name: name, Source: req.Path, RunID: req.JobName, Description: req.Description,
		Tags: req.Tags, Type: req.Type, UserID: caller, AssetVersion: req.Version, ContentDigest: digest}
	if err := s.Store.CreateModelVersion(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

// ModelContentDigest identifies the files uploaded at path, laid out as
// a deployment's model folder will hold them; a path with no files is
// refused, since there would be nothing to register.
func (s *Server) ModelContentDigest(ctx context.Context, ws, path string) (string, error) {
	root, _ := mlflow.ArtifactRoot(path)
	arts, err := s.Store.ListArtifacts(ctx, ws, root)
	if err != nil {
		return "", err
	}
	if len(arts) == 0 {
		return "", wharf.Errorf(wharf.EINVALID, "path %s holds no uploaded files", path).WithField("path")
	}
	files := make([]wharf.ModelFile, len(arts))
	for i, a := range arts {
		files[i] = wharf.ModelFile{Path: wharf.ModelDirPath(root, a.Path), Digest: a.Digest}
	}
	return wharf.ModelContentDigest(files), nil
}

// modelFileJSON is one file of a model version.
type modelFileJSON struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// modelFilesJSON is the file list of a model version.
type modelFilesJSON struct {
	Files []modelFileJSON `json:"files"`
	Root  string          `json:"root"`
}

// listModelFiles lists every file of a version, recursively, with paths
// relative to the version's folder, for `wharf ml model download`.
func (s *Server) listModelFiles(r *http.Request, _ *noBody) (int, *modelFilesJSON, error) {
	ws := r.PathValue("workspace")
	v, err := s.findVersion(r, ws, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return 0, nil, err
	}
	uri, err := s.downloadURI(r, ws, v)
	if err != nil {
		return 0, nil, err
	}
	root, ok := mlflow.ArtifactRoot(uri)
	if !ok {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "model %s:%d is stored outside this server (%s)", v.Name, v.Version, uri)
	}
	arts, err := s.Store.ListArtifacts(r.Context(), ws, root)
	if err != nil {
		return 0, nil, err
	}
	if len(arts) == 1 && arts[0].Path == root {
		// A version registered from one file is that file: listed by its
		// name, in the folder that holds it, so that root/path names it.
		root = root[:max(strings.LastIndex(root, "/"), 0)]
	}
	files := []modelFileJSON{}
	for _, a := range arts {
		files = append(files, modelFileJSON{Path: relArtifactPath(a.Path, root), Size: a.Size})
	}
	return http.StatusOK, &modelFilesJSON{Files: files, Root: root}, nil
}

// relArtifactPath is an artifact's path below root; root itself, when it is
// a single file, is named by its base name.
func relArtifactPath(p, root string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
	if rel == "" {
		rel = p[strings.LastIndex(p, "/")+1:]
	}
	return rel
}
