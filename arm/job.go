package arm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflow"
)

// jobTypes are Azure's jobType for each of Wharf's job types.
var jobTypes = map[string]string{"command": "Command", "pipeline": "Pipeline", "sweep": "Sweep"}

// jobDocument is what the ARM form of a job takes from its document, the
// CLI v2 job schema as JSON.
type jobDocument struct {
	Command              string            `json:"command"`
	Inputs               map[string]any    `json:"inputs"`
	Outputs              map[string]any    `json:"outputs"`
	Environment          json.RawMessage   `json:"environment"`
	EnvironmentVariables map[string]string `json:"environment_variables"`
}

func (h *Handler) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := h.Store.FindJob(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err == nil && j.Parent != "" {
		err = wharf.Errorf(wharf.ENOTFOUND, "job %s not found in workspace %q", j.Name, j.Workspace)
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.jobJSON(r, j))
}

// listJobs lists the workspace's top-level jobs, newest first; the SDK
// reads one page.
func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListJobs(r.Context(), r.PathValue("workspace"), "", 100)
	writeList(h, w, r, list, err, h.jobJSON)
}

// jobJSON is a job in ARM's shape, as much of it as the SDK reads back:
// identity, status, where it runs, its inputs and outputs and the links
// of its services.
func (h *Handler) jobJSON(r *http.Request, j *wharf.Job) armVersion {
	wsID := workspaceID(r, j.Workspace)
	var doc jobDocument
	_ = json.Unmarshal(j.Document, &doc) // jobs stored before documents have none
	jobType := jobTypes[j.Type]
	if jobType == "" {
		jobType = "Command"
	}
	tags := j.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	props := map[string]any{
		"jobType":              jobType,
		"status":               j.Status,
		"displayName":          j.DisplayName,
		"experimentName":       j.ExperimentName,
		"description":          j.Description,
		"tags":                 tags,
		"properties":           map[string]string{},
		"command":              doc.Command,
		"environmentVariables": doc.EnvironmentVariables,
		"inputs":               armBindings(doc.Inputs, "jobInputType", "jobInputType"),
		"outputs":              armBindings(doc.Outputs, "jobOutputType", "jobOutputType"),
		"isArchived":           false,
		"services": map[string]any{
			// The SDK appends "&tid=<tenant>" to the studio's link, as
			// Azure's carries a query; the studio ignores both.
			"Studio":   map[string]string{"jobServiceType": "Studio", "endpoint": h.base() + "/workspaces/" + j.Workspace + "/jobs/" + j.Name + "?wsid=" + url.QueryEscape(wsID)},
			"Tracking": map[string]string{"jobServiceType": "Tracking", "endpoint": mlflow.TrackingURI(h.base(), j.Workspace)},
		},
	}
	for k, v := range j.Properties {
		props["properties"].(map[string]string)[k] = v
	}
	if j.Compute != "" {
		props["computeId"] = wsID + "/computes/" + strings.TrimPrefix(j.Compute, "azureml:")
	}
	var env string
	if json.Unmarshal(doc.Environment, &env) == nil && env != "" {
		props["environmentId"] = environmentID(wsID, env)
	}
	switch j.Type {
	case wharf.JobTypePipeline:
		pipelineJSON(wsID, j.Document, props)
	case wharf.JobTypeSweep:
		sweepJSON(wsID, j.Document, props)
	}
	return armVersion{
		ID: wsID + "/jobs/" + j.Name, Name: j.Name, Type: "Microsoft.MachineLearningServices/workspaces/jobs",
		Properties: props, SystemData: systemData(j.SubmittedBy, j.CreatedAt),
	}
}

// environmentID is the ARM id of an environment reference
// ("azureml:name:version" or "azureml:name@latest"); a curated
// environment keeps its registry reference, as Azure writes it.
func environmentID(wsID, ref string) string {
	rest, ok := strings.CutPrefix(ref, "azureml:")
	if !ok || strings.HasPrefix(rest, "//") {
		return ref
	}
	return assetID(wsID, "environments", rest)
}

// assetID is the ARM id of a workspace asset of a kind ("environments",
// "components") named "name:version", "name@label" (the asset, as the SDK
// names a label's target) or "name".
func assetID(wsID, kind, ref string) string {
	if name, _, ok := strings.Cut(ref, "@"); ok {
		return wsID + "/" + kind + "/" + name
	}
	if name, version, ok := strings.Cut(ref, ":"); ok {
		return wsID + "/" + kind + "/" + name + "/versions/" + version
	}
	return wsID + "/" + kind + "/" + ref
}

// pipelineJSON sets, in a pipeline's ARM properties, its steps, inputs,
// outputs and settings as the SDK wrote them, read back from its job
// document: jobs.get shows them. A pipeline with a step written inline
// (submitted by the CLI, not registered as a component) shows no steps:
// the SDK knows a step only by its component.
func pipelineJSON(wsID string, document json.RawMessage, props map[string]any) {
	var doc struct {
		Inputs   map[string]any `json:"inputs"`
		Outputs  map[string]any `json:"outputs"`
		Settings map[string]any `json:"settings"`
		Jobs     map[string]struct {
			Component   string         `json:"component"`
			Compute     string         `json:"compute"`
			DisplayName string         `json:"display_name"`
			Inputs      map[string]any `json:"inputs"`
			Outputs     map[string]any `json:"outputs"`
		} `json:"jobs"`
	}
	if json.Unmarshal(document, &doc) != nil {
		return
	}
	props["inputs"] = armBindings(doc.Inputs, "jobInputType", "jobInputType")
	props["outputs"] = armBindings(doc.Outputs, "jobOutputType", "jobOutputType")
	if doc.Settings != nil {
		props["settings"] = doc.Settings
	}
	jobs := map[string]any{}
	for name, step := range doc.Jobs {
		if step.Component == "" {
			return
		}
		arm := map[string]any{"name": name, "type": "command", "componentId": componentID(wsID, step.Component),
			"inputs":  armBindings(step.Inputs, "job_input_type", "job_input_type"),
			"outputs": armBindings(step.Outputs, "type", "job_output_type")}
		if step.Compute != "" {
			arm["computeId"] = wsID + "/computes/" + strings.TrimPrefix(step.Compute, "azureml:")
		}
		if step.DisplayName != "" {
			arm["display_name"] = step.DisplayName
		}
		jobs[name] = arm
	}
	props["jobs"] = jobs
}

// armBindings writes a job document's inputs or outputs in ARM's form,
// its type under typeKey (literals, ${{...}} bindings among them, under
// literalKey): a literal's value as text, data's path as its uri.
func armBindings(in map[string]any, literalKey, typeKey string) map[string]any {
	out := map[string]any{}
	for name, v := range in {
		switch v := v.(type) {
		case map[string]any:
			b := map[string]any{typeKey: v["type"]}
			if b[typeKey] == nil {
				b[typeKey] = "uri_folder"
			}
			if path, ok := v["path"].(string); ok {
				b["uri"] = path
			}
			out[name] = b
		case nil:
			out[name] = map[string]any{typeKey: "uri_folder"}
		case string:
			out[name] = map[string]any{literalKey: "literal", "value": v}
		default:
			text, _ := json.Marshal(v)
			out[name] = map[string]any{literalKey: "literal", "value": string(text)}
		}
	}
	return out
}

// componentID is the ARM id of a component reference (azureml:name:version
// or azureml:name@latest).
func componentID(wsID, ref string) string {
	return assetID(wsID, "components", strings.TrimPrefix(ref, "azureml:"))
}

// sweepJSON sets, in a sweep's ARM properties, its trial, search space,
// sampling, objective, limits and early termination, read back from its
// job document in ARM's words, which the SDK needs to read a sweep. The
// trial's code is named by its datastore path, not a code version's id:
// it is left out, as a command job's is.
func sweepJSON(wsID string, document json.RawMessage, props map[string]any) {
	var doc struct {
		Trial struct {
			Command     string            `json:"command"`
			Environment string            `json:"environment"`
			Env         map[string]string `json:"environment_variables"`
		} `json:"trial"`
		SearchSpace       map[string]map[string]any `json:"search_space"`
		SamplingAlgorithm json.RawMessage           `json:"sampling_algorithm"`
		Objective         struct {
			Goal          string `json:"goal"`
			PrimaryMetric string `json:"primary_metric"`
		} `json:"objective"`
		Limits           map[string]any `json:"limits"`
		EarlyTermination map[string]any `json:"early_termination"`
	}
	if json.Unmarshal(document, &doc) != nil {
		return
	}
	trial := map[string]any{"command": doc.Trial.Command, "environmentVariables": doc.Trial.Env}
	if doc.Trial.Environment != "" {
		trial["environmentId"] = environmentID(wsID, doc.Trial.Environment)
	}
	props["trial"] = trial
	space := map[string]any{}
	for name, param := range doc.SearchSpace {
		kind, _ := param["type"].(string)
		args := []any{}
		for _, arg := range searchSpaceArgs[kind] {
			args = append(args, param[arg])
		}
		space[name] = []any{kind, args}
	}
	props["searchSpace"] = space
	// sampling_algorithm is a name (random) or an object with its type.
	var sampling struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(doc.SamplingAlgorithm, &sampling.Type) != nil {
		_ = json.Unmarshal(doc.SamplingAlgorithm, &sampling)
	}
	props["samplingAlgorithm"] = map[string]any{"samplingAlgorithmType": armSampling[sampling.Type]}
	props["objective"] = map[string]any{"goal": doc.Objective.Goal, "primaryMetric": doc.Objective.PrimaryMetric}
	limits := map[string]any{"jobLimitsType": "Sweep"}
	for k, v := range doc.Limits {
		if secs, ok := v.(float64); ok && (k == "timeout" || k == "trial_timeout") {
			v = fmt.Sprintf("PT%gS", secs)
		}
		limits[camel(k)] = v
	}
	props["limits"] = limits
	if t, ok := doc.EarlyTermination["type"].(string); ok {
		policy := map[string]any{}
		for k, v := range doc.EarlyTermination {
			if k != "type" {
				policy[camel(k)] = v
			}
		}
		for arm, cli := range earlyTerminationTypes {
			if cli == t {
				policy["policyType"] = arm
			}
		}
		props["earlyTermination"] = policy
	}
}

// armSampling are ARM's names of the CLI's sampling algorithms.
var armSampling = map[string]string{"random": "Random", "grid": "Grid", "bayesian": "Bayesian"}
