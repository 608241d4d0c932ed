// Package monitor runs model monitors: at each firing of a schedule with
// create_monitor, it reads the deployment's collected data for the
// production window and the reference data, computes every signal with
// package drift, and stores the results together with the alerts their
// breaches raise (delivered by package alert).
//
// A monitor reads data with the server's access and runs no user code.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/serving"
	"github.com/wharfml/wharf/snapshot"
)

// Runner runs monitor jobs; it is the scheduler's MonitorRunner.
type Runner struct {
	Store wharf.Store
	Blobs wharf.BlobStore
	// Flush, when set, files what this server's data collectors of an
	// endpoint hold before a run reads their data; the other servers
	// sharing the store file theirs every few seconds.
	Flush func(workspace, endpoint string)
	// Alerts, when set, is woken after a run recorded alerts.
	Alerts interface{ Wake() }
	// Metrics, when set, exports each run's results as gauges.
	Metrics *Metrics
	// WorkDir holds the reference data a run reads, while it runs.
	WorkDir string
	// Steps submits a job document as principal, for the component steps
	// of custom signals and pre-processing, which run sandboxed as every
	// step does; nil refuses them.
	Steps  func(ctx context.Context, workspace, principal string, document json.RawMessage) (*wharf.Job, error)
	Logger *slog.Logger
}

var _ scheduler.MonitorRunner = (*Runner)(nil)

// Check refuses a monitor document that cannot be read.
func (r *Runner) Check(ctx context.Context, workspace string, raw json.RawMessage) error {
	var m jobspec.Monitor
	if err := json.Unmarshal(raw, &m); err != nil {
		return wharf.Errorf(wharf.EINVALID, "not a monitor definition: %v", err)
	}
	if len(m.Signals) == 0 {
		return wharf.Errorf(wharf.EINVALID, "the monitor has no signal").WithField("monitoring_signals")
	}
	return nil
}

// signalRun is what one signal of a run found.
type signalRun struct {
	sig     *jobspec.MonitorSignal
	results []wharf.MonitorResult
	err     error
}

// Run computes every signal of a monitor job and records the results
// and the alerts of its breaches.
func (r *Runner) Run(ctx context.Context, j *wharf.Job, log io.Writer) (map[string]string, error) {
	var spec scheduler.MonitorSpec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return nil, fmt.Errorf("monitor job spec: %w", err)
	}
	var m jobspec.Monitor
	if err := json.Unmarshal(spec.Monitor, &m); err != nil {
		return nil, fmt.Errorf("monitor definition: %w", err)
	}
	fmt.Fprintf(log, "monitor %s, fired at %s\n", spec.Schedule, spec.Fired.Format(time.RFC3339))
	if m.Compute.InstanceType != "" {
		fmt.Fprintf(log, "compute: serverless Spark %s (runtime %s) asked for; the signals are computed on Wharf's own compute, in the server\n",
			m.Compute.InstanceType, orDefault(m.Compute.RuntimeVersion, "3.3"))
	}
	if m.Target.Endpoint != "" && r.Flush != nil {
		r.Flush(j.Workspace, m.Target.Endpoint)
	}
	size := r.defaultWindow(ctx, j.Workspace, spec.Schedule)
	scratch, err := os.MkdirTemp(r.WorkDir, "monitor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	rc := &runContext{r: r, ctx: ctx, ws: j.Workspace, m: &m, fired: spec.Fired, size: size, log: log, scratch: scratch,
		job: j, schedule: spec.Schedule}
	var runs []*signalRun
	for _, sig := range m.Signals {
		sr := &signalRun{sig: sig}
		sr.results, sr.err = rc.signal(sig)
		if sr.err != nil {
			fmt.Fprintf(log, "signal %s (%s): %s\n", sig.Name, sig.Type, message(sr.err))
		}
		runs = append(runs, sr)
	}
	run := &wharf.MonitorRun{Workspace: j.Workspace, Schedule: spec.Schedule, Job: j.Name, Time: spec.Fired}
	for _, sr := range runs {
		run.Results = append(run.Results, sr.results...)
	}
	alerts, tags := breaches(j, spec.Schedule, &m, runs)
	err = r.Store.RecordMonitorRun(context.WithoutCancel(ctx), run, alerts)
	switch {
	case wharf.ErrorCode(err) == wharf.ECONFLICT:
		// Run again after a restart: what was recorded stands, and was
		// alerted then.
		fmt.Fprintln(log, "results were recorded by an earlier run of this job; they stand")
		if run.Results, err = r.Store.JobMonitorResults(ctx, j.Workspace, j.Name); err != nil {
			return nil, err
		}
		alerts = nil
	case err != nil:
		return nil, err
	}
	writeTable(log, run.Results)
	if len(alerts) > 0 {
		fmt.Fprintf(log, "%d alert(s) queued\n", len(alerts))
		if r.Alerts != nil {
			r.Alerts.Wake()
		}
	}
	if r.Metrics != nil {
		r.Metrics.observe(j.Workspace, spec.Schedule, &m, run.Results)
	}
	var failed []string
	for _, sr := range runs {
		if sr.err != nil {
			failed = append(failed, fmt.Sprintf("signal %s: %s", sr.sig.Name, message(sr.err)))
		}
	}
	if len(failed) > 0 {
		return tags, wharf.Errorf(wharf.EINVALID, "%s", strings.Join(failed, "; "))
	}
	return tags, nil
}

// defaultWindow is a production window's default size: the monitor's
// frequency, the time between two firings of its trigger.
func (r *Runner) defaultWindow(ctx context.Context, workspace, schedule string) time.Duration {
	const fallback = 24 * time.Hour
	sc, err := r.Store.FindSchedule(ctx, workspace, schedule)
	if err != nil {
		return fallback
	}
	var trig jobspec.Trigger
	if json.Unmarshal(sc.Trigger, &trig) != nil {
		return fallback
	}
	a := trig.Next(time.Now())
	if a.IsZero() {
		return fallback
	}
	b := trig.Next(a)
	if b.IsZero() || !b.After(a) {
		return fallback
	}
	return b.Sub(a)
}

// runContext is one run's state shared by its signals.
type runContext struct {
	r       *Runner
	ctx     context.Context
	ws      string
	m       *jobspec.Monitor
	fired   time.Time
	size    time.Duration
	log     io.Writer
	scratch string
	// job is the monitor job, schedule its monitor's name.
	job      *wharf.Job
	schedule string
	// lineage caches the training data found in the model's lineage.
	lineage *lineageData
}

type lineageData struct {
	files []string
	// digest and kind are the stored content of the files, source
	// where it came from.
	digest, kind, source string
	err                  error
}

func (rc *runContext) signal(sig *jobspec.MonitorSignal) ([]wharf.MonitorResult, error) {
	switch sig.Type {
	case jobspec.SignalCustom:
		return rc.custom(sig)
	case jobspec.SignalFeatureAttribution:
		return rc.attribution(sig)
	case jobspec.SignalModelPerformance:
		return rc.performance(sig)
	}
	prodCtx := "model_inputs"
	if sig.Type == jobspec.SignalPredictionDrift {
		prodCtx = "model_outputs"
	}
	production, prodCtx, from, desc, err := rc.production(sig, prodCtx)
	if err != nil {
		return nil, err
	}
	defer drift.Close(production)
	reference, rdesc, err := rc.reference(sig, prodCtx, from)
	if err != nil {
		return nil, err
	}
	defer drift.Close(reference)
	fmt.Fprintf(rc.log, "signal %s (%s): reference data %s, %d rows\n", sig.Name, sig.Type, rdesc, reference.Rows())
	ds := drift.Signal{Type: sig.Type, Features: sig.Features, MLTask: rc.m.Target.MLTask, Thresholds: map[string]float64{}}
	if sig.Reference != nil && sig.Reference.TargetColumn != "" && len(sig.Features) == 0 {
		ds.Target = sig.Reference.TargetColumn
	}
	if sig.TopN > 0 {
		if ds.Target == "" {
			fmt.Fprintf(rc.log, "signal %s: top_n_feature_importance %d needs reference_data.data_column_names.target_column to rank features; every feature is compared\n", sig.Name, sig.TopN)
		} else {
			imp, err := rc.importances(sig, nil, time.Time{}, time.Time{})
			switch {
			case err != nil && sig.TopNDefault:
				// Azure's default, not asked for: the signal goes
				// on over every feature.
				fmt.Fprintf(rc.log, "signal %s: the default top_n_feature_importance %d needs feature importances (%s); every feature is compared\n",
					sig.Name, sig.TopN, message(err))
			case err != nil:
				return nil, fmt.Errorf("top_n_feature_importance %d: %w", sig.TopN, err)
			default:
				ds.TopN, ds.Importance = sig.TopN, imp.Reference
			}
		}
	}
	for kind, ms := range sig.Thresholds {
		for name, v := range ms {
			if kind == jobspec.Numerical || kind == jobspec.Categorical {
				ds.Thresholds[kind+"."+name] = v
			} else {
				ds.Thresholds[name] = v
			}
		}
	}
	results, err := drift.Evaluate(rc.ctx, ds, reference, production)
	if err != nil {
		if errors.Is(err, drift.ErrEmptyWindow) {
			return nil, fmt.Errorf("the production window %s holds no rows: send traffic to the deployment, or widen production_data.data_window.lookback_window_size", desc)
		}
		return nil, err
	}
	return toResults(sig, append(results, drift.RowCounts(reference, production)...)), nil
}

// toResults are drift's results as a monitor records them; a metric
// without a threshold says so.
func toResults(sig *jobspec.MonitorSignal, results []drift.Result) []wharf.MonitorResult {
	out := make([]wharf.MonitorResult, 0, len(results))
	for _, res := range results {
		threshold, detail := res.Threshold, res.Detail
		if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
			threshold, detail = 0, strings.TrimPrefix(detail+"; no threshold", "; ")
		}
		out = append(out, wharf.MonitorResult{Signal: sig.Name, SignalType: sig.Type, Feature: res.Feature, DataType: res.DataType,
			Metric: res.Metric, Value: res.Value, Threshold: threshold, Direction: res.Direction, Passed: res.Passed, Detail: detail})
	}
	return out
}

// production opens a signal's production data: its production_data, by
// default the collected data of context over the default window. It
// returns the context read, the window's start and a description, and
// refuses an empty window.
func (rc *runContext) production(sig *jobspec.MonitorSignal, context string) (drift.Dataset, string, time.Time, string, error) {
	var d jobspec.MonitorData
	if len(sig.Production) > 0 {
		d = sig.Production[0]
	}
	if d.Context != "" && d.Context != "model_inputs_outputs" {
		context = d.Context
	}
	from, to := rc.window(d, rc.size, 0)
	ds, desc, err := rc.open(d, context, from, to)
	if err != nil {
		return nil, "", from, "", err
	}
	fmt.Fprintf(rc.log, "signal %s (%s): production data %s, %d rows\n", sig.Name, sig.Type, desc, ds.Rows())
	if ds.Rows() == 0 {
		drift.Close(ds)
		return nil, "", from, "", fmt.Errorf("the production window %s holds no rows: send traffic to the deployment, or widen production_data.data_window.lookback_window_size", desc)
	}
	return ds, context, from, desc, nil
}

func derefData(d *jobspec.MonitorData) []jobspec.MonitorData {
	if d == nil {
		return nil
	}
	return []jobspec.MonitorData{*d}
}

// window is a data window ending at the firing: fixed when the file
// gives one, else lookback_window_size (default size) back from the
// firing less lookback_window_offset (default offset).
func (rc *runContext) window(d jobspec.MonitorData, size, offset time.Duration) (time.Time, time.Time) {
	if !d.WindowStart.IsZero() || !d.WindowEnd.IsZero() {
		from, to := d.WindowStart, d.WindowEnd
		if to.IsZero() {
			to = rc.fired
		}
		return from, to
	}
	if d.LookbackSize > 0 {
		size = time.Duration(d.LookbackSize)
	}
	if d.LookbackOffset > 0 {
		offset = time.Duration(d.LookbackOffset)
	}
	to := rc.fired.Add(-offset)
	return to.Add(-size), to
}

// open opens a signal's data: the data asset or URI it names, else the
// deployment's collected data of context in [from, to).
func (rc *runContext) open(d jobspec.MonitorData, context string, from, to time.Time) (drift.Dataset, string, error) {
	if d.PreProcessing != "" {
		return rc.preprocessed(d, context, from, to)
	}
	if d.Path != "" {
		files, err := rc.assetFiles(d.Path)
		if err != nil {
			return nil, "", err
		}
		ds, err := drift.OpenFiles(files)
		return ds, d.Path, err
	}
	t := rc.m.Target
	if t.Endpoint == "" {
		return nil, "", errors.New("no production data: set monitoring_target.endpoint_deployment_id or production_data.input_data")
	}
	if context != "model_inputs" && context != "model_outputs" {
		return nil, "", fmt.Errorf("data_context %s has no collected data; give input_data", context)
	}
	dep, err := rc.r.Store.FindOnlineDeployment(rc.ctx, rc.ws, t.Endpoint, t.Deployment)
	if err != nil {
		return nil, "", fmt.Errorf("monitoring_target.endpoint_deployment_id: %s", wharf.ErrorMessage(err))
	}
	if !serving.Collects(dep.Spec, context) {
		return nil, "", fmt.Errorf("deployment %s of endpoint %s does not collect %s: add\n"+
			"  data_collector:\n    collections:\n      %s:\n        enabled: 'True'\n"+
			"to its YAML and run `wharf ml online-deployment update -f <file>`; monitoring reads the data collected from then on",
			t.Deployment, t.Endpoint, context, context)
	}
	dir, err := rc.collected(context, from, to)
	if err != nil {
		return nil, "", err
	}
	ds, err := drift.OpenCollected(dir, from, to, context)
	desc := fmt.Sprintf("%s of %s:%s from %s to %s", context, t.Endpoint, t.Deployment, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	return ds, desc, err
}

// collected copies the deployment's collected data of context in the
// hours that overlap [from, to) out of the workspace datastore, where
// every server sharing the store files its own: modelDataCollector/
// <endpoint>/<deployment>/<context>/YYYY/MM/DD/HH/<instance>.jsonl. It
// returns the folder holding <context>/YYYY/MM/DD/HH/*.jsonl.
func (rc *runContext) collected(context string, from, to time.Time) (string, error) {
	t := rc.m.Target
	prefix := "modelDataCollector/" + t.Endpoint + "/" + t.Deployment + "/" + context
	files, err := rc.r.Store.ListDatastoreFiles(rc.ctx, rc.ws, wharf.DefaultDatastore, prefix)
	if err != nil {
		return "", err
	}
	dir := rc.scratchDir("collected-" + context)
	for _, f := range files {
		rel := strings.TrimPrefix(f.Path, prefix+"/")
		hour, err := time.Parse("2006/01/02/15", path.Dir(rel))
		if err != nil || f.Kind != "file" || !strings.HasSuffix(rel, ".jsonl") || !hour.Before(to) || !hour.Add(time.Hour).After(from) {
			continue
		}
		if _, err := rc.materialize(f.Digest, f.Kind, filepath.Join(dir, context, filepath.FromSlash(path.Dir(rel))), path.Base(rel)); err != nil {
			return "", fmt.Errorf("collected data %s: %w", f.Path, err)
		}
	}
	return dir, nil
}

// reference opens a signal's reference data: as the file says; else the
// training data of the deployed model's lineage; else, as Azure ML does,
// the production data collected before the production window.
func (rc *runContext) reference(sig *jobspec.MonitorSignal, prodCtx string, prodFrom time.Time) (drift.Dataset, string, error) {
	if ref := sig.Reference; ref != nil {
		if ref.Path != "" {
			return rc.open(*ref, ref.Context, time.Time{}, time.Time{})
		}
		if ref.Context == "model_inputs" || ref.Context == "model_outputs" {
			// By default everything collected before the production
			// window.
			from, to := time.Unix(0, 0), prodFrom
			if ref.LookbackSize > 0 || !ref.WindowStart.IsZero() || !ref.WindowEnd.IsZero() {
				from, to = rc.window(*ref, time.Duration(ref.LookbackSize), rc.fired.Sub(prodFrom))
			}
			return rc.open(*ref, ref.Context, from, to)
		}
	}
	if sig.Type == jobspec.SignalDataDrift || sig.Type == jobspec.SignalDataQuality {
		l := rc.trainingData()
		if l.err == nil {
			ds, err := drift.OpenFiles(l.files)
			return ds, "training data of the model's lineage, " + l.source, err
		}
		fmt.Fprintf(rc.log, "signal %s: no training data in the model's lineage (%s); the reference is the production data collected before the window\n", sig.Name, l.err)
	}
	return rc.open(jobspec.MonitorData{}, prodCtx, time.Unix(0, 0), prodFrom)
}

// trainingData finds the data the deployed model was trained on: the
// model version's run, the job step that logged it, and that step's data
// input (train_data when it has several).
func (rc *runContext) trainingData() *lineageData {
	if rc.lineage != nil {
		return rc.lineage
	}
	rc.lineage = &lineageData{}
	l := rc.lineage
	t := rc.m.Target
	model := strings.TrimPrefix(t.Model, "azureml:")
	if model == "" && t.Endpoint != "" {
		dep, err := rc.r.Store.FindOnlineDeployment(rc.ctx, rc.ws, t.Endpoint, t.Deployment)
		if err != nil {
			l.err = err
			return l
		}
		model = dep.Model
	}
	name, version, ok := strings.Cut(model, ":")
	var n int64
	if _, err := fmt.Sscan(version, &n); !ok || err != nil {
		l.err = fmt.Errorf("model %q has no version number", model)
		return l
	}
	mv, err := rc.r.Store.FindModelVersion(rc.ctx, rc.ws, name, n)
	if err != nil {
		l.err = err
		return l
	}
	if mv.RunID == "" {
		l.err = fmt.Errorf("model %s:%d was registered without a run", name, n)
		return l
	}
	run, err := rc.r.Store.FindRun(rc.ctx, rc.ws, mv.RunID)
	if err != nil {
		l.err = err
		return l
	}
	step, err := rc.r.Store.FindJob(rc.ctx, rc.ws, run.Tags["wharf.job"])
	if err != nil {
		l.err = fmt.Errorf("run %s names no job", mv.RunID)
		return l
	}
	candidates := []*wharf.Job{step}
	if step.Parent != "" {
		// The register step logs the model; the data it was trained on
		// is a sibling's input.
		if sibs, err := rc.r.Store.ListJobs(rc.ctx, rc.ws, step.Parent, 0); err == nil {
			candidates = append(candidates, sibs...)
		}
	}
	var pick *wharf.JobValue
	for _, j := range candidates {
		for _, k := range sortedKeys(j.Inputs) {
			v := j.Inputs[k]
			if v.Digest == "" {
				continue
			}
			if strings.Contains(k, "train") {
				pick = &v
				break
			}
		}
		if pick != nil {
			break
		}
	}
	if pick == nil {
		l.err = fmt.Errorf("the jobs of run %s have no training data input", mv.RunID)
		return l
	}
	dir := filepath.Join(rc.scratch, "lineage")
	if l.files, err = rc.materialize(pick.Digest, pick.Kind, dir, "train"+filepath.Ext(pick.Source)); err != nil {
		l.err = err
		return l
	}
	l.source, l.digest, l.kind = pick.Source, pick.Digest, pick.Kind
	return l
}

// assetFiles materializes the data an input_data path names
// (azureml:<name>:<version> or azureml:<name>@latest) and returns its
// files.
func (rc *runContext) assetFiles(path string) ([]string, error) {
	name, version := splitAssetRef(path)
	a, err := rc.r.Store.FindAsset(rc.ctx, rc.ws, wharf.AssetData, name, version)
	if err != nil {
		return nil, fmt.Errorf("input_data %s: %s", path, wharf.ErrorMessage(err))
	}
	if a.Digest == "" {
		return nil, fmt.Errorf("input_data %s holds no stored content", path)
	}
	var spec struct {
		Type string `json:"type"`
		Path string `json:"path"`
	}
	_ = json.Unmarshal(a.Spec, &spec)
	kind := "folder"
	if spec.Type == "uri_file" {
		kind = "file"
	}
	return rc.materialize(a.Digest, kind, filepath.Join(rc.scratch, "asset-"+name+"-"+a.Version), filepath.Base(spec.Path))
}

// materialize writes stored content to dir: a folder snapshot, or a file
// named fileName; it returns the files.
func (rc *runContext) materialize(digest, kind, dir, fileName string) ([]string, error) {
	if kind != "file" {
		if err := snapshot.Materialize(rc.ctx, digest, rc.r.Blobs, dir); err != nil {
			return nil, err
		}
		return []string{dir}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if fileName == "" || fileName == "." || fileName == "/" {
		fileName = "data.csv"
	}
	p := filepath.Join(dir, fileName)
	rd, _, err := rc.r.Blobs.Open(rc.ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return nil, err
	}
	return []string{p}, f.Close()
}

// breaches turns the failed metrics of signals with alerts on into the
// job's breach tag and an alert per recipient, as Azure ML words them.
func breaches(j *wharf.Job, schedule string, m *jobspec.Monitor, runs []*signalRun) ([]*wharf.MonitorAlert, map[string]string) {
	var alerts []*wharf.MonitorAlert
	var messages []string
	tags := map[string]string{}
	for _, sr := range runs {
		var failed []map[string]any
		for _, r := range sr.results {
			if !r.Passed {
				failed = append(failed, map[string]any{"group": r.Feature, "metric_value": r.Value, "metric_name": r.Metric, "threshold_value": r.Threshold})
			}
		}
		if len(failed) == 0 {
			continue
		}
		list, _ := json.Marshal(failed)
		msg := fmt.Sprintf("The signal '%s' has failed due to one or more features violating metric thresholds. %s", sr.sig.Name, list)
		messages = append(messages, msg)
		tags[schedule+"_"+sr.sig.Name] = "threshold_breached"
		if !sr.sig.AlertEnabled {
			continue
		}
		subject := fmt.Sprintf("Model monitor %s: signal %s breached its thresholds", schedule, sr.sig.Name)
		text := alertText(j, schedule, m, sr)
		body, _ := json.Marshal(map[string]any{"event": "threshold_breached", "workspace": j.Workspace, "monitor": schedule, "job": j.Name,
			"signal": sr.sig.Name, "signal_type": sr.sig.Type, "message": msg, "breaches": failed,
			"endpoint": m.Target.Endpoint, "deployment": m.Target.Deployment})
		for _, e := range m.Emails {
			alerts = append(alerts, &wharf.MonitorAlert{Signal: sr.sig.Name, Channel: wharf.AlertEmail, Target: e, Subject: subject, Body: text})
		}
		for _, w := range m.Webhooks {
			alerts = append(alerts, &wharf.MonitorAlert{Signal: sr.sig.Name, Channel: wharf.AlertWebhook, Target: w.URL, Secret: w.Secret,
				Subject: subject, Body: string(body)})
		}
	}
	if len(messages) > 0 {
		tags[wharf.BreachTag] = strings.Join(messages, "\n")
	}
	return alerts, tags
}

func alertText(j *wharf.Job, schedule string, m *jobspec.Monitor, sr *signalRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The signal '%s' (%s) of model monitor %s has failed due to one or more features violating metric thresholds.\n\n", sr.sig.Name, sr.sig.Type, schedule)
	if m.Target.Endpoint != "" {
		fmt.Fprintf(&b, "Deployment: %s/%s\n", m.Target.Endpoint, m.Target.Deployment)
	}
	fmt.Fprintf(&b, "Workspace:  %s\nJob:        %s (wharf ml job show -n %s -w %s)\n\n", j.Workspace, j.Name, j.Name, j.Workspace)
	var failed []wharf.MonitorResult
	for _, r := range sr.results {
		if !r.Passed {
			failed = append(failed, r)
		}
	}
	writeTable(&b, failed)
	return b.String()
}

// writeTable lists results: signal, feature, metric, value, threshold,
// direction and whether it passed.
func writeTable(w io.Writer, results []wharf.MonitorResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNAL\tFEATURE\tTYPE\tMETRIC\tVALUE\tTHRESHOLD\tDIRECTION\tRESULT")
	for _, r := range results {
		value := fmt.Sprintf("%.6g", r.Value)
		switch {
		case math.IsNaN(r.Value):
			value = "-"
		case isRowCount(r.Metric):
			value = fmt.Sprintf("%.0f", r.Value)
		}
		result := "pass"
		if !r.Passed {
			result = "FAIL"
		}
		if r.Detail != "" {
			result += " (" + r.Detail + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.6g\t%s\t%s\n", r.Signal, r.Feature, r.DataType, r.Metric, value, r.Threshold, r.Direction, result)
	}
	tw.Flush()
}

// isRowCount tells the row count metrics, which have no threshold.
func isRowCount(metric string) bool {
	return metric == drift.BaselineRowCount || metric == drift.TargetRowCount
}

// message is what a run's log and job say of a signal's error: what it
// found wrong with the data or the monitor, which is the user's to read.
func message(err error) string {
	var we *wharf.Error
	if errors.As(err, &we) {
		return wharf.ErrorMessage(err)
	}
	return err.Error()
}

// scratchDir is a folder of the run's scratch space.
func (rc *runContext) scratchDir(name string) string { return filepath.Join(rc.scratch, name) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
