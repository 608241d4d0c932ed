package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/wharfml/wharf"
)

const (
	defaultModelResults   = 100
	maxModelResults       = 1000
	defaultVersionResults = 10000
	maxVersionResults     = 200000
	defaultLoggedResults  = 50
	maxLoggedResults      = 50000
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

// modelVersion reads the required name and version; the version is a
// string in MLflow's protocol, a number here.
func modelVersion(a *args) (string, int64) {
	return a.required("name"), a.requiredInt64("version")
}

// Registered models.

func (h *Handler) createRegisteredModel(r *http.Request, ws string, a *args) (any, error) {
	m := &wharf.RegisteredModel{Workspace: ws, Name: a.required("name"), Description: a.str("description"), UserID: callerID(r), Tags: a.tagMap("tags")}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if err := h.Store.CreateRegisteredModel(r.Context(), m); err != nil {
		return nil, err
	}
	return registeredModelResponse(m, nil)
}

// registeredModelResponse answers with m, or err.
func registeredModelResponse(m *wharf.RegisteredModel, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelJSON(m)}, nil
}

func (h *Handler) getRegisteredModel(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return registeredModelResponse(h.Store.FindRegisteredModel(r.Context(), ws, name))
}

func (h *Handler) renameRegisteredModel(r *http.Request, ws string, a *args) (any, error) {
	name, newName := a.required("name"), a.required("new_name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return registeredModelResponse(h.Store.RenameRegisteredModel(r.Context(), ws, name, newName))
}

func (h *Handler) updateRegisteredModel(r *http.Request, ws string, a *args) (any, error) {
	name, desc := a.required("name"), a.str("description")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return registeredModelResponse(h.Store.UpdateRegisteredModel(r.Context(), ws, name, desc))
}

func (h *Handler) deleteRegisteredModel(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteRegisteredModel(r.Context(), ws, name)
}

type searchRegisteredModelsResponse struct {
	RegisteredModels []*mlflowRegisteredModel `json:"registered_models,omitempty"`
	NextPageToken    string                   `json:"next_page_token,omitempty"`
}

func (h *Handler) searchRegisteredModels(r *http.Request, ws string, a *args) (any, error) {
	q := a.searchQuery()
	q.MaxResults = a.maxResults(defaultModelResults, maxModelResults)
	if err := a.Err(); err != nil {
		return nil, err
	}
	ms, next, err := h.Store.SearchRegisteredModels(r.Context(), ws, q)
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

func (h *Handler) getLatestVersions(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("name")
	var st []string
	for _, raw := range a.strs("stages") {
		c, err := canonicalStage("stages", raw)
		a.check(err)
		st = append(st, c)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	vs, err := h.Store.LatestModelVersions(r.Context(), ws, name, st)
	if err != nil {
		return nil, err
	}
	return modelVersionsResponse{ModelVersions: modelVersionsJSON(vs)}, nil
}

func (h *Handler) setRegisteredModelTag(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("name")
	k, v := readTag(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetRegisteredModelTag(r.Context(), ws, name, k, v)
}

func (h *Handler) deleteRegisteredModelTag(r *http.Request, ws string, a *args) (any, error) {
	name, key := a.required("name"), a.required("key")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteRegisteredModelTag(r.Context(), ws, name, key)
}

func readAlias(a *args) string {
	alias := a.required("alias")
	if alias != "" && !aliasRE.MatchString(alias) {
		a.check(wharf.Errorf(wharf.EINVALID, "Invalid alias name: %q. Aliases may only contain alphanumerics, '_' and '-', up to 255 characters.", alias).WithField("alias"))
	}
	return alias
}

func (h *Handler) setModelAlias(r *http.Request, ws string, a *args) (any, error) {
	name, v := modelVersion(a)
	alias := readAlias(a)
	if reservedAliasRE.MatchString(alias) {
		a.check(wharf.Errorf(wharf.EINVALID, "Invalid alias name: %q. Aliases cannot be 'latest' or of the form 'v<number>'.", alias).WithField("alias"))
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetModelAlias(r.Context(), ws, name, alias, v)
}

func (h *Handler) deleteModelAlias(r *http.Request, ws string, a *args) (any, error) {
	name, alias := a.required("name"), readAlias(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteModelAlias(r.Context(), ws, name, alias)
}

func (h *Handler) getModelVersionByAlias(r *http.Request, ws string, a *args) (any, error) {
	name, alias := a.required("name"), readAlias(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return modelVersionResponse(h.Store.FindModelVersionByAlias(r.Context(), ws, name, alias))
}

// modelVersionResponse answers with v, or err.
func modelVersionResponse(v *wharf.ModelVersion, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionJSON(v)}, nil
}

// Model versions.

func (h *Handler) createModelVersion(r *http.Request, ws string, a *args) (any, error) {
	v := &wharf.ModelVersion{
		Workspace: ws,
		Name:      a.required("name"),
		Source:    a.required("source"),
		UserID:    callerID(r),
		// Registration copies nothing, so a version is ready at once and
		// the client does not poll for it.
		Status:       wharf.VersionReady,
		CurrentStage: wharf.StageNone,
		Type:         wharf.ModelTypeMLflow,
		RunID:        a.str("run_id"),
		RunLink:      a.str("run_link"),
		Description:  a.str("description"),
		ModelID:      a.str("model_id"),
		Tags:         a.tagMap("tags"),
	}
	_, hasRunID := a.scalar("run_id")
	_, hasModelID := a.scalar("model_id")
	if err := a.Err(); err != nil {
		return nil, err
	}
	ctx := r.Context()
	if err := h.resolveSourceLineage(ctx, ws, v, hasRunID, hasModelID); err != nil {
		return nil, err
	}
	if err := h.checkSourceOwner(ctx, ws, v); err != nil {
		return nil, err
	}
	if err := h.Store.CreateModelVersion(ctx, v); err != nil {
		return nil, err
	}
	if v.ModelID != "" {
		if err := h.tagModelVersions(ctx, ws, v); err != nil {
			return nil, err
		}
	}
	return modelVersionResponse(v, nil)
}

// modelVersionsTag is the logged-model tag listing the registered versions
// made from the model, as MLflow's tracking store writes it.
const modelVersionsTag = "mlflow.modelVersions"

// tagModelVersions adds v to the modelVersionsTag of the logged model it
// was made from: a JSON list of {"name", "version"}, written as Python's
// json.dumps writes it, so the value is the one MLflow's server stores.
func (h *Handler) tagModelVersions(ctx context.Context, ws string, v *wharf.ModelVersion) error {
	m, err := h.Store.FindLoggedModel(ctx, ws, v.ModelID)
	if err != nil {
		return err
	}
	type entry struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version"`
	}
	mine := entry{Name: v.Name, Version: json.RawMessage(strconv.FormatInt(v.Version, 10))}
	var list []entry
	if old, ok := m.Tags[modelVersionsTag]; ok && json.Unmarshal([]byte(old), &list) == nil {
		if slices.ContainsFunc(list, func(e entry) bool { return e.Name == mine.Name && string(e.Version) == string(mine.Version) }) {
			return nil
		}
	} else {
		list = nil
	}
	list = append(list, mine)
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = `{"name": ` + pyJSONString(e.Name) + `, "version": ` + string(e.Version) + `}`
	}
	_, err = h.Store.SetLoggedModelTags(ctx, ws, v.ModelID, map[string]string{modelVersionsTag: "[" + strings.Join(parts, ", ") + "]"})
	return err
}

// pyJSONString writes s as a JSON string the way Python's json.dumps does:
// non-ASCII as \uXXXX escapes (surrogate pairs beyond the BMP), and no
// escaping of <, > and &.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r > 0x7e && r < 0x10000):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (h *Handler) getModelVersion(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return modelVersionResponse(h.Store.FindModelVersion(r.Context(), ws, name, ver))
}

func (h *Handler) updateModelVersion(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	desc := a.str("description")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return modelVersionResponse(h.Store.UpdateModelVersion(r.Context(), ws, name, ver, desc))
}

func (h *Handler) deleteModelVersion(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteModelVersion(r.Context(), ws, name, ver)
}

func (h *Handler) searchModelVersions(r *http.Request, ws string, a *args) (any, error) {
	q := a.searchQuery()
	q.MaxResults = a.maxResults(defaultVersionResults, maxVersionResults)
	if err := a.Err(); err != nil {
		return nil, err
	}
	vs, next, err := h.Store.SearchModelVersions(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	return modelVersionsResponse{ModelVersions: modelVersionsJSON(vs), NextPageToken: next}, nil
}

func (h *Handler) transitionModelVersionStage(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	stage, err := canonicalStage("stage", a.required("stage"))
	a.check(err)
	archive := a.boolean("archive_existing_versions")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return modelVersionResponse(h.Store.TransitionModelVersionStage(r.Context(), ws, name, ver, stage, archive))
}

func (h *Handler) getModelVersionDownloadURI(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	v, err := h.Store.FindModelVersion(r.Context(), ws, name, ver)
	if err != nil {
		return nil, err
	}
	uri, err := h.downloadURI(r.Context(), ws, v)
	if err != nil {
		return nil, err
	}
	return map[string]string{"artifact_uri": uri}, nil
}

func (h *Handler) setModelVersionTag(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	k, v := readTag(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetModelVersionTag(r.Context(), ws, name, ver, k, v)
}

func (h *Handler) deleteModelVersionTag(r *http.Request, ws string, a *args) (any, error) {
	name, ver := modelVersion(a)
	key := a.required("key")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteModelVersionTag(r.Context(), ws, name, ver, key)
}

// Logged models (MLflow 3).

// loggedModelResponse answers with m, or err.
func loggedModelResponse(m *wharf.LoggedModel, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": loggedModelJSON(m)}, nil
}

func (h *Handler) createLoggedModel(r *http.Request, ws string, a *args) (any, error) {
	expID := a.requiredID("experiment_id")
	if err := a.Err(); err != nil {
		return nil, err
	}
	// A model belongs to an active experiment, as in MLflow.
	e, err := h.Store.FindExperiment(r.Context(), ws, expID)
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
		Name:         a.str("name"),
		ModelType:    a.str("model_type"),
		SourceRunID:  a.str("source_run_id"),
		Tags:         a.tagMap("tags"),
		Params:       a.tagMap("params"),
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if err := h.Store.CreateLoggedModel(r.Context(), m); err != nil {
		return nil, err
	}
	return loggedModelResponse(m, nil)
}

func (h *Handler) getLoggedModel(r *http.Request, ws string, a *args) (any, error) {
	return loggedModelResponse(h.Store.FindLoggedModel(r.Context(), ws, r.PathValue("model_id")))
}

func (h *Handler) deleteLoggedModel(r *http.Request, ws string, a *args) (any, error) {
	return nil, h.Store.DeleteLoggedModel(r.Context(), ws, r.PathValue("model_id"))
}

func (h *Handler) finalizeLoggedModel(r *http.Request, ws string, a *args) (any, error) {
	status := a.enum("status", loggedModelStatuses)
	if status == "" {
		a.check(missingParam("status"))
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	return loggedModelResponse(h.Store.FinalizeLoggedModel(r.Context(), ws, r.PathValue("model_id"), status, ""))
}

type searchLoggedModelsResponse struct {
	Models        []*mlflowLoggedModel `json:"models,omitempty"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

func (h *Handler) searchLoggedModels(r *http.Request, ws string, a *args) (any, error) {
	var q wharf.SearchQuery
	if q.ExperimentIDs = a.ids("experiment_ids"); len(q.ExperimentIDs) == 0 {
		a.check(missingParam("experiment_ids"))
	}
	q.Filter = a.str("filter")
	q.PageToken = a.str("page_token")
	q.MaxResults = a.maxResults(defaultLoggedResults, maxLoggedResults)
	// order_by is a list of {field_name, ascending, dataset_name,
	// dataset_digest}; ascending is the default.
	for _, o := range a.objects("order_by") {
		f := wharf.OrderField{Field: o.required("field_name"), Ascending: true}
		if _, given := o.value("ascending"); given {
			f.Ascending = o.boolean("ascending")
		}
		f.Dataset = wharf.DatasetRef{Name: o.str("dataset_name"), Digest: o.str("dataset_digest")}
		q.OrderFields = append(q.OrderFields, f)
	}
	for _, o := range a.objects("datasets") {
		q.Datasets = append(q.Datasets, wharf.DatasetRef{Name: o.str("dataset_name"), Digest: o.str("dataset_digest")})
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	ms, next, err := h.Store.SearchLoggedModels(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchLoggedModelsResponse{NextPageToken: next}
	for _, m := range ms {
		out.Models = append(out.Models, loggedModelJSON(m))
	}
	return out, nil
}

func (h *Handler) setLoggedModelTags(r *http.Request, ws string, a *args) (any, error) {
	tags := a.tagMap("tags")
	for k, v := range tags {
		a.check(checkKey("tags.key", k))
		a.check(checkValue("tags.value", v, maxTagValue))
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	return loggedModelResponse(h.Store.SetLoggedModelTags(r.Context(), ws, r.PathValue("model_id"), tags))
}

func (h *Handler) deleteLoggedModelTag(r *http.Request, ws string, a *args) (any, error) {
	return nil, h.Store.DeleteLoggedModelTag(r.Context(), ws, r.PathValue("model_id"), r.PathValue("tag_key"))
}

func (h *Handler) logLoggedModelParams(r *http.Request, ws string, a *args) (any, error) {
	objs := a.objects("params")
	params := make(map[string]string, len(objs))
	for _, o := range objs {
		p := readParam(o)
		params[p.Key] = p.Value
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	id := r.PathValue("model_id")
	if len(params) == 0 {
		_, err := h.Store.FindLoggedModel(r.Context(), ws, id)
		return nil, err
	}
	return nil, h.Store.LogLoggedModelParams(r.Context(), ws, id, params)
}
