package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/wharfml/wharf/sweep"
)

// StepSpec is what a step runs, fixed at submission: the command template,
// the content it runs on and where each input comes from. It is stored as
// the step job's Spec.
type StepSpec struct {
	// Component names the component ("name:version"), or is "" for an
	// inline command; ComponentHash hashes its whole definition.
	Component     string `json:"component,omitempty"`
	ComponentHash string `json:"component_hash"`
	// Command is the command template with ${{inputs.x}}, ${{outputs.y}}
	// and $[[ ]] fragments still in it.
	Command string `json:"command"`
	// CodeDigest is the snapshot of the code folder, "" without one.
	CodeDigest  string            `json:"code_digest,omitempty"`
	Environment EnvSpec           `json:"environment"`
	Compute     string            `json:"compute"`
	EnvVars     map[string]string `json:"environment_variables,omitempty"`
	// TimeoutSeconds limits one attempt; 0 is no limit.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// MaxRetries is how many attempts may follow a failed one.
	MaxRetries int `json:"max_retries,omitempty"`
	// RetryBackoffSeconds is the wait before the first retry; it doubles
	// with every further one.
	RetryBackoffSeconds int                   `json:"retry_backoff_seconds,omitempty"`
	Deterministic       bool                  `json:"is_deterministic"`
	ForceRerun          bool                  `json:"force_rerun,omitempty"`
	Inputs              map[string]InputSpec  `json:"inputs"`
	Outputs             map[string]OutputSpec `json:"outputs"`
	// Deps are the steps whose outputs this one reads.
	Deps []string `json:"deps,omitempty"`
	// Datastore is where outputs without a path of their own are
	// recorded, at azureml/<job>/<output>; "" is the workspace default.
	Datastore string `json:"datastore,omitempty"`
	// Sweep is set on a sweep: the spec is then its trial's, which each
	// trial runs with its hyperparameters as the inputs of their names.
	Sweep *sweep.Config `json:"sweep,omitempty"`
	// Distribution, when set, runs the command as a group of processes
	// that find each other as Azure ML's do (see ranks.go); nil runs it
	// once.
	Distribution *DistributionSpec `json:"distribution,omitempty"`
	// InstanceType is resources.instance_type, the VM size each instance
	// asks for; its GPUs count, as the compute's size does without it.
	InstanceType string `json:"instance_type,omitempty"`
	// GPUsPerInstance is resources.gpus_per_instance: each instance's
	// GPUs, whatever the sizes say; nil leaves them to the sizes.
	GPUsPerInstance *int `json:"gpus_per_instance,omitempty"`
}

// DistributionSpec is a distributed step: distribution and
// resources.instance_count as the job wrote them, defaults filled in.
type DistributionSpec struct {
	// Type is pytorch, mpi or tensorflow.
	Type          string `json:"type"`
	InstanceCount int    `json:"instance_count"`
	// ProcessCountPerInstance is for pytorch and mpi.
	ProcessCountPerInstance int `json:"process_count_per_instance,omitempty"`
	// WorkerCount and ParameterServerCount are for tensorflow.
	WorkerCount          int `json:"worker_count,omitempty"`
	ParameterServerCount int `json:"parameter_server_count,omitempty"`
}

// EnvSpec is the environment a step runs in.
type EnvSpec struct {
	// Ref is the environment asset ("name:version"), "" when inline.
	Ref           string   `json:"ref,omitempty"`
	Image         string   `json:"image,omitempty"`
	PythonVersion string   `json:"python_version,omitempty"`
	Pip           []string `json:"pip,omitempty"`
	Conda         []string `json:"conda,omitempty"`
	// Note is a line for the step's log about where the environment
	// comes from, when that is not plain from the rest: Azure's curated
	// environments are built from a catalog of their definitions, and a
	// CUDA one on its CPU packages. It is not part of what is built.
	Note string `json:"note,omitempty"`
}

// Data kinds: a single blob, or a folder snapshot manifest.
const (
	KindFile   = "file"
	KindFolder = "folder"
)

// InputSpec is where one input's value comes from: a literal, data fixed
// at submission, or an upstream step's output.
type InputSpec struct {
	Type     string `json:"type"`
	Optional bool   `json:"optional,omitempty"`
	// Literal is set for literal inputs (nil: unset, the input is left
	// out of $[[ ]] fragments).
	Literal *string `json:"literal,omitempty"`
	// Digest, Kind and Source describe data fixed at submission.
	Digest string `json:"digest,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Source string `json:"source,omitempty"`
	// URL, for a uri_file input given as a URL, is the http(s) address
	// its file is downloaded from when the step runs (Source is the path
	// as written); its content, and so Digest, is not known before.
	URL string `json:"url,omitempty"`
	// FileName is the name a uri_file input is given in the step's
	// input folder.
	FileName string `json:"file_name,omitempty"`
	// Step and Output name the upstream output this input reads.
	Step   string `json:"step,omitempty"`
	Output string `json:"output,omitempty"`
	// Link lets a file input be a hard link to the stored blob instead
	// of a copy, so that staging it costs nothing however large it is;
	// its digest is verified while the step runs, and the step fails
	// before its outputs are kept if it does not match. Only for steps
	// whose command is Wharf's own and only reads the input (batch
	// scoring without a driver): jobs may run as root, and a write
	// through the link would change the stored content.
	Link bool `json:"link,omitempty"`
}

// OutputSpec is one output of a step.
type OutputSpec struct {
	Type string `json:"type"`
	Mode string `json:"mode,omitempty"`
	// Parent is the pipeline output this one is bound to, if any.
	Parent string `json:"parent,omitempty"`
	// Path is an explicit azureml://datastores/<ds>/paths/<p> location.
	Path string `json:"path,omitempty"`
}

// PipelineSpec is the Spec of a pipeline job.
type PipelineSpec struct {
	ContinueOnStepFailure bool `json:"continue_on_step_failure"`
	ForceRerun            bool `json:"force_rerun,omitempty"`
	// Outputs maps each pipeline output to the step output bound to it.
	Outputs map[string]StepOutputRef `json:"outputs,omitempty"`
}

// StepOutputRef names one output of one step.
type StepOutputRef struct {
	Step   string `json:"step"`
	Output string `json:"output"`
}

// hashEnv is the environment's identity for reuse and caching.
func (e EnvSpec) hash() string {
	pip := slices.Clone(e.Pip)
	slices.Sort(pip)
	conda := slices.Clone(e.Conda)
	slices.Sort(conda)
	b, _ := json.Marshal([]any{e.Image, e.PythonVersion, pip, conda})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// reuseKey hashes everything a step's result depends on: its definition,
// code, environment, literal inputs and the content of its data inputs
// (resolved is the text or digest of every input). Two steps with the same
// key compute the same outputs, so the second can take the first's.
func reuseKey(s *StepSpec, resolved map[string]string) string {
	h := sha256.New()
	write := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	write("wharf-step-v1", s.ComponentHash, s.Command, s.CodeDigest, s.Environment.hash())
	for _, k := range sortedKeys(s.EnvVars) {
		write("env", k, s.EnvVars[k])
	}
	if s.Distribution != nil {
		// How many processes compute the outputs may change them; a
		// step that runs once keeps the key it always had.
		d, _ := json.Marshal(s.Distribution)
		write("distribution", string(d))
	}
	for _, k := range sortedKeys(resolved) {
		write("in", k, s.Inputs[k].Type, resolved[k])
	}
	for _, k := range sortedKeys(s.Outputs) {
		write("out", k, s.Outputs[k].Type, s.Outputs[k].Mode)
		if isFileOutput(s.Outputs[k]) {
			// A uri_file output is committed as a file; earlier steps
			// committed it as a folder.
			write("file")
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isDataType reports whether an input type carries data rather than a
// literal.
func isDataType(t string) bool {
	switch strings.ToLower(t) {
	case "string", "integer", "number", "boolean":
		return false
	}
	return true
}
