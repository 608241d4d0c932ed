package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/jobspec"
)

// collectedURI is the datastore folder of a deployment's collected data
// of one collection, as a job input names it.
func collectedURI(t jobspec.MonitorTarget, collection string) string {
	return "azureml://datastores/" + wharf.DefaultDatastore + "/paths/modelDataCollector/" + t.Endpoint + "/" + t.Deployment + "/" + collection
}

// componentStep is a pipeline step running a registered component with
// the given inputs, whose named outputs are written as mltable.
func componentStep(component string, inputs map[string]any, outputs ...string) map[string]any {
	outs := map[string]any{}
	for _, o := range outputs {
		outs[o] = map[string]any{"type": "mltable"}
	}
	return map[string]any{"type": "command", "component": component, "inputs": inputs, "outputs": outs}
}

// preprocessStep runs a pre-processing component over d's data in
// [from, to), with the inputs Azure ML's contract names.
func (rc *runContext) preprocessStep(d jobspec.MonitorData, context string, from, to time.Time) map[string]any {
	path := d.Path
	if path == "" {
		path = collectedURI(rc.m.Target, context)
	}
	return componentStep(d.PreProcessing, map[string]any{
		"data_window_start": from.UTC().Format(time.RFC3339),
		"data_window_end":   to.UTC().Format(time.RFC3339),
		"input_data":        map[string]any{"type": "uri_folder", "path": path},
	}, "preprocessed_data")
}

// runSteps runs a pipeline of component steps as a job of its own, with
// the rights of the monitor's owner and sandboxed as every step is, waits
// for it and returns its steps' jobs by step name.
func (rc *runContext) runSteps(what string, jobs map[string]any) (map[string]*wharf.Job, error) {
	if rc.r.Steps == nil {
		return nil, fmt.Errorf("%s: this server cannot run component steps", what)
	}
	doc, err := json.Marshal(map[string]any{"type": "pipeline", "display_name": rc.schedule + ": " + what,
		"experiment_name": rc.schedule, "tags": map[string]string{"wharf.monitor_job": rc.job.Name}, "jobs": jobs})
	if err != nil {
		return nil, err
	}
	j, err := rc.r.Steps(rc.ctx, rc.ws, rc.job.SubmittedBy, doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", what, message(err))
	}
	fmt.Fprintf(rc.log, "%s: job %s\n", what, j.Name)
	for !wharf.JobTerminal(j.Status) {
		select {
		case <-rc.ctx.Done():
			return nil, rc.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if j, err = rc.r.Store.FindJob(rc.ctx, rc.ws, j.Name); err != nil {
			return nil, err
		}
	}
	steps, err := rc.r.Store.ListJobs(rc.ctx, rc.ws, j.Name, 0)
	if err != nil {
		return nil, err
	}
	if j.Status != wharf.JobCompleted {
		why := j.Error
		for _, s := range steps {
			if s.Status == wharf.JobFailed && s.Error != "" {
				// The step's own error says what went wrong.
				why = fmt.Sprintf("step %s: %s", s.Step, s.Error)
				break
			}
		}
		return nil, fmt.Errorf("%s: job %s ended %s: %s (wharf ml job show -n %s)", what, j.Name, j.Status, why, j.Name)
	}
	out := map[string]*wharf.Job{}
	for _, s := range steps {
		out[s.Step] = s
	}
	return out, nil
}

// stepOutput opens the data a finished step wrote to output.
func (rc *runContext) stepOutput(step *wharf.Job, output string) (drift.Dataset, error) {
	o, ok := step.Outputs[output]
	if !ok || step == nil {
		return nil, fmt.Errorf("step %s wrote no output %s", step.Name, output)
	}
	files, err := rc.materialize(o.Digest, o.Kind, rc.scratchDir(step.Name+"-"+output), output+".csv")
	if err != nil {
		return nil, err
	}
	return drift.OpenFiles(files)
}

// preprocessed runs d's pre-processing component and opens its output.
func (rc *runContext) preprocessed(d jobspec.MonitorData, context string, from, to time.Time) (drift.Dataset, string, error) {
	steps, err := rc.runSteps("pre-processing "+d.PreProcessing, map[string]any{"preprocess": rc.preprocessStep(d, context, from, to)})
	if err != nil {
		return nil, "", err
	}
	ds, err := rc.stepOutput(steps["preprocess"], "preprocessed_data")
	return ds, fmt.Sprintf("%s pre-processed by %s from %s to %s", orDefault(d.Path, context), d.PreProcessing,
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)), err
}

// custom runs a custom signal: its component, after the pre-processing
// of each input that has one, as one pipeline; the component's
// signal_metrics output (columns group, metric_value, metric_name,
// threshold_value) is the signal's results.
func (rc *runContext) custom(sig *jobspec.MonitorSignal) ([]wharf.MonitorResult, error) {
	inputs := map[string]any{}
	jobs := map[string]any{}
	for _, name := range sortedKeys(sig.CustomInputs) {
		d := sig.CustomInputs[name]
		context := orDefault(d.Context, "model_inputs")
		from, to := rc.window(d, rc.size, 0)
		switch {
		case d.PreProcessing != "":
			step := "preprocess_" + name
			jobs[step] = rc.preprocessStep(d, context, from, to)
			inputs[name] = "${{parent.jobs." + step + ".outputs.preprocessed_data}}"
		case d.Path != "":
			inputs[name] = map[string]any{"type": "mltable", "path": d.Path}
		default:
			inputs[name] = map[string]any{"type": "uri_folder", "path": collectedURI(rc.m.Target, context)}
		}
	}
	for metric, v := range sig.Thresholds[""] {
		inputs[metric+"_threshold"] = v
	}
	jobs["signal"] = componentStep(sig.ComponentID, inputs, "signal_metrics")
	steps, err := rc.runSteps("custom signal "+sig.Name, jobs)
	if err != nil {
		return nil, err
	}
	ds, err := rc.stepOutput(steps["signal"], "signal_metrics")
	if err != nil {
		return nil, err
	}
	defer drift.Close(ds)
	cols := map[string][]*string{}
	for _, c := range []string{"group", "metric_value", "metric_name", "threshold_value"} {
		if cols[c], err = readColumn(rc, ds, c); err != nil {
			return nil, fmt.Errorf("custom signal %s: signal_metrics: %w", sig.Name, err)
		}
	}
	var out []wharf.MonitorResult
	for i := range cols["metric_name"] {
		text := func(c string) string {
			if v := cols[c][i]; v != nil {
				return *v
			}
			return ""
		}
		value, err1 := strconv.ParseFloat(text("metric_value"), 64)
		threshold, err2 := strconv.ParseFloat(text("threshold_value"), 64)
		r := wharf.MonitorResult{Signal: sig.Name, SignalType: sig.Type, Feature: text("group"), Metric: text("metric_name"),
			Value: value, Threshold: threshold, Direction: wharf.HigherIsWorse, Passed: true}
		if jobspec.LowerIsWorse(r.Metric) {
			r.Direction = wharf.LowerIsWorse
		}
		switch {
		case err1 != nil:
			r.Value, r.Detail = math.NaN(), "no value"
		case err2 != nil:
			r.Threshold, r.Detail = 0, "no threshold"
		case r.Direction == wharf.LowerIsWorse:
			r.Passed = value >= threshold
		default:
			r.Passed = value <= threshold
		}
		out = append(out, r)
	}
	return out, nil
}
