package mlflow

import (
	"net/http"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// Limits MLflow's server enforces; clients split their batches to fit them.
const (
	maxBatchMetrics   = 1000
	maxBatchParams    = 100
	maxBatchTags      = 100
	maxBatchItems     = 1000
	maxKeyLength      = 250
	maxParamValue     = 6000
	maxTagValue       = 8000
	maxSearchResults  = 50000
	defaultRunResults = 1000
	defaultExpResults = 1000
)

// runStatuses maps RunStatus names and numbers to names.
var runStatuses = map[string]string{
	"RUNNING": wharf.RunRunning, "1": wharf.RunRunning,
	"SCHEDULED": wharf.RunScheduled, "2": wharf.RunScheduled,
	"FINISHED": wharf.RunFinished, "3": wharf.RunFinished,
	"FAILED": wharf.RunFailed, "4": wharf.RunFailed,
	"KILLED": wharf.RunKilled, "5": wharf.RunKilled,
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func checkKey(field, key string) error {
	if len(key) > maxKeyLength {
		return wharf.Errorf(wharf.EINVALID, "'%s' exceeds the maximum length of %d characters", field, maxKeyLength).WithField(field)
	}
	return nil
}

func checkValue(field, value string, limit int) error {
	if len(value) > limit {
		return wharf.Errorf(wharf.EINVALID, "'%s' exceeds the maximum length of %d characters", field, limit).WithField(field)
	}
	return nil
}

// checkArtifactLocation refuses what MLflow refuses as an experiment's
// artifact location (a runs:/ URI), and proxy locations whose path would
// not be a valid artifact path, which no run could then use.
func checkArtifactLocation(loc string) error {
	if strings.HasPrefix(loc, "runs:") {
		return wharf.Errorf(wharf.EINVALID, "Artifact location cannot be a runs:/ URI. Given: %q", loc).WithField("artifact_location")
	}
	if strings.HasPrefix(loc, ArtifactScheme) {
		if _, ok := ArtifactRoot(loc); !ok {
			return wharf.Errorf(wharf.EINVALID, "Invalid artifact location %q", loc).WithField("artifact_location")
		}
	}
	return nil
}

// Experiments.

func (h *Handler) createExperiment(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("name")
	loc := a.str("artifact_location")
	a.check(checkArtifactLocation(loc))
	tags := a.tagMap("tags")
	if err := a.Err(); err != nil {
		return nil, err
	}
	e := &wharf.Experiment{Workspace: ws, Name: name, ArtifactLocation: loc, Tags: tags}
	if err := h.Store.CreateExperiment(r.Context(), e); err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": e.ID}, nil
}

func (h *Handler) getExperiment(r *http.Request, ws string, a *args) (any, error) {
	id := a.requiredID("experiment_id")
	if err := a.Err(); err != nil {
		return nil, err
	}
	e, err := h.Store.FindExperiment(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentJSON(e)}, nil
}

func (h *Handler) getExperimentByName(r *http.Request, ws string, a *args) (any, error) {
	name := a.required("experiment_name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	e, err := h.Store.FindExperimentByName(r.Context(), ws, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentJSON(e)}, nil
}

type searchExperimentsResponse struct {
	Experiments   []*mlflowExperiment `json:"experiments,omitempty"`
	NextPageToken string              `json:"next_page_token,omitempty"`
}

func (h *Handler) searchExperiments(r *http.Request, ws string, a *args) (any, error) {
	q := a.searchQuery()
	q.MaxResults = a.maxResults(defaultExpResults, maxSearchResults)
	q.ViewType = a.viewType("view_type")
	if err := a.Err(); err != nil {
		return nil, err
	}
	es, next, err := h.Store.SearchExperiments(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchExperimentsResponse{NextPageToken: next}
	for _, e := range es {
		out.Experiments = append(out.Experiments, experimentJSON(e))
	}
	return out, nil
}

func (h *Handler) updateExperiment(r *http.Request, ws string, a *args) (any, error) {
	id := a.requiredID("experiment_id")
	newName := a.str("new_name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	if newName == "" {
		// Nothing to change, but an unknown experiment is still an error.
		_, err := h.Store.FindExperiment(r.Context(), ws, id)
		return nil, err
	}
	return nil, h.Store.RenameExperiment(r.Context(), ws, id, newName)
}

func (h *Handler) deleteExperiment(r *http.Request, ws string, a *args) (any, error) {
	return h.setExperimentLifecycle(r, ws, a, wharf.LifecycleDeleted)
}

func (h *Handler) restoreExperiment(r *http.Request, ws string, a *args) (any, error) {
	return h.setExperimentLifecycle(r, ws, a, wharf.LifecycleActive)
}

func (h *Handler) setExperimentLifecycle(r *http.Request, ws string, a *args, stage string) (any, error) {
	id := a.requiredID("experiment_id")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetExperimentLifecycle(r.Context(), ws, id, stage)
}

func (h *Handler) setExperimentTag(r *http.Request, ws string, a *args) (any, error) {
	id := a.requiredID("experiment_id")
	key := a.required("key")
	value := a.present("value")
	a.check(checkKey("key", key))
	a.check(checkValue("value", value, maxTagValue))
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetExperimentTag(r.Context(), ws, id, key, value)
}

func (h *Handler) deleteExperimentTag(r *http.Request, ws string, a *args) (any, error) {
	id := a.requiredID("experiment_id")
	key := a.required("key")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteExperimentTag(r.Context(), ws, id, key)
}

// Runs.

func (h *Handler) createRun(r *http.Request, ws string, a *args) (any, error) {
	expID := a.id("experiment_id")
	if expID == "" {
		expID = wharf.DefaultExperimentID
	}
	name := a.str("run_name")
	start, ok := a.int64("start_time")
	if !ok {
		start = nowMillis()
	}
	tagList := a.tagList("tags", false)
	a.str("user_id") // read for its type only: see UserID below
	tags := map[string]string{}
	for _, kv := range tagList {
		a.check(checkKey("tags.key", kv[0]))
		a.check(checkValue("tags.value", kv[1], maxTagValue))
		tags[kv[0]] = kv[1]
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if c := wharf.CallerFromContext(r.Context()); c != nil && c.Job != "" {
		// Runs a job creates are the job's, whatever the client says.
		tags[jobTag] = c.Job
	}
	// The store checks the experiment is active, and names the run from
	// the mlflow.runName tag when run_name is empty.
	run := &wharf.Run{
		Workspace:    ws,
		ExperimentID: expID,
		Name:         name,
		// user_id is the authenticated principal; the client's own claim
		// (the local login name) stays in the mlflow.user tag it sends.
		UserID:    callerID(r),
		Status:    wharf.RunRunning,
		StartTime: start,
		Tags:      tags,
	}
	if err := h.Store.CreateRun(r.Context(), run); err != nil {
		return nil, err
	}
	return map[string]any{"run": runJSON(run)}, nil
}

func (h *Handler) getRun(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	if err := a.Err(); err != nil {
		return nil, err
	}
	run, err := h.Store.FindRun(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runJSON(run)}, nil
}

func (h *Handler) updateRun(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	status := a.enum("status", runStatuses)
	end, _ := a.int64("end_time")
	name := a.str("run_name")
	if err := a.Err(); err != nil {
		return nil, err
	}
	run, err := h.Store.UpdateRun(r.Context(), ws, id, status, end, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": runInfoJSON(run)}, nil
}

func (h *Handler) deleteRun(r *http.Request, ws string, a *args) (any, error) {
	return h.setRunLifecycle(r, ws, a, wharf.LifecycleDeleted)
}

func (h *Handler) restoreRun(r *http.Request, ws string, a *args) (any, error) {
	return h.setRunLifecycle(r, ws, a, wharf.LifecycleActive)
}

func (h *Handler) setRunLifecycle(r *http.Request, ws string, a *args, stage string) (any, error) {
	id := a.runID()
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.SetRunLifecycle(r.Context(), ws, id, stage)
}

type searchRunsResponse struct {
	Runs          []*mlflowRun `json:"runs,omitempty"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

func (h *Handler) searchRuns(r *http.Request, ws string, a *args) (any, error) {
	q := a.searchQuery()
	q.ExperimentIDs = a.ids("experiment_ids")
	q.MaxResults = a.maxResults(defaultRunResults, maxSearchResults)
	q.ViewType = a.viewType("run_view_type")
	if err := a.Err(); err != nil {
		return nil, err
	}
	runs, next, err := h.Store.SearchRuns(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchRunsResponse{NextPageToken: next}
	for _, run := range runs {
		out.Runs = append(out.Runs, runJSON(run))
	}
	return out, nil
}

// readMetric reads one metric: key, value and timestamp required, as in
// MLflow's LogMetric and the Metric entries of LogBatch.
func readMetric(a *args) *wharf.Metric {
	key := a.required("key")
	a.check(checkKey(a.field("key"), key))
	value, ok := a.float("value")
	if !ok {
		a.check(missingParam(a.field("value")))
	}
	m := &wharf.Metric{Key: key, Value: value, Timestamp: a.requiredInt64("timestamp")}
	m.Step, _ = a.int64("step")
	m.ModelID = a.str("model_id")
	m.DatasetName = a.str("dataset_name")
	m.DatasetDigest = a.str("dataset_digest")
	return m
}

func readParam(a *args) *wharf.Param {
	key := a.required("key")
	value := a.present("value")
	a.check(checkKey(a.field("key"), key))
	a.check(checkValue(a.field("value"), value, maxParamValue))
	return &wharf.Param{Key: key, Value: value}
}

func readTag(a *args) (key, value string) {
	key = a.required("key")
	value = a.present("value")
	a.check(checkKey(a.field("key"), key))
	a.check(checkValue(a.field("value"), value, maxTagValue))
	return key, value
}

func (h *Handler) logMetric(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	m := readMetric(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	m.RunID = id
	return nil, h.Store.LogBatch(r.Context(), ws, id, []*wharf.Metric{m}, nil, nil)
}

func (h *Handler) logParam(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	p := readParam(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.LogBatch(r.Context(), ws, id, nil, []*wharf.Param{p}, nil)
}

func (h *Handler) setTag(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	k, v := readTag(a)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.LogBatch(r.Context(), ws, id, nil, nil, map[string]string{k: v})
}

func (h *Handler) deleteTag(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	key := a.required("key")
	if err := a.Err(); err != nil {
		return nil, err
	}
	return nil, h.Store.DeleteRunTag(r.Context(), ws, id, key)
}

func (h *Handler) logBatch(r *http.Request, ws string, a *args) (any, error) {
	b, err := readLogBatch(a)
	if err != nil {
		return nil, err
	}
	return nil, h.writeLogBatch(r, ws, b.runID, b.metrics, b.params, b.tags)
}

// readLogBatch reads and checks a runs/log-batch request's parameters.
func readLogBatch(a *args) (*logBatchBody, error) {
	id := a.runID()
	mObjs := a.objects("metrics")
	pObjs := a.objects("params")
	tObjs := a.objects("tags")
	if err := a.Err(); err != nil {
		return nil, err
	}
	switch {
	case len(mObjs) > maxBatchMetrics:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d metrics. Got %d metrics.", maxBatchMetrics, len(mObjs)).WithField("metrics")
	case len(pObjs) > maxBatchParams:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d params. Got %d params.", maxBatchParams, len(pObjs)).WithField("params")
	case len(tObjs) > maxBatchTags:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d tags. Got %d tags.", maxBatchTags, len(tObjs)).WithField("tags")
	case len(mObjs)+len(pObjs)+len(tObjs) > maxBatchItems:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d metrics, params and tags in total. Got %d.", maxBatchItems, len(mObjs)+len(pObjs)+len(tObjs))
	}
	metrics := make([]*wharf.Metric, 0, len(mObjs))
	for _, o := range mObjs {
		m := readMetric(o)
		m.RunID = id
		metrics = append(metrics, m)
	}
	params := make([]*wharf.Param, 0, len(pObjs))
	seen := make(map[string]string, len(pObjs))
	for _, o := range pObjs {
		p := readParam(o)
		if a.Err() != nil {
			break
		}
		// A key twice with one value is one param; with two values the
		// batch contradicts itself.
		if v, dup := seen[p.Key]; dup {
			if v != p.Value {
				a.check(wharf.Errorf(wharf.EINVALID, "Duplicate parameter keys have been submitted: %q with values %q and %q", p.Key, v, p.Value).WithField("params"))
			}
			continue
		}
		seen[p.Key] = p.Value
		params = append(params, p)
	}
	var tags map[string]string
	if len(tObjs) > 0 {
		tags = make(map[string]string, len(tObjs))
	}
	for _, o := range tObjs {
		k, v := readTag(o)
		tags[k] = v // the last value of a key wins, as in MLflow
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	return &logBatchBody{runID: id, metrics: metrics, params: params, tags: tags}, nil
}

func (h *Handler) logInputs(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	objs := a.objects("datasets")
	var models []*wharf.ModelInput
	for _, o := range a.objects("models") {
		models = append(models, &wharf.ModelInput{ModelID: o.required("model_id")})
	}
	inputs := make([]*wharf.DatasetInput, 0, len(objs))
	for _, o := range objs {
		in := &wharf.DatasetInput{Tags: o.tagMap("tags")}
		d := o.object("dataset")
		if d == nil {
			o.check(missingParam(o.field("dataset")))
			break
		}
		in.Dataset.Name = d.required("name")
		in.Dataset.Digest = d.required("digest")
		in.Dataset.SourceType = d.required("source_type")
		in.Dataset.Source = d.required("source")
		in.Dataset.Schema = d.str("schema")
		in.Dataset.Profile = d.str("profile")
		inputs = append(inputs, in)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(inputs) == 0 && len(models) == 0 {
		_, err := h.Store.FindRun(r.Context(), ws, id)
		return nil, err
	}
	return nil, h.Store.LogInputs(r.Context(), ws, id, inputs, models)
}

func (h *Handler) logOutputs(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	objs := a.objects("models")
	outs := make([]*wharf.ModelOutput, 0, len(objs))
	for _, o := range objs {
		out := &wharf.ModelOutput{ModelID: o.required("model_id")}
		out.Step, _ = o.int64("step")
		outs = append(outs, out)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		_, err := h.Store.FindRun(r.Context(), ws, id)
		return nil, err
	}
	return nil, h.Store.LogOutputs(r.Context(), ws, id, outs)
}

// logModel accepts MLflow 2's log-model record and keeps nothing: the
// model itself arrives as artifacts, and MLflow only copies this JSON into a
// run tag for its UI.
func (h *Handler) logModel(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	a.str("model_json")
	if err := a.Err(); err != nil {
		return nil, err
	}
	_, err := h.Store.FindRun(r.Context(), ws, id)
	return nil, err
}

type metricHistoryResponse struct {
	Metrics       []mlflowMetric `json:"metrics,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

func (h *Handler) getMetricHistory(r *http.Request, ws string, a *args) (any, error) {
	id := a.runID()
	key := a.required("metric_key")
	token := a.str("page_token")
	// No max_results means the whole history, as MLflow answers; the
	// store is passed 0 for that.
	max, ok := a.int64("max_results")
	if ok && (max < 1 || max > 1<<31-1) {
		a.check(invalidParam("max_results", max, "a positive integer"))
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	ms, next, err := h.Store.MetricHistory(r.Context(), ws, id, key, int(max), token)
	if err != nil {
		return nil, err
	}
	return metricHistoryResponse{Metrics: metricsJSON(ms), NextPageToken: next}, nil
}
