package http

import (
	"net/http"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// Limits MLflow's server enforces; clients split their batches to fit them.
const (
	mlflowMaxBatchMetrics   = 1000
	mlflowMaxBatchParams    = 100
	mlflowMaxBatchTags      = 100
	mlflowMaxBatchItems     = 1000
	mlflowMaxKeyLength      = 250
	mlflowMaxParamValue     = 6000
	mlflowMaxTagValue       = 8000
	mlflowMaxSearchResults  = 50000
	mlflowDefaultRunResults = 1000
	mlflowDefaultExpResults = 1000
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
	if len(key) > mlflowMaxKeyLength {
		return wharf.Errorf(wharf.EINVALID, "'%s' exceeds the maximum length of %d characters", field, mlflowMaxKeyLength).WithField(field)
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
	if strings.HasPrefix(loc, mlflowArtifactScheme) {
		if _, ok := artifactRootOf(loc); !ok {
			return wharf.Errorf(wharf.EINVALID, "Invalid artifact location %q", loc).WithField("artifact_location")
		}
	}
	return nil
}

// Experiments.

func (s *Server) handleCreateExperiment(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := a.required("name")
	if err != nil {
		return nil, err
	}
	loc, err := a.str("artifact_location")
	if err != nil {
		return nil, err
	}
	if err := checkArtifactLocation(loc); err != nil {
		return nil, err
	}
	tags, err := a.tagMap("tags")
	if err != nil {
		return nil, err
	}
	e := &wharf.Experiment{Workspace: ws, Name: name, ArtifactLocation: loc, Tags: tags}
	if err := s.Store.CreateExperiment(r.Context(), e); err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": e.ID}, nil
}

func (s *Server) handleGetExperiment(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.id("experiment_id")
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, missingParam("experiment_id")
	}
	e, err := s.Store.FindExperiment(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentJSON(e)}, nil
}

func (s *Server) handleGetExperimentByName(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	name, err := a.required("experiment_name")
	if err != nil {
		return nil, err
	}
	e, err := s.Store.FindExperimentByName(r.Context(), ws, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentJSON(e)}, nil
}

type searchExperimentsResponse struct {
	Experiments   []*mlflowExperiment `json:"experiments,omitempty"`
	NextPageToken string              `json:"next_page_token,omitempty"`
}

func (s *Server) handleSearchExperiments(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	q, err := a.searchQuery()
	if err != nil {
		return nil, err
	}
	if q.MaxResults, err = a.maxResults(mlflowDefaultExpResults, mlflowMaxSearchResults); err != nil {
		return nil, err
	}
	if q.ViewType, err = a.viewType("view_type"); err != nil {
		return nil, err
	}
	es, next, err := s.Store.SearchExperiments(r.Context(), ws, q)
	if err != nil {
		return nil, err
	}
	out := searchExperimentsResponse{NextPageToken: next}
	for _, e := range es {
		out.Experiments = append(out.Experiments, experimentJSON(e))
	}
	return out, nil
}

// experimentID reads the required experiment_id.
func experimentID(a *mlflowArgs) (string, error) {
	id, err := a.id("experiment_id")
	if err == nil && id == "" {
		err = missingParam("experiment_id")
	}
	return id, err
}

func (s *Server) handleUpdateExperiment(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	newName, err := a.str("new_name")
	if err != nil {
		return nil, err
	}
	if newName == "" {
		// Nothing to change, but an unknown experiment is still an error.
		_, err := s.Store.FindExperiment(r.Context(), ws, id)
		return nil, err
	}
	return nil, s.Store.RenameExperiment(r.Context(), ws, id, newName)
}

func (s *Server) handleDeleteExperiment(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetExperimentLifecycle(r.Context(), ws, id, wharf.LifecycleDeleted)
}

func (s *Server) handleRestoreExperiment(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetExperimentLifecycle(r.Context(), ws, id, wharf.LifecycleActive)
}

func (s *Server) handleSetExperimentTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	value, err := a.present("value")
	if err != nil {
		return nil, err
	}
	if err := checkKey("key", key); err != nil {
		return nil, err
	}
	if err := checkValue("value", value, mlflowMaxTagValue); err != nil {
		return nil, err
	}
	return nil, s.Store.SetExperimentTag(r.Context(), ws, id, key, value)
}

func (s *Server) handleDeleteExperimentTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := experimentID(a)
	if err != nil {
		return nil, err
	}
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteExperimentTag(r.Context(), ws, id, key)
}

// Runs.

func (s *Server) handleCreateRun(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	expID, err := a.id("experiment_id")
	if err != nil {
		return nil, err
	}
	if expID == "" {
		expID = wharf.DefaultExperimentID
	}
	name, err := a.str("run_name")
	if err != nil {
		return nil, err
	}
	start, ok, err := a.int64("start_time")
	if err != nil {
		return nil, err
	}
	if !ok {
		start = nowMillis()
	}
	tagList, err := a.tagList("tags", false)
	if err != nil {
		return nil, err
	}
	if _, err := a.str("user_id"); err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, kv := range tagList {
		if err := checkKey("tags.key", kv[0]); err != nil {
			return nil, err
		}
		if err := checkValue("tags.value", kv[1], mlflowMaxTagValue); err != nil {
			return nil, err
		}
		tags[kv[0]] = kv[1]
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
	if err := s.Store.CreateRun(r.Context(), run); err != nil {
		return nil, err
	}
	return map[string]any{"run": runJSON(run)}, nil
}

func (s *Server) handleGetRun(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	run, err := s.Store.FindRun(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runJSON(run)}, nil
}

func (s *Server) handleUpdateRun(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	status, err := a.enum("status", runStatuses)
	if err != nil {
		return nil, err
	}
	end, _, err := a.int64("end_time")
	if err != nil {
		return nil, err
	}
	name, err := a.str("run_name")
	if err != nil {
		return nil, err
	}
	run, err := s.Store.UpdateRun(r.Context(), ws, id, status, end, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": runInfoJSON(run)}, nil
}

func (s *Server) handleDeleteRun(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetRunLifecycle(r.Context(), ws, id, wharf.LifecycleDeleted)
}

func (s *Server) handleRestoreRun(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	return nil, s.Store.SetRunLifecycle(r.Context(), ws, id, wharf.LifecycleActive)
}

type searchRunsResponse struct {
	Runs          []*mlflowRun `json:"runs,omitempty"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

func (s *Server) handleSearchRuns(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	q, err := a.searchQuery()
	if err != nil {
		return nil, err
	}
	if q.ExperimentIDs, err = a.ids("experiment_ids"); err != nil {
		return nil, err
	}
	if q.MaxResults, err = a.maxResults(mlflowDefaultRunResults, mlflowMaxSearchResults); err != nil {
		return nil, err
	}
	if q.ViewType, err = a.viewType("run_view_type"); err != nil {
		return nil, err
	}
	runs, next, err := s.Store.SearchRuns(r.Context(), ws, q)
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
func readMetric(a *mlflowArgs) (*wharf.Metric, error) {
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	if err := checkKey(a.field("key"), key); err != nil {
		return nil, err
	}
	value, ok, err := a.float("value")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missingParam(a.field("value"))
	}
	ts, err := a.requiredInt64("timestamp")
	if err != nil {
		return nil, err
	}
	step, _, err := a.int64("step")
	if err != nil {
		return nil, err
	}
	m := &wharf.Metric{Key: key, Value: value, Timestamp: ts, Step: step}
	if m.ModelID, err = a.str("model_id"); err != nil {
		return nil, err
	}
	if m.DatasetName, err = a.str("dataset_name"); err != nil {
		return nil, err
	}
	if m.DatasetDigest, err = a.str("dataset_digest"); err != nil {
		return nil, err
	}
	return m, nil
}

func readParam(a *mlflowArgs) (*wharf.Param, error) {
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	value, err := a.present("value")
	if err != nil {
		return nil, err
	}
	if err := checkKey(a.field("key"), key); err != nil {
		return nil, err
	}
	if err := checkValue(a.field("value"), value, mlflowMaxParamValue); err != nil {
		return nil, err
	}
	return &wharf.Param{Key: key, Value: value}, nil
}

func readTag(a *mlflowArgs) (key, value string, err error) {
	if key, err = a.required("key"); err != nil {
		return "", "", err
	}
	if value, err = a.present("value"); err != nil {
		return "", "", err
	}
	if err := checkKey(a.field("key"), key); err != nil {
		return "", "", err
	}
	if err := checkValue(a.field("value"), value, mlflowMaxTagValue); err != nil {
		return "", "", err
	}
	return key, value, nil
}

func (s *Server) handleLogMetric(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	m, err := readMetric(a)
	if err != nil {
		return nil, err
	}
	m.RunID = id
	return nil, s.Store.LogBatch(r.Context(), ws, id, []*wharf.Metric{m}, nil, nil)
}

func (s *Server) handleLogParam(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	p, err := readParam(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.LogBatch(r.Context(), ws, id, nil, []*wharf.Param{p}, nil)
}

func (s *Server) handleSetTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	k, v, err := readTag(a)
	if err != nil {
		return nil, err
	}
	return nil, s.Store.LogBatch(r.Context(), ws, id, nil, nil, map[string]string{k: v})
}

func (s *Server) handleDeleteTag(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteRunTag(r.Context(), ws, id, key)
}

func (s *Server) handleLogBatch(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	mObjs, err := a.objects("metrics")
	if err != nil {
		return nil, err
	}
	pObjs, err := a.objects("params")
	if err != nil {
		return nil, err
	}
	tObjs, err := a.objects("tags")
	if err != nil {
		return nil, err
	}
	switch {
	case len(mObjs) > mlflowMaxBatchMetrics:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d metrics. Got %d metrics.", mlflowMaxBatchMetrics, len(mObjs)).WithField("metrics")
	case len(pObjs) > mlflowMaxBatchParams:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d params. Got %d params.", mlflowMaxBatchParams, len(pObjs)).WithField("params")
	case len(tObjs) > mlflowMaxBatchTags:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d tags. Got %d tags.", mlflowMaxBatchTags, len(tObjs)).WithField("tags")
	case len(mObjs)+len(pObjs)+len(tObjs) > mlflowMaxBatchItems:
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d metrics, params and tags in total. Got %d.", mlflowMaxBatchItems, len(mObjs)+len(pObjs)+len(tObjs))
	}
	metrics := make([]*wharf.Metric, 0, len(mObjs))
	for _, o := range mObjs {
		m, err := readMetric(o)
		if err != nil {
			return nil, err
		}
		m.RunID = id
		metrics = append(metrics, m)
	}
	params := make([]*wharf.Param, 0, len(pObjs))
	seen := make(map[string]string, len(pObjs))
	for _, o := range pObjs {
		p, err := readParam(o)
		if err != nil {
			return nil, err
		}
		// A key twice with one value is one param; with two values the
		// batch contradicts itself.
		if v, dup := seen[p.Key]; dup {
			if v != p.Value {
				return nil, wharf.Errorf(wharf.EINVALID, "Duplicate parameter keys have been submitted: %q with values %q and %q", p.Key, v, p.Value).WithField("params")
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
		k, v, err := readTag(o)
		if err != nil {
			return nil, err
		}
		tags[k] = v // the last value of a key wins, as in MLflow
	}
	if len(metrics) == 0 && len(params) == 0 && len(tags) == 0 {
		// Nothing to write, but the run must exist.
		_, err := s.Store.FindRun(r.Context(), ws, id)
		return nil, err
	}
	return nil, s.Store.LogBatch(r.Context(), ws, id, metrics, params, tags)
}

func (s *Server) handleLogInputs(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	objs, err := a.objects("datasets")
	if err != nil {
		return nil, err
	}
	// models[] (MLflow 3 model inputs) are accepted but not recorded: the
	// tracking store keeps dataset inputs only.
	if _, err := a.objects("models"); err != nil {
		return nil, err
	}
	inputs := make([]*wharf.DatasetInput, 0, len(objs))
	for _, o := range objs {
		tags, err := o.tagMap("tags")
		if err != nil {
			return nil, err
		}
		d, err := o.object("dataset")
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, missingParam(o.field("dataset"))
		}
		in := &wharf.DatasetInput{Tags: tags}
		for _, f := range []struct {
			name     string
			dst      *string
			required bool
		}{
			{"name", &in.Dataset.Name, true},
			{"digest", &in.Dataset.Digest, true},
			{"source_type", &in.Dataset.SourceType, true},
			{"source", &in.Dataset.Source, true},
			{"schema", &in.Dataset.Schema, false},
			{"profile", &in.Dataset.Profile, false},
		} {
			var v string
			if f.required {
				v, err = d.required(f.name)
			} else {
				v, err = d.str(f.name)
			}
			if err != nil {
				return nil, err
			}
			*f.dst = v
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		_, err := s.Store.FindRun(r.Context(), ws, id)
		return nil, err
	}
	return nil, s.Store.LogInputs(r.Context(), ws, id, inputs)
}

func (s *Server) handleLogOutputs(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	objs, err := a.objects("models")
	if err != nil {
		return nil, err
	}
	outs := make([]*wharf.ModelOutput, 0, len(objs))
	for _, o := range objs {
		mid, err := o.required("model_id")
		if err != nil {
			return nil, err
		}
		step, _, err := o.int64("step")
		if err != nil {
			return nil, err
		}
		outs = append(outs, &wharf.ModelOutput{ModelID: mid, Step: step})
	}
	if len(outs) == 0 {
		_, err := s.Store.FindRun(r.Context(), ws, id)
		return nil, err
	}
	return nil, s.Store.LogOutputs(r.Context(), ws, id, outs)
}

// handleLogModel accepts MLflow 2's log-model record and keeps nothing: the
// model itself arrives as artifacts, and MLflow only copies this JSON into a
// run tag for its UI.
func (s *Server) handleLogModel(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	if _, err := a.str("model_json"); err != nil {
		return nil, err
	}
	_, err = s.Store.FindRun(r.Context(), ws, id)
	return nil, err
}

type metricHistoryResponse struct {
	Metrics       []mlflowMetric `json:"metrics,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

func (s *Server) handleGetMetricHistory(r *http.Request, ws string, a *mlflowArgs) (any, error) {
	id, err := a.runID()
	if err != nil {
		return nil, err
	}
	key, err := a.required("metric_key")
	if err != nil {
		return nil, err
	}
	token, err := a.str("page_token")
	if err != nil {
		return nil, err
	}
	// No max_results means the whole history, as MLflow answers; the
	// store is passed 0 for that.
	max, ok, err := a.int64("max_results")
	if err != nil {
		return nil, err
	}
	if ok && (max < 1 || max > 1<<31-1) {
		return nil, invalidParam("max_results", max, "a positive integer")
	}
	ms, next, err := s.Store.MetricHistory(r.Context(), ws, id, key, int(max), token)
	if err != nil {
		return nil, err
	}
	return metricHistoryResponse{Metrics: metricsJSON(ms), NextPageToken: next}, nil
}
