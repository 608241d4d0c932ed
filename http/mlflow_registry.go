package http

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/wharfml/wharf"
)

const (
	mlflowDefaultModelResults   = 100
	mlflowMaxModelResults       = 1000
	mlflowDefaultVersionResults = 10000
	mlflowMaxVersionResults     = 200000
	mlflowDefaultLoggedResults  = 50
	mlflowMaxLoggedResults      = 50000
)

// stages maps stage names, in any case, to MLflow's spelling.
var stages = map[string]string{
	"none":       wharf.StageNone,
	"staging":    wharf.StageStaging,
	"production": wharf.StageProduction,
	"archived":   wharf.StageArchived,
}

func canonicalStage(field, s string) (string, error) {
	if c, ok := stages[strings.ToLower(strings.TrimSpace(s))]; ok {
		return c, nil
	}
	return "", wharf.Errorf(wharf.EINVALID, "Invalid Model Version stage: %s. Value must be one of None, Staging, Production, Archived.", s).WithField(field)
}

// loggedModelStatuses maps LoggedModelStatus names and numbers to names.
var loggedModelStatuses = map[string]string{
	"LOGGED_MODEL_PENDING": "LOGGED_MODEL_PENDING", "1": "LOGGED_MODEL_PENDING",
	"LOGGED_MODEL_READY": "LOGGED_MODEL_READY", "2": "LOGGED_MODEL_READY",
	"LOGGED_MODEL_UPLOAD_FAILED": "LOGGED_MODEL_UPLOAD_FAILED", "3": "LOGGED_MODEL_UPLOAD_FAILED",
}

// aliasRE is MLflow's alias rule; "latest" and version-like aliases (v3)
// are reserved because models:/name@alias URIs would be ambiguous.
var (
	aliasRE         = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	reservedAliasRE = regexp.MustCompile(`^(?i:latest|v\d+)$`)
)

func modelName(a *mlflowArgs) (string, error) { return a.required("name") }

// modelVersion reads the required name and version; the version is a
// string in MLflow's protocol, a number here.
func modelVersion(a *mlflowArgs) (string, int64, error) {
	name, err := modelName(a)
	if err != nil {
		return "", 0, err
	}
	v, err := a.requiredInt64("version")
	if err != nil {
		return "", 0, err
	}
	return name, v, nil
}

// Registered models.

func (s *Server) handleCreateRegisteredModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	desc, err := a.str("description")
	if err != nil {
		return nil, err
	}
	tags, err := a.tagMap("tags")
	if err != nil {
		return nil, err
	}
	m := &wharf.RegisteredModel{Workspace: ws, Name: name, Description: desc, UserID: callerID(r), Tags: tags}
	if err := s.Store.CreateRegisteredModel(r.Context(), m); err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelJSON(m)}, nil
}

func (s *Server) handleGetRegisteredModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	m, err := s.Store.FindRegisteredModel(r.Context(), ws, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelJSON(m)}, nil
}

func (s *Server) handleRenameRegisteredModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	newName, err := a.required("new_name")
	if err != nil {
		return nil, err
	}
	m, err := s.Store.RenameRegisteredModel(r.Context(), ws, name, newName)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelJSON(m)}, nil
}

func (s *Server) handleUpdateRegisteredModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	desc, err := a.str("description")
	if err != nil {
		return nil, err
	}
	m, err := s.Store.UpdateRegisteredModel(r.Context(), ws, name, desc)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelJSON(m)}, nil
}

func (s *Server) handleDeleteRegisteredModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteRegisteredModel(r.Context(), ws, name)
}

type searchRegisteredModelsResponse struct {
	RegisteredModels []*mlflowRegisteredModel `json:"registered_models,omitempty"`
	NextPageToken    string                   `json:"next_page_token,omitempty"`
}

func (s *Server) handleSearchRegisteredModels(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	q, err := a.searchQuery()
	if err != nil {
		return nil, err
	}
	if q.MaxResults, err = a.maxResults(mlflowDefaultModelResults, mlflowMaxModelResults); err != nil {
		return nil, err
	}
	ms, next, err := s.Store.SearchRegisteredModels(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchRegisteredModelsResponse{NextPageToken: next}
	for _, m := range ms {
		out.RegisteredModels = append(out.RegisteredModels, registeredModelJSON(m))
	}
	return out, nil
}

type modelVersionsResponse struct {
	ModelVersions []mlflowModelVersion `json:"model_versions,omitempty"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

func (s *Server) handleGetLatestVersions(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	raw, err := a.strs("stages")
	if err != nil {
		return nil, err
	}
	var st []string
	for _, s := range raw {
		c, err := canonicalStage("stages", s)
		if err != nil {
			return nil, err
		}
		st = append(st, c)
	}
	vs, err := s.Store.LatestModelVersions(r.Context(), ws, name, st)
	if err != nil {
		return nil, err
	}
	return modelVersionsResponse{ModelVersions: modelVersionsJSON(vs)}, nil
}

func (s *Server) handleSetRegisteredModelTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	k, v, err := readTag(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetRegisteredModelTag(r.Context(), ws, name, k, v)
}

func (s *Server) handleDeleteRegisteredModelTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteRegisteredModelTag(r.Context(), ws, name, key)
}

func readAlias(a *mlflowArgs) (string, error) {
	alias, err := a.required("alias")
	if err != nil {
		return "", err
	}
	if !aliasRE.MatchString(alias) {
		return "", wharf.Errorf(wharf.EINVALID, "Invalid alias name: %q. Aliases may only contain alphanumerics, '_' and '-', up to 255 characters.", alias).WithField("alias")
	}
	return alias, nil
}

func (s *Server) handleSetModelAlias(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, v, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	alias, err := readAlias(a)
	if err != nil {
		return nil, err
	}
	if reservedAliasRE.MatchString(alias) {
		return nil, wharf.Errorf(wharf.EINVALID, "Invalid alias name: %q. Aliases cannot be 'latest' or of the form 'v<number>'.", alias).WithField("alias")
	}
	return nil, s.Store.SetModelAlias(r.Context(), ws, name, alias, v)
}

func (s *Server) handleDeleteModelAlias(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	alias, err := readAlias(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteModelAlias(r.Context(), ws, name, alias)
}

func (s *Server) handleGetModelVersionByAlias(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	alias, err := readAlias(a)
	if err != nil {
		return nil, err
	}
	v, err := s.Store.FindModelVersionByAlias(r.Context(), ws, name, alias)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

// Model versions.

func (s *Server) handleCreateModelVersion(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := modelName(a)
	if err != nil {
		return nil, err
	}
	source, err := a.required("source")
	if err != nil {
		return nil, err
	}
	v := &wharf.ModelVersion{
		Workspace: ws,
		Name:      name,
		Source:    source,
		UserID:    callerID(r),
		// Registration copies nothing, so a version is ready at once and
		// the client does not poll for it.
		Status:       wharf.VersionReady,
		CurrentStage: wharf.StageNone,
		Type:         wharf.ModelTypeMLflow,
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"run_id", &v.RunID}, {"run_link", &v.RunLink}, {"description", &v.Description}, {"model_id", &v.ModelID}} {
		if *f.dst, err = a.str(f.name); err != nil {
			return nil, err
		}
	}
	if v.Tags, err = a.tagMap("tags"); err != nil {
		return nil, err
	}
	if err := s.Store.CreateModelVersion(r.Context(), v); err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

func (s *Server) handleGetModelVersion(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	v, err := s.Store.FindModelVersion(r.Context(), ws, name, ver)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

func (s *Server) handleUpdateModelVersion(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	desc, err := a.str("description")
	if err != nil {
		return nil, err
	}
	v, err := s.Store.UpdateModelVersion(r.Context(), ws, name, ver, desc)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

func (s *Server) handleDeleteModelVersion(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteModelVersion(r.Context(), ws, name, ver)
}

func (s *Server) handleSearchModelVersions(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	q, err := a.searchQuery()
	if err != nil {
		return nil, err
	}
	if q.MaxResults, err = a.maxResults(mlflowDefaultVersionResults, mlflowMaxVersionResults); err != nil {
		return nil, err
	}
	vs, next, err := s.Store.SearchModelVersions(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	return modelVersionsResponse{ModelVersions: modelVersionsJSON(vs), NextPageToken: next}, nil
}

func (s *Server) handleTransitionModelVersionStage(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	raw, err := a.required("stage")
	if err != nil {
		return nil, err
	}
	stage, err := canonicalStage("stage", raw)
	if err != nil {
		return nil, err
	}
	archive, err := a.boolean("archive_existing_versions")
	if err != nil {
		return nil, err
	}
	v, err := s.Store.TransitionModelVersionStage(r.Context(), ws, name, ver, stage, archive)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

func (s *Server) handleGetModelVersionDownloadURI(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	v, err := s.Store.FindModelVersion(r.Context(), ws, name, ver)
	if err != nil {
		return nil, err
	}
	uri, err := s.downloadURI(r, ws, v)
	if err != nil {
		return nil, err
	}
	return map[string]string{"artifact_uri": uri}, nil
}

// downloadURI resolves a version's source to where its files can be
// fetched (see wharf.ModelLocation).
func (s *Server) downloadURI(r *http.Request, ws string, v *wharf.ModelVersion) (string, error) {
	return wharf.ModelLocation(r.Context(), s.Store, ws, v)
}

func (s *Server) handleSetModelVersionTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	k, v, err := readTag(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetModelVersionTag(r.Context(), ws, name, ver, k, v)
}

func (s *Server) handleDeleteModelVersionTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, ver, err := modelVersion(a)
	if err != nil {
		return nil, err
	}
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteModelVersionTag(r.Context(), ws, name, ver, key)
}

// Logged models (MLflow 3).

func (s *Server) handleCreateLoggedModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	expID, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	// A model belongs to an active experiment, as in MLflow.
	e, err := s.Store.FindExperiment(r.Context(), ws, expID)
	if err != nil {
		return nil, err
	}
	if e.LifecycleStage != wharf.LifecycleActive {
		return nil, wharf.Errorf(wharf.EINVALID, "The experiment %s must be in the 'active' state. Current state is %s.", expID, e.LifecycleStage).WithField("experiment_id")
	}
	m := &wharf.LoggedModel{
		Workspace:    ws,
		ExperimentID: expID,
		Status:       "LOGGED_MODEL_PENDING",
		CreatorID:    callerID(r),
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"name", &m.Name}, {"model_type", &m.ModelType}, {"source_run_id", &m.SourceRunID}} {
		if *f.dst, err = a.str(f.name); err != nil {
			return nil, err
		}
	}
	if m.Tags, err = a.tagMap("tags"); err != nil {
		return nil, err
	}
	if m.Params, err = a.tagMap("params"); err != nil {
		return nil, err
	}
	if err := s.Store.CreateLoggedModel(r.Context(), m); err != nil {
		return nil, err
	}
	return map[string]any{"model": loggedModelJSON(m)}, nil
}

func (s *Server) handleGetLoggedModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	m, err := s.Store.FindLoggedModel(r.Context(), ws, r.PathValue("model_id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": loggedModelJSON(m)}, nil
}

func (s *Server) handleDeleteLoggedModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	return nil, s.Store.DeleteLoggedModel(r.Context(), ws, r.PathValue("model_id"))
}

func (s *Server) handleFinalizeLoggedModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	status, err := a.enum("status", loggedModelStatuses)
	if err != nil {
		return nil, err
	}
	if status == "" {
		return nil, missingParam("status")
	}
	m, err := s.Store.FinalizeLoggedModel(r.Context(), ws, r.PathValue("model_id"), status, "")
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": loggedModelJSON(m)}, nil
}

type searchLoggedModelsResponse struct {
	Models        []*mlflowLoggedModel `json:"models,omitempty"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

func (s *Server) handleSearchLoggedModels(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	var q wharf.SearchQuery
	var err error
	if q.ExperimentIDs, err = a.ids("experiment_ids"); err != nil {
		return nil, err
	}
	if len(q.ExperimentIDs) == 0 {
		return nil, missingParam("experiment_ids")
	}
	if q.Filter, err = a.str("filter"); err != nil {
		return nil, err
	}
	if q.PageToken, err = a.str("page_token"); err != nil {
		return nil, err
	}
	if q.MaxResults, err = a.maxResults(mlflowDefaultLoggedResults, mlflowMaxLoggedResults); err != nil {
		return nil, err
	}
	// order_by is a list of {field_name, ascending}, turned into the
	// "field ASC|DESC" clauses of the other searches.
	orders, err := a.objects("order_by")
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		field, err := o.required("field_name")
		if err != nil {
			return nil, err
		}
		dir := " ASC"
		if _, given := o.value("ascending"); given {
			asc, err := o.boolean("ascending")
			if err != nil {
				return nil, err
			}
			if !asc {
				dir = " DESC"
			}
		}
		q.OrderBy = append(q.OrderBy, field+dir)
	}
	// datasets[] narrows metric filters to a dataset; the store's filter
	// has no such scope yet, so it is read for its shape and not applied.
	if _, err := a.objects("datasets"); err != nil {
		return nil, err
	}
	ms, next, err := s.Store.SearchLoggedModels(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchLoggedModelsResponse{NextPageToken: next}
	for _, m := range ms {
		out.Models = append(out.Models, loggedModelJSON(m))
	}
	return out, nil
}

func (s *Server) handleSetLoggedModelTags(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	tags, err := a.tagMap("tags")
	if err != nil {
		return nil, err
	}
	for k, v := range tags {
		if err := checkKey("tags.key", k); err != nil {
			return nil, err
		}
		if err := checkValue("tags.value", v, mlflowMaxTagValue); err != nil {
			return nil, err
		}
	}
	m, err := s.Store.SetLoggedModelTags(r.Context(), ws, r.PathValue("model_id"), tags)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": loggedModelJSON(m)}, nil
}

func (s *Server) handleDeleteLoggedModelTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	return nil, s.Store.DeleteLoggedModelTag(r.Context(), ws, r.PathValue("model_id"), r.PathValue("tag_key"))
}

func (s *Server) handleLogLoggedModelParams(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	objs, err := a.objects("params")
	if err != nil {
		return nil, err
	}
	params := make(map[string]string, len(objs))
	for _, o := range objs {
		p, err := readParam(o)
		if err != nil {
			return nil, err
		}
		params[p.Key] = p.Value
	}
	id := r.PathValue("model_id")
	if len(params) == 0 {
		_, err := s.Store.FindLoggedModel(r.Context(), ws, id)
		return nil, err
	}
	return nil, s.Store.LogLoggedModelParams(r.Context(), ws, id, params)
}
