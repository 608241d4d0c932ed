package http

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

// pipelineBatchSpec is a pipeline batch deployment as stored: the
// pipeline job document every invocation runs, with the invocation's
// inputs and outputs and the deployment's settings laid over its own.
type pipelineBatchSpec struct {
	// Job is the document: {type: pipeline, component: ...} for a
	// deployed pipeline component, or a pipeline job's own document.
	Job json.RawMessage `json:"job"`
	// JobDefinition, in a request, names an existing pipeline job whose
	// document becomes Job; it is kept to show where Job came from.
	JobDefinition string            `json:"job_definition,omitempty"`
	Settings      map[string]any    `json:"settings,omitempty"`
	Description   string            `json:"description,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
}

// putPipelineBatchDeployment creates or updates a deployment that runs a
// pipeline. Its pipeline must resolve now: a component that exists and
// reads, or a job document that resolves.
func (s *Server) putPipelineBatchDeployment(r *http.Request, ws, ep, name string, req *batchDeploymentRequest) (int, batchDeploymentJSON, error) {
	ctx := r.Context()
	var spec pipelineBatchSpec
	if err := json.Unmarshal(req.Spec, &spec); err != nil {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "spec: %s", err.Error()).WithField("spec")
	}
	if spec.JobDefinition != "" {
		j, err := s.Store.FindJob(ctx, ws, spec.JobDefinition)
		if err != nil {
			return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "job_definition: %s", wharf.ErrorMessage(err)).WithField("job_definition")
		}
		if j.Type != wharf.JobTypePipeline || len(j.Document) == 0 {
			return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "job_definition: job %s is not a pipeline job submitted as a document", j.Name).WithField("job_definition")
		}
		spec.Job = j.Document
	}
	doc, err := pipelineDocument(spec.Job)
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	delete(doc, "name")
	if c, ok := spec.Settings["default_compute"].(string); ok {
		compute, err := jobspec.ParseResourceRef(c)
		if err == nil {
			_, err = s.Store.FindCompute(ctx, ws, compute)
		}
		if err != nil {
			return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "settings.default_compute %q does not exist in workspace %s", c, ws).WithField("settings.default_compute")
		}
	}
	if _, isComponent := doc["component"]; isComponent {
		_, _, err = s.resolver().PipelinePorts(ctx, ws, mustJSON(doc))
	} else {
		// A job's pipeline runs as the job ran, until an invocation
		// replaces its inputs: it must resolve as it stands.
		_, err = s.resolver().Job(ctx, ws, mustJSON(withSettings(doc, spec.Settings)))
	}
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	spec.Job = mustJSON(doc)
	d := &wharf.BatchDeployment{Workspace: ws, Endpoint: ep, Name: name, Type: wharf.JobTypePipeline, Spec: mustJSON(spec)}
	created, err := s.storeBatchDeployment(ctx, d, req.SetDefault)
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	return createdStatus(created), s.batchDeploymentJSON(d), nil
}

// invokePipelineDeployment runs a pipeline deployment's pipeline as a
// pipeline job with the invocation's inputs and outputs.
func (s *Server) invokePipelineDeployment(r *http.Request, d *wharf.BatchDeployment, req *invokeBatchRequest) (int, any, error) {
	ctx, ws := r.Context(), d.Workspace
	var spec pipelineBatchSpec
	if err := json.Unmarshal(d.Spec, &spec); err != nil {
		return 0, nil, err
	}
	doc, err := pipelineDocument(spec.Job)
	if err != nil {
		return 0, nil, err
	}
	inputs := asMapping(doc["inputs"])
	declared := slices.Sorted(maps.Keys(inputs))
	_, isComponent := doc["component"]
	for k, v := range req.Inputs {
		if !isComponent && !slices.Contains(declared, k) {
			// A component names its inputs itself, when the job resolves.
			return 0, nil, wharf.Errorf(wharf.EINVALID, "the pipeline of deployment %s has no input %q (inputs: %s)", d.Name, k, strings.Join(declared, ", ")).WithField("inputs." + k)
		}
		inputs[k] = json.RawMessage(v)
	}
	types, outputNames, err := s.resolver().PipelinePorts(ctx, ws, mustJSON(doc))
	if err != nil {
		return 0, nil, err
	}
	if req.Input.Path != "" {
		name, err := onlyDataInput(d.Name, types)
		if err != nil {
			return 0, nil, err
		}
		in := map[string]string{"path": req.Input.Path}
		if req.Input.Type != "" {
			in["type"] = req.Input.Type
		}
		inputs[name] = in
	}
	outputs := asMapping(doc["outputs"])
	for k, v := range req.Outputs {
		outputs[k] = json.RawMessage(v)
	}
	// Every output of the pipeline is the job's, to report and download.
	for _, k := range outputNames {
		if outputs[k] == nil {
			outputs[k] = map[string]any{}
		}
	}
	doc["inputs"], doc["outputs"] = inputs, outputs
	doc = withSettings(doc, spec.Settings)
	tags := map[string]any{}
	for k, v := range asMapping(doc["tags"]) {
		tags[k] = v
	}
	tags["wharf.batch_endpoint"], tags["wharf.batch_deployment"] = d.Endpoint, d.Name
	doc["tags"], doc["experiment_name"], doc["display_name"] = tags, d.Endpoint, d.Endpoint+"-"+d.Name
	delete(doc, "name")
	sub, err := s.resolver().Job(ctx, ws, mustJSON(doc))
	if err != nil {
		return 0, nil, err
	}
	j, err := s.Scheduler.Submit(ctx, ws, callerID(r), sub)
	if err != nil {
		return 0, nil, err
	}
	steps, err := s.Store.ListJobs(ctx, ws, j.Name, 0)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, s.jobView(j, steps, nil, nil), nil
}

// onlyDataInput is the input an invocation's --input feeds: the
// pipeline's one data input.
func onlyDataInput(deployment string, types map[string]string) (string, error) {
	var data []string
	for name, t := range types {
		if jobspec.IsDataType(t) {
			data = append(data, name)
		}
	}
	slices.Sort(data)
	if len(data) != 1 {
		return "", wharf.Errorf(wharf.EINVALID, "--input feeds a pipeline's one data input; deployment %s's pipeline has %d (%s): name them with --set inputs.<name>.path=... or --file",
			deployment, len(data), strings.Join(data, ", ")).WithField("input")
	}
	return data[0], nil
}

// listBatchEndpointJobs lists the jobs an endpoint's invocations made,
// newest first.
func (s *Server) listBatchEndpointJobs(r *http.Request, _ *noBody) (int, []jobJSON, error) {
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	if _, err := s.Store.FindBatchEndpoint(r.Context(), ws, ep); err != nil {
		return 0, nil, err
	}
	jobs, err := s.Store.ListJobs(r.Context(), ws, "", 0)
	if err != nil {
		return 0, nil, err
	}
	out := []jobJSON{}
	for _, j := range jobs {
		if j.Tags["wharf.batch_endpoint"] == ep {
			out = append(out, s.jobJSON(j, nil))
		}
	}
	return http.StatusOK, out, nil
}

// pipelineDocument reads a stored pipeline job document.
func pipelineDocument(raw json.RawMessage) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, wharf.Errorf(wharf.EINVALID, "the deployment's pipeline job is not a JSON object").WithField("spec.job")
	}
	if t, _ := doc["type"].(string); t != wharf.JobTypePipeline {
		return nil, wharf.Errorf(wharf.EINVALID, "the deployment's job is of type %q, not pipeline", t).WithField("spec.job.type")
	}
	return doc, nil
}

// withSettings lays a deployment's settings over a job document's.
func withSettings(doc map[string]any, settings map[string]any) map[string]any {
	if len(settings) == 0 {
		return doc
	}
	merged := asMapping(doc["settings"])
	maps.Copy(merged, settings)
	doc["settings"] = merged
	return doc
}

// asMapping copies a JSON object value; anything else is empty.
func asMapping(v any) map[string]any {
	out := map[string]any{}
	if m, ok := v.(map[string]any); ok {
		maps.Copy(out, m)
	}
	return out
}

// mustJSON encodes a value built from JSON, which does not fail; were it
// to, the result is null, which no resolution accepts.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}
