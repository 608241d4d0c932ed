package arm

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
)

// Job submission: the SDK's job, in ARM's shape, is translated onto the
// job document the CLI submits (Azure ML's CLI v2 job schema as JSON) and
// submitted through the same path (Jobs), so that it is resolved, checked,
// run and shown as any other job.

// registerJobs registers the routes of jobs, their code and data uploads
// (datastores, code versions and the Blob API), and run history; and
// ARM's 404 for what no route serves.
func (h *Handler) registerJobs(ws Group, group func(prefix string) Group) {
	ws.Route("PUT /{workspace}/jobs/{name}", wharf.ActionJobWrite, h.putJob)
	ws.Route("POST /{workspace}/jobs/{name}/cancel", wharf.ActionJobCancel, h.cancelJob)
	ws.Route("GET /{workspace}/jobs/{name}/cancelStatus", wharf.ActionJobRead, h.cancelStatus)
	ws.Route("GET /{workspace}/computes", wharf.ActionComputeRead, h.listComputes)
	ws.Route("GET /{workspace}/computes/{name}", wharf.ActionComputeRead, h.getCompute)
	ws.Route("GET /{workspace}/datastores", wharf.ActionDatastoreRead, h.listDatastores)
	ws.Route("GET /{workspace}/datastores/{name}", wharf.ActionDatastoreRead, h.getDatastore)
	// A datastore's secret lets its holder upload: a data write, as
	// uploading content is on Wharf's own routes.
	ws.Route("POST /{workspace}/datastores/{name}/listSecrets", wharf.ActionDataWrite, h.listSecrets)
	const codes = "/{workspace}/codes/{name}/versions"
	ws.Route("GET "+codes, wharf.ActionDataRead, h.listCodeVersions)
	ws.Route("GET "+codes+"/{version}", wharf.ActionDataRead, h.getCode)
	ws.Route("PUT "+codes+"/{version}", wharf.ActionDataWrite, h.putCode)
	ws.Route("POST "+codes+"/{version}/startPendingUpload", wharf.ActionDataWrite, h.startPendingUpload)

	history := group(HistoryPrefix + Workspaces)
	history.Route("GET /{workspace}/runs/{name}/details", wharf.ActionJobRead, h.runDetails)
	history.Route("GET /{workspace}/runs/{name}/children", wharf.ActionJobRead, h.runChildren)
	group(LogPrefix).Public("GET /{workspace}/{name}/{file...}", h.logFile)

	blobs := group(BlobPrefix + "/{account}")
	blobs.PublicUpload("PUT /{container}/{blob...}", h.putBlob)
	blobs.Public("GET /{container}/{blob...}", h.getBlob)
	blobs.Public("GET /{container}", h.getContainer)

	// Any other ARM path: ARM's 404, which the SDK raises as
	// ResourceNotFoundError, rather than the router's plain one. (Below
	// resourceGroups: /subscriptions/oauth2/... would also be a token
	// endpoint's path.)
	unknown := group("/subscriptions/{subscription}/resourceGroups")
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		unknown.Public(method+" /{path...}", h.notFound)
	}
}

// notFound answers a path no route serves in ARM's error shape.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.WriteError(w, r, wharf.Errorf(wharf.ENOTFOUND, "no resource or operation at %s %s", r.Method, r.URL.Path))
}

// armJobInput is a job input as ARM writes it.
type armJobInput struct {
	JobInputType string          `json:"jobInputType"`
	URI          string          `json:"uri"`
	Mode         string          `json:"mode"`
	Value        json.RawMessage `json:"value"`
	Description  string          `json:"description"`
}

// armJobOutput is a job output as ARM writes it.
type armJobOutput struct {
	JobOutputType string `json:"jobOutputType"`
	URI           string `json:"uri"`
	Mode          string `json:"mode"`
	AssetName     string `json:"assetName"`
	AssetVersion  string `json:"assetVersion"`
	Description   string `json:"description"`
}

// armJob is the part of a job's ARM properties that Wharf runs.
type armJob struct {
	JobType              string                  `json:"jobType"`
	DisplayName          string                  `json:"displayName"`
	ExperimentName       string                  `json:"experimentName"`
	Description          string                  `json:"description"`
	Tags                 map[string]string       `json:"tags"`
	Properties           map[string]string       `json:"properties"`
	Command              string                  `json:"command"`
	CodeID               string                  `json:"codeId"`
	EnvironmentID        string                  `json:"environmentId"`
	ComputeID            string                  `json:"computeId"`
	EnvironmentVariables map[string]string       `json:"environmentVariables"`
	Inputs               map[string]armJobInput  `json:"inputs"`
	Outputs              map[string]armJobOutput `json:"outputs"`
	Resources            *struct {
		InstanceCount int    `json:"instanceCount"`
		InstanceType  string `json:"instanceType"`
		ShmSize       string `json:"shmSize"`
	} `json:"resources"`
	Distribution json.RawMessage `json:"distribution"`
	Limits       *struct {
		Timeout string `json:"timeout"`
		// A sweep's.
		MaxTotalTrials      int    `json:"maxTotalTrials"`
		MaxConcurrentTrials int    `json:"maxConcurrentTrials"`
		TrialTimeout        string `json:"trialTimeout"`
	} `json:"limits"`
	// A sweep's.
	Trial             *armTrial                  `json:"trial"`
	SearchSpace       map[string]json.RawMessage `json:"searchSpace"`
	SamplingAlgorithm map[string]any             `json:"samplingAlgorithm"`
	Objective         *struct {
		Goal          string `json:"goal"`
		PrimaryMetric string `json:"primaryMetric"`
	} `json:"objective"`
	EarlyTermination map[string]any `json:"earlyTermination"`
	// A pipeline's.
	Jobs     map[string]json.RawMessage `json:"jobs"`
	Settings map[string]any             `json:"settings"`
}

// inputModes and outputModes are the CLI's names of ARM's modes.
var (
	inputModes = map[string]string{"ReadOnlyMount": "ro_mount", "ReadWriteMount": "rw_mount", "Download": "download",
		"Direct": "direct", "EvalMount": "eval_mount", "EvalDownload": "eval_download"}
	outputModes = map[string]string{"ReadWriteMount": "rw_mount", "Upload": "upload", "Direct": "direct"}
)

// putJob submits a job. A job's name is never reused: PUT to a name that
// exists is a conflict, as the job document API's.
func (h *Handler) putJob(w http.ResponseWriter, r *http.Request) {
	if h.Jobs == nil {
		h.WriteError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return
	}
	var body struct {
		Properties armJob `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	doc, err := h.jobDocument(r, &body.Properties)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	b, err := json.Marshal(doc)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	j, err := h.Jobs.SubmitJobDocument(r.Context(), r.PathValue("workspace"), callerID(r), r.PathValue("name"), b)
	if err != nil {
		var e *wharf.Error
		if errors.As(err, &e) {
			pipeline := body.Properties.JobType == "Pipeline"
			if f := armJobField(e.Field, pipeline); f != e.Field {
				e.Message = strings.Replace(e.Message, e.Field+": ", f+": ", 1)
				e.Field = f
			}
			for i := range e.Details {
				e.Details[i].Field = armJobField(e.Details[i].Field, pipeline)
			}
		}
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.jobJSON(r, j))
}

// armJobFields are the fields of ARM's job for the job document's
// top-level fields (and a pipeline step's) that ARM names otherwise.
var armJobFields = map[string]string{"compute": "computeId", "component": "componentId", "environment": "environmentId",
	"code": "codeId", "environment_variables": "environmentVariables", "display_name": "displayName",
	"experiment_name": "experimentName"}

// armJobField names the field of the request that a field of the job
// document it was translated to comes from: jobs.<step>.compute is
// properties.jobs.<step>.computeId. The scheduler names a job's steps by
// their place (steps[0].spec.compute): such a field names the request's
// properties.computeId, or for a pipeline, whose refusal names the step,
// properties.jobs.
func armJobField(field string, pipeline bool) string {
	switch {
	case field == "":
		return ""
	case strings.HasPrefix(field, "steps") && pipeline:
		return "properties.jobs"
	case field == "steps[0].spec.compute":
		return "properties.computeId"
	case strings.HasPrefix(field, "steps"):
		return "properties"
	}
	parts := strings.Split(field, ".")
	key := 0
	if parts[0] == "jobs" && len(parts) > 2 {
		key = 2
	}
	if arm, ok := armJobFields[parts[key]]; ok {
		parts[key] = arm
	}
	return "properties." + strings.Join(parts, ".")
}

// jobDocument translates a command or pipeline job.
func (h *Handler) jobDocument(r *http.Request, p *armJob) (map[string]any, error) {
	doc := map[string]any{"name": r.PathValue("name")}
	set := func(k string, v any, ok bool) {
		if ok {
			doc[k] = v
		}
	}
	set("display_name", p.DisplayName, p.DisplayName != "")
	set("experiment_name", p.ExperimentName, p.ExperimentName != "")
	set("description", p.Description, p.Description != "")
	set("tags", p.Tags, len(p.Tags) > 0)
	set("properties", p.Properties, len(p.Properties) > 0)
	if p.ComputeID != "" {
		doc["compute"] = "azureml:" + lastSegment(p.ComputeID, "computes")
	}
	inputs, err := jobInputs(p.Inputs, "properties.inputs")
	if err != nil {
		return nil, err
	}
	set("inputs", inputs, len(inputs) > 0)
	outputs := jobOutputs(p.Outputs)
	set("outputs", outputs, len(outputs) > 0)
	switch p.JobType {
	case "Command":
		doc["type"] = "command"
		doc["command"] = p.Command
		set("environment_variables", p.EnvironmentVariables, len(p.EnvironmentVariables) > 0)
		if p.EnvironmentID != "" {
			doc["environment"] = environmentRef(p.EnvironmentID)
		}
		if p.CodeID != "" {
			code, err := h.codeURI(r, p.CodeID)
			if err != nil {
				return nil, err
			}
			doc["code"] = code
		}
		if p.Resources != nil && p.Resources.InstanceCount > 0 {
			doc["resources"] = map[string]any{"instance_count": p.Resources.InstanceCount}
		}
		if p.Limits != nil && p.Limits.Timeout != "" {
			secs, err := timeoutSeconds("properties.limits.timeout", p.Limits.Timeout)
			if err != nil {
				return nil, err
			}
			doc["limits"] = map[string]any{"timeout": secs}
		}
		if len(p.Distribution) > 0 && string(p.Distribution) != "null" {
			var d map[string]any
			if err := json.Unmarshal(p.Distribution, &d); err != nil {
				return nil, wharf.Errorf(wharf.EINVALID, "distribution is not an object: %v", err).WithField("properties.distribution")
			}
			doc["distribution"] = snakeKeys(d)
		}
	case "Sweep":
		if err := h.sweepDocument(r, p, doc); err != nil {
			return nil, err
		}
	case "Pipeline":
		doc["type"] = "pipeline"
		if len(p.Settings) > 0 {
			doc["settings"] = pipelineSettings(p.Settings)
		}
		steps := map[string]any{}
		for name, raw := range p.Jobs {
			step, err := h.pipelineStep(r, name, raw)
			if err != nil {
				return nil, err
			}
			steps[name] = step
		}
		doc["jobs"] = steps
	default:
		return nil, wharf.Errorf(wharf.EINVALID, "jobType %q is not supported through the SDK (Command, Pipeline and Sweep are)", p.JobType).WithField("properties.jobType")
	}
	return doc, nil
}

// armTrial is a sweep's trial, a command.
type armTrial struct {
	Command              string            `json:"command"`
	CodeID               string            `json:"codeId"`
	EnvironmentID        string            `json:"environmentId"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
	Resources            *struct {
		InstanceCount int `json:"instanceCount"`
	} `json:"resources"`
	Distribution map[string]any `json:"distribution"`
}

// searchSpaceArgs names the arguments of each of ARM's search space
// distributions, written [name, [args...]], in the CLI's words; choice's
// one argument is its list of values.
var searchSpaceArgs = map[string][]string{
	"choice": {"values"}, "randint": {"upper"},
	"uniform": {"min_value", "max_value"}, "loguniform": {"min_value", "max_value"},
	"quniform": {"min_value", "max_value", "q"}, "qloguniform": {"min_value", "max_value", "q"},
	"normal": {"mu", "sigma"}, "lognormal": {"mu", "sigma"},
	"qnormal": {"mu", "sigma", "q"}, "qlognormal": {"mu", "sigma", "q"},
}

// earlyTerminationTypes are the CLI's names of ARM's policyType.
var earlyTerminationTypes = map[string]string{"Bandit": "bandit", "MedianStopping": "median_stopping", "TruncationSelection": "truncation_selection"}

// sweepDocument translates a sweep job's trial, search space, sampling,
// objective, limits and early termination into doc, as the CLI's sweep
// job file writes them.
func (h *Handler) sweepDocument(r *http.Request, p *armJob, doc map[string]any) error {
	doc["type"] = "sweep"
	if p.Trial == nil {
		return wharf.Errorf(wharf.EINVALID, "a sweep job needs a trial").WithField("properties.trial")
	}
	trial := map[string]any{"command": p.Trial.Command}
	if p.Trial.EnvironmentID != "" {
		trial["environment"] = environmentRef(p.Trial.EnvironmentID)
	}
	if p.Trial.CodeID != "" {
		code, err := h.codeURI(r, p.Trial.CodeID)
		if err != nil {
			return err
		}
		trial["code"] = code
	}
	if len(p.Trial.EnvironmentVariables) > 0 {
		trial["environment_variables"] = p.Trial.EnvironmentVariables
	}
	if p.Trial.Resources != nil && p.Trial.Resources.InstanceCount > 0 {
		trial["resources"] = map[string]any{"instance_count": p.Trial.Resources.InstanceCount}
	}
	if len(p.Trial.Distribution) > 0 {
		trial["distribution"] = snakeKeys(p.Trial.Distribution)
	}
	doc["trial"] = trial
	space := map[string]any{}
	for name, raw := range p.SearchSpace {
		field := "properties.searchSpace." + name
		var expr []json.RawMessage
		var kind string
		var args []any
		if json.Unmarshal(raw, &expr) != nil || len(expr) != 2 || json.Unmarshal(expr[0], &kind) != nil || json.Unmarshal(expr[1], &args) != nil {
			return wharf.Errorf(wharf.EINVALID, "search space parameter %s is not [distribution, [arguments]]", name).WithField(field)
		}
		names, ok := searchSpaceArgs[kind]
		if !ok {
			return wharf.Errorf(wharf.EINVALID, "search space parameter %s: unknown distribution %q", name, kind).WithField(field)
		}
		if len(args) != len(names) {
			return wharf.Errorf(wharf.EINVALID, "search space parameter %s: %s takes %d arguments, got %d", name, kind, len(names), len(args)).WithField(field)
		}
		param := map[string]any{"type": kind}
		for i, arg := range names {
			param[arg] = args[i]
		}
		space[name] = param
	}
	doc["search_space"] = space
	if t, ok := p.SamplingAlgorithm["samplingAlgorithmType"].(string); ok {
		sampling := snakeKeys(p.SamplingAlgorithm)
		delete(sampling, "sampling_algorithm_type")
		sampling["type"] = strings.ToLower(t)
		doc["sampling_algorithm"] = sampling
	}
	if p.Objective != nil {
		doc["objective"] = map[string]any{"goal": strings.ToLower(p.Objective.Goal), "primary_metric": p.Objective.PrimaryMetric}
	}
	if p.Limits != nil {
		limits := map[string]any{}
		if p.Limits.MaxTotalTrials > 0 {
			limits["max_total_trials"] = p.Limits.MaxTotalTrials
		}
		if p.Limits.MaxConcurrentTrials > 0 {
			limits["max_concurrent_trials"] = p.Limits.MaxConcurrentTrials
		}
		for key, iso := range map[string]string{"timeout": p.Limits.Timeout, "trial_timeout": p.Limits.TrialTimeout} {
			if iso == "" {
				continue
			}
			secs, err := timeoutSeconds("properties.limits."+camel(key), iso)
			if err != nil {
				return err
			}
			limits[key] = secs
		}
		doc["limits"] = limits
	}
	if t, ok := p.EarlyTermination["policyType"].(string); ok {
		policy := snakeKeys(p.EarlyTermination)
		delete(policy, "policy_type")
		policy["type"] = earlyTerminationTypes[t]
		if policy["type"] == "" {
			policy["type"] = t // refused by the sweep's reading, naming it
		}
		doc["early_termination"] = policy
	}
	return nil
}

// jobInputs translates inputs: literals become values, data its path.
func jobInputs(in map[string]armJobInput, field string) (map[string]any, error) {
	out := map[string]any{}
	for name, i := range in {
		switch strings.ToLower(i.JobInputType) {
		case "literal":
			var v any
			if err := json.Unmarshal(i.Value, &v); err != nil {
				return nil, wharf.Errorf(wharf.EINVALID, "input %s has no literal value", name).WithField(field + "." + name + ".value")
			}
			out[name] = v
		case "":
			return nil, wharf.Errorf(wharf.EINVALID, "input %s has no jobInputType", name).WithField(field + "." + name + ".jobInputType")
		default:
			d := map[string]any{"type": strings.ToLower(i.JobInputType), "path": dataRef(i.URI)}
			if m := inputModes[i.Mode]; m != "" {
				d["mode"] = m
			}
			out[name] = d
		}
	}
	return out, nil
}

// jobOutputs translates outputs: their type, and their path or asset
// when given.
func jobOutputs(in map[string]armJobOutput) map[string]any {
	out := map[string]any{}
	for name, o := range in {
		d := map[string]any{"type": strings.ToLower(o.JobOutputType)}
		if o.URI != "" {
			d["path"] = o.URI
		}
		if m := outputModes[o.Mode]; m != "" {
			d["mode"] = m
		}
		if o.AssetName != "" {
			d["name"] = o.AssetName
		}
		if o.AssetVersion != "" {
			d["version"] = o.AssetVersion
		}
		out[name] = d
	}
	return out
}

// dataRef is the CLI's reference for an input URI: an asset's ARM id
// becomes azureml:<name>:<version>; datastore URIs and URLs stay.
func dataRef(uri string) string {
	if !strings.HasPrefix(strings.ToLower(uri), "/subscriptions/") {
		return uri
	}
	rest := uri[strings.LastIndex(strings.ToLower(uri), "/data/")+len("/data/"):]
	if name, version, ok := strings.Cut(rest, "/versions/"); ok {
		return "azureml:" + name + ":" + version
	}
	return "azureml:" + rest + "@latest"
}

// environmentRef is the CLI's reference for an environment id: the ARM
// id of a workspace's version becomes azureml:<name>:<version>; a
// registry's (curated) stays as written.
func environmentRef(id string) string {
	lower := strings.ToLower(id)
	if !strings.HasPrefix(lower, "/subscriptions/") {
		return id
	}
	i := strings.LastIndex(lower, "/environments/")
	if i < 0 {
		return id
	}
	name, version, ok := strings.Cut(id[i+len("/environments/"):], "/versions/")
	if !ok {
		return "azureml:" + name + "@latest"
	}
	return "azureml:" + name + ":" + version
}

// lastSegment is the name after /<kind>/ in an ARM id, or the id itself
// when it is a bare name.
func lastSegment(id, kind string) string {
	lower := strings.ToLower(id)
	if i := strings.LastIndex(lower, "/"+kind+"/"); i >= 0 {
		return id[i+len(kind)+2:]
	}
	return strings.TrimPrefix(id, "azureml:")
}

// snakeKeys writes an ARM object's camelCase keys in the CLI's
// snake_case (processCountPerInstance: process_count_per_instance).
func snakeKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		var b strings.Builder
		for i, c := range k {
			if c >= 'A' && c <= 'Z' {
				if i > 0 {
					b.WriteByte('_')
				}
				c += 'a' - 'A'
			}
			b.WriteRune(c)
		}
		key := b.String()
		if key == "distribution_type" {
			key = "type"
			if s, ok := v.(string); ok {
				v = strings.ToLower(s)
			}
		}
		out[key] = v
	}
	return out
}

// timeoutSeconds reads ARM's limits.timeout, an ISO 8601 duration (the
// SDK writes timeout=600 as PT10M), as the CLI's, in seconds.
func timeoutSeconds(field, iso string) (int, error) {
	ms, err := milliseconds(field, iso)
	return ms / 1000, err
}

// pipelineSettings translates a pipeline's settings.
func pipelineSettings(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "defaultCompute", "default_compute":
			if id, ok := v.(string); ok && id != "" {
				out["default_compute"] = "azureml:" + lastSegment(id, "computes")
			}
		case "defaultDatastore", "default_datastore":
			if id, ok := v.(string); ok && id != "" {
				out["default_datastore"] = "azureml:" + lastSegment(id, "datastores")
			}
		case "continueOnStepFailure", "continue_on_step_failure":
			out["continue_on_step_failure"] = v
		case "forceRerun", "force_rerun":
			out["force_rerun"] = v
		}
	}
	return out
}

// pipelineStep translates one step of a pipeline, which the SDK writes
// in its own mix of the CLI's and ARM's shapes: a command step with its
// component by id.
func (h *Handler) pipelineStep(r *http.Request, name string, raw json.RawMessage) (map[string]any, error) {
	field := "properties.jobs." + name
	var s struct {
		Type        string                     `json:"type"`
		ComponentID string                     `json:"componentId"`
		ComputeID   string                     `json:"computeId"`
		DisplayName string                     `json:"display_name"`
		Inputs      map[string]json.RawMessage `json:"inputs"`
		Outputs     map[string]json.RawMessage `json:"outputs"`
		Environment map[string]string          `json:"environment_variables"`
		Resources   *struct {
			InstanceCount int `json:"instance_count"`
		} `json:"resources"`
		Limits *struct {
			Timeout string `json:"timeout"`
		} `json:"limits"`
		Distribution map[string]any `json:"distribution"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "step %s is not an object: %v", name, err).WithField(field)
	}
	if s.Type != "command" {
		return nil, wharf.Errorf(wharf.EINVALID, "step %s: type %q is not supported through the SDK (command steps are)", name, s.Type).WithField(field + ".type")
	}
	if s.ComponentID == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "step %s has no componentId", name).WithField(field + ".componentId")
	}
	step := map[string]any{"type": "command", "component": componentRef(s.ComponentID)}
	if s.DisplayName != "" {
		step["display_name"] = s.DisplayName
	}
	if s.ComputeID != "" {
		step["compute"] = "azureml:" + lastSegment(s.ComputeID, "computes")
	}
	if len(s.Environment) > 0 {
		step["environment_variables"] = s.Environment
	}
	// Written in the CLI's snake_case already, as the SDK writes a
	// step's; its instance_type and limits' job_limits_type name nothing
	// on Wharf.
	if s.Resources != nil && s.Resources.InstanceCount > 0 {
		step["resources"] = map[string]any{"instance_count": s.Resources.InstanceCount}
	}
	if s.Limits != nil && s.Limits.Timeout != "" {
		secs, err := timeoutSeconds(field+".limits.timeout", s.Limits.Timeout)
		if err != nil {
			return nil, err
		}
		step["limits"] = map[string]any{"timeout": secs}
	}
	if len(s.Distribution) > 0 {
		step["distribution"] = snakeKeys(s.Distribution)
	}
	for _, kind := range []struct {
		key, typeKey string
		bindings     map[string]json.RawMessage
	}{{"inputs", "job_input_type", s.Inputs}, {"outputs", "job_output_type", s.Outputs}} {
		out := map[string]any{}
		for k, v := range kind.bindings {
			b, err := stepBinding(v, kind.typeKey, field+"."+kind.key+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = b
		}
		if len(out) > 0 {
			step[kind.key] = out
		}
	}
	return step, nil
}

// stepBinding translates a step's input or output: a literal (a value or
// a ${{...}} binding) stays a value; data keeps its type and path.
func stepBinding(raw json.RawMessage, typeKey, field string) (any, error) {
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			return v, nil
		}
		return nil, wharf.Errorf(wharf.EINVALID, "%v", err).WithField(field)
	}
	typ, _ := b[typeKey].(string)
	if typ == "" {
		typ, _ = b[camel(typeKey)].(string)
	}
	if strings.EqualFold(typ, "literal") || typ == "" {
		if v, ok := b["value"]; ok {
			return v, nil
		}
		return map[string]any{}, nil
	}
	out := map[string]any{"type": strings.ToLower(typ)}
	if uri, ok := b["uri"].(string); ok && uri != "" {
		out["path"] = dataRef(uri)
	}
	if m, ok := b["mode"].(string); ok {
		if cli := inputModes[m]; cli != "" {
			out["mode"] = cli
		} else if cli := outputModes[m]; cli != "" {
			out["mode"] = cli
		}
	}
	return out, nil
}

// camel writes job_input_type as jobInputType.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// componentRef is the CLI's reference for a component's ARM id.
func componentRef(id string) string {
	lower := strings.ToLower(id)
	i := strings.LastIndex(lower, "/components/")
	if !strings.HasPrefix(lower, "/subscriptions/") || i < 0 {
		return id
	}
	name, version, ok := strings.Cut(id[i+len("/components/"):], "/versions/")
	if !ok {
		return "azureml:" + name + "@latest"
	}
	return "azureml:" + name + ":" + version
}

// cancelJob asks for a job's cancellation: 202, and the SDK's poller
// reads cancelStatus (Location) until the job has ended.
func (h *Handler) cancelJob(w http.ResponseWriter, r *http.Request) {
	if h.Jobs == nil {
		h.WriteError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return
	}
	j, err := h.Jobs.CancelJob(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", h.base()+workspaceID(r, j.Workspace)+"/jobs/"+j.Name+"/cancelStatus")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusAccepted)
}

// cancelStatus answers the cancellation's poller: 202 while the job
// runs, 200 once it has ended.
func (h *Handler) cancelStatus(w http.ResponseWriter, r *http.Request) {
	j, err := h.Store.FindJob(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if !wharf.JobTerminal(j.Status) {
		w.Header().Set("Location", h.base()+r.URL.Path)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "InProgress"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "Succeeded"})
}
