package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/snapshot"
)

// registerBatchRoutes registers batch endpoints; invoking one submits a
// job.
func (s *Server) registerBatchRoutes() {
	const base = "/api/v1/workspaces/{workspace}/batchEndpoints"
	s.route("GET "+base, wharf.ActionBatchEndpointRead, jsonAPI(s, s.listBatchEndpoints))
	s.route("GET "+base+"/{name}", wharf.ActionBatchEndpointRead, jsonAPI(s, s.getBatchEndpoint))
	s.route("PUT "+base+"/{name}", wharf.ActionBatchEndpointWrite, jsonAPI(s, s.putBatchEndpoint))
	s.route("DELETE "+base+"/{name}", wharf.ActionBatchEndpointDelete, jsonAPI(s, s.deleteBatchEndpoint))
	s.route("GET "+base+"/{name}/deployments", wharf.ActionBatchEndpointRead, jsonAPI(s, s.listBatchDeployments))
	s.route("GET "+base+"/{name}/deployments/{deployment}", wharf.ActionBatchEndpointRead, jsonAPI(s, s.getBatchDeployment))
	s.route("PUT "+base+"/{name}/deployments/{deployment}", wharf.ActionBatchEndpointWrite, jsonAPI(s, s.putBatchDeployment))
	s.route("DELETE "+base+"/{name}/deployments/{deployment}", wharf.ActionBatchEndpointDelete, jsonAPI(s, s.deleteBatchDeployment))
	s.route("POST "+base+"/{name}/invoke", wharf.ActionJobWrite, jsonAPI(s, s.invokeBatchEndpoint))
	s.route("GET "+base+"/{name}/jobs", wharf.ActionJobRead, jsonAPI(s, s.listBatchEndpointJobs))
}

func (s *Server) listBatchEndpoints(r *http.Request, _ *noBody) (int, []*wharf.BatchEndpoint, error) {
	eps, err := s.Store.ListBatchEndpoints(r.Context(), r.PathValue("workspace"))
	return http.StatusOK, eps, err
}

func (s *Server) getBatchEndpoint(r *http.Request, _ *noBody) (int, *wharf.BatchEndpoint, error) {
	e, err := s.Store.FindBatchEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	return http.StatusOK, e, err
}

// batchEndpointRequest is the body of a batch endpoint creation or update.
type batchEndpointRequest struct {
	Description       string            `json:"description"`
	Tags              map[string]string `json:"tags"`
	DefaultDeployment string            `json:"default_deployment"`
}

func (s *Server) putBatchEndpoint(r *http.Request, req *batchEndpointRequest) (int, *wharf.BatchEndpoint, error) {
	name, err := pathName(r, "name")
	if err != nil {
		return 0, nil, err
	}
	e := &wharf.BatchEndpoint{Workspace: r.PathValue("workspace"), Name: name, Description: req.Description, Tags: req.Tags,
		DefaultDeployment: req.DefaultDeployment}
	created, err := s.Store.PutBatchEndpoint(r.Context(), e)
	return createdStatus(created), e, err
}

func (s *Server) deleteBatchEndpoint(r *http.Request, _ *noBody) (int, noBody, error) {
	return http.StatusNoContent, noBody{}, s.Store.DeleteBatchEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
}

func (s *Server) listBatchDeployments(r *http.Request, _ *noBody) (int, []batchDeploymentJSON, error) {
	ds, err := s.Store.ListBatchDeployments(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	out := make([]batchDeploymentJSON, len(ds))
	for i, d := range ds {
		out[i] = s.batchDeploymentJSON(d)
	}
	return http.StatusOK, out, err
}

func (s *Server) getBatchDeployment(r *http.Request, _ *noBody) (int, batchDeploymentJSON, error) {
	d, err := s.Store.FindBatchDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment"))
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	return http.StatusOK, s.batchDeploymentJSON(d), nil
}

// batchDeploymentJSON is a batch deployment as the API shows it: with its
// provisioning state, Creating while its warm Python process is being
// prepared (see warmBatch), and what became of that.
type batchDeploymentJSON struct {
	*wharf.BatchDeployment
	ProvisioningState string `json:"provisioning_state"`
	// Warm is "ready", "not needed" (a model scored in Go), "off", or
	// why warming failed, in which case jobs start their workers afresh.
	Warm string `json:"warm,omitempty"`
	// Error is why the deployment is Failed: its environment cannot load
	// its model (the worker's error), so none of its jobs could score.
	Error string `json:"error,omitempty"`
}

// warming is one warmBatch in progress or done.
type warming struct {
	done chan struct{}
	err  error
	used bool // a warm process serves the deployment
	// scoresModel is true when the deployment has no batch driver, so
	// its workers load the model with mlflow: a model the warm process
	// could not load fails the deployment rather than each of its jobs.
	scoresModel bool
}

func (s *Server) batchDeploymentJSON(d *wharf.BatchDeployment) batchDeploymentJSON {
	out := batchDeploymentJSON{BatchDeployment: d, ProvisioningState: "Succeeded", Warm: "off"}
	if d.Type == wharf.JobTypePipeline {
		out.Warm = "not needed"
		return out
	}
	v, ok := s.batchWarm.Load(d.Workspace + "/" + d.Endpoint + "/" + d.Name)
	if !ok {
		return out
	}
	wm := v.(*warming)
	select {
	case <-wm.done:
		var load *pyworker.LoadError
		switch {
		case wm.err != nil && wm.scoresModel && errors.As(wm.err, &load):
			out.ProvisioningState, out.Warm = "Failed", wm.err.Error()
			out.Error = "the deployment's environment cannot load its model: " + load.Message
		case wm.err != nil:
			out.Warm = wm.err.Error()
		case wm.used:
			out.Warm = "ready"
		default:
			out.Warm = "not needed"
		}
	default:
		out.ProvisioningState, out.Warm = "Creating", ""
	}
	return out
}

// batchSettings are the deployment settings a batch job runs with.
type batchSettings struct {
	Compute                   string             `json:"compute"`
	InstanceCount             int                `json:"instance_count"`
	MaxConcurrencyPerInstance int                `json:"max_concurrency_per_instance"`
	MiniBatchSize             int                `json:"mini_batch_size"`
	RowsPerBatch              int                `json:"rows_per_batch"`
	OutputAction              string             `json:"output_action"`
	OutputFileName            string             `json:"output_file_name"`
	MaxRetries                int                `json:"max_retries"`
	TimeoutSeconds            int                `json:"timeout"`
	ErrorThreshold            int                `json:"error_threshold"`
	EnvironmentVariables      map[string]string  `json:"environment_variables"`
	Environment               *scheduler.EnvSpec `json:"environment"`
	// CodeConfiguration is the batch driver: the snapshot of the code
	// folder and the script in it with init() and run(mini_batch).
	// Without it the model is scored as it is.
	CodeConfiguration *batchCode `json:"code_configuration,omitempty"`
}

// batchCode is a batch deployment's code_configuration, as stored.
type batchCode struct {
	CodeDigest    string `json:"code_digest"`
	ScoringScript string `json:"scoring_script"`
	// CodePath is where the code is in the upload datastore (see
	// publishCode); empty where the client named none.
	CodePath string `json:"code_path,omitempty"`
}

// batchDeploymentRequest is the body of a batch deployment creation or
// update; Spec holds its batchSettings.
type batchDeploymentRequest struct {
	// Type is "pipeline" for a pipeline deployment, whose Spec is a
	// pipelineBatchSpec; otherwise a model deployment.
	Type       string          `json:"type"`
	Model      string          `json:"model"`
	Spec       json.RawMessage `json:"spec"`
	SetDefault bool            `json:"set_default"`
}

func (s *Server) putBatchDeployment(r *http.Request, req *batchDeploymentRequest) (int, batchDeploymentJSON, error) {
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	name, err := pathName(r, "deployment")
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	if req.Type == wharf.JobTypePipeline {
		return s.putPipelineBatchDeployment(r, ws, ep, name, req)
	}
	if req.Type != "" && req.Type != "model" {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "type must be model or pipeline, got %q", req.Type).WithField("type")
	}
	var set batchSettings
	if err := json.Unmarshal(req.Spec, &set); err != nil {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "spec: %s", err.Error()).WithField("spec")
	}
	if set.OutputAction != "" && set.OutputAction != "append_row" && set.OutputAction != "summary_only" {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "output_action must be append_row or summary_only, got %q", set.OutputAction).WithField("output_action")
	}
	if cc := set.CodeConfiguration; cc != nil {
		if cc.CodeDigest == "" {
			return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "code_configuration.code names no uploaded code").WithField("code_configuration.code")
		}
		if cc.ScoringScript == "" || !filepath.IsLocal(cc.ScoringScript) {
			return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "code_configuration.scoring_script %q must be a path inside the code folder", cc.ScoringScript).WithField("code_configuration.scoring_script")
		}
		if err := s.checkReferenced(r.Context(), ws, cc.CodeDigest, "code_configuration.code"); err != nil {
			return 0, batchDeploymentJSON{}, err
		}
		if err := s.publishCode(r.Context(), ws, cc.CodePath, cc.CodeDigest); err != nil {
			return 0, batchDeploymentJSON{}, err
		}
	}
	if _, err := s.Store.FindCompute(r.Context(), ws, set.Compute); err != nil {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "compute %q does not exist in workspace %s", set.Compute, ws).WithField("compute")
	}
	modelName, version := modelRef(req.Model)
	v, err := s.findVersion(r, ws, modelName, version)
	if err != nil {
		return 0, batchDeploymentJSON{}, wharf.Errorf(wharf.EINVALID, "model %s not found in workspace %s", req.Model, ws).WithField("model")
	}
	d := &wharf.BatchDeployment{Workspace: ws, Endpoint: ep, Name: name, Model: v.Name + ":" + v.AzureVersion(), Spec: req.Spec}
	created, err := s.storeBatchDeployment(r.Context(), d, req.SetDefault)
	if err != nil {
		return 0, batchDeploymentJSON{}, err
	}
	s.warmBatch(context.WithoutCancel(r.Context()), d)
	return createdStatus(created), s.batchDeploymentJSON(d), nil
}

// storeBatchDeployment stores d; the only deployment of its endpoint, or
// one created with --set-default, is the endpoint's default.
func (s *Server) storeBatchDeployment(ctx context.Context, d *wharf.BatchDeployment, setDefault bool) (bool, error) {
	created, err := s.Store.PutBatchDeployment(ctx, d)
	if err != nil {
		return false, err
	}
	if e, err := s.Store.FindBatchEndpoint(ctx, d.Workspace, d.Endpoint); err == nil && (setDefault || e.DefaultDeployment == "") {
		e.DefaultDeployment = d.Name
		if _, err := s.Store.PutBatchEndpoint(ctx, e); err != nil {
			return false, err
		}
	}
	return created, nil
}

func (s *Server) deleteBatchDeployment(r *http.Request, _ *noBody) (int, noBody, error) {
	ws, ep, name := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")
	if err := s.Store.DeleteBatchDeployment(r.Context(), ws, ep, name); err != nil {
		return 0, noBody{}, err
	}
	s.batchWarm.Delete(ws + "/" + ep + "/" + name)
	return http.StatusNoContent, noBody{}, nil
}

// invokeBatchRequest is `az ml batch-endpoint invoke`: the input is
// named as a job document names data, and resolved by the server as it
// stands now (azureml:<name>@latest is the newest version).
type invokeBatchRequest struct {
	Deployment string `json:"deployment"`
	Input      struct {
		Type string `json:"type"`
		Path string `json:"path"`
	} `json:"input"`
	// Inputs and Outputs are a pipeline deployment's, written as a
	// pipeline job's (literals, {type, path, mode}), local data already
	// uploaded.
	Inputs  map[string]json.RawMessage `json:"inputs"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

// invokeBatchEndpoint submits the scoring job of an invocation and answers
// with it at once.
func (s *Server) invokeBatchEndpoint(r *http.Request, req *invokeBatchRequest) (int, any, error) {
	if s.Scheduler == nil {
		return 0, jobJSON{}, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs")
	}
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	e, err := s.Store.FindBatchEndpoint(r.Context(), ws, ep)
	if err != nil {
		return 0, jobJSON{}, err
	}
	name := req.Deployment
	if name == "" {
		name = e.DefaultDeployment
	}
	if name == "" {
		return 0, jobJSON{}, wharf.Errorf(wharf.EINVALID, "batch endpoint %s has no deployment", ep).WithField("deployment")
	}
	d, err := s.Store.FindBatchDeployment(r.Context(), ws, ep, name)
	if err != nil {
		return 0, jobJSON{}, err
	}
	if d.Type == wharf.JobTypePipeline {
		return s.invokePipelineDeployment(r, d, req)
	}
	if len(req.Inputs) > 0 || len(req.Outputs) > 0 {
		return 0, jobJSON{}, wharf.Errorf(wharf.EINVALID, "deployment %s scores a model: give it one --input, not inputs and outputs", name).WithField("inputs")
	}
	if st := s.batchDeploymentJSON(d); st.ProvisioningState == "Failed" {
		return 0, jobJSON{}, wharf.Errorf(wharf.EINVALID, "batch deployment %s failed: %s; update it", name, st.Error).WithField("deployment")
	}
	var set batchSettings
	if err := json.Unmarshal(d.Spec, &set); err != nil {
		return 0, jobJSON{}, err
	}
	modelDigest, set, err := s.batchModel(r.Context(), d, set)
	if err != nil {
		return 0, jobJSON{}, err
	}
	if req.Input.Path == "" {
		return 0, jobJSON{}, wharf.Errorf(wharf.EINVALID, "input.path is required").WithField("input.path")
	}
	in, err := s.resolver().Input(r.Context(), ws, req.Input.Type, req.Input.Path, "input.path")
	if err != nil {
		return 0, jobJSON{}, err
	}
	spec := batchStepSpec(ep, name, d.Model, set, modelDigest, in)
	j, err := s.Scheduler.Submit(r.Context(), ws, callerID(r), &scheduler.Submission{Type: wharf.JobTypeCommand,
		ExperimentName: ep, DisplayName: ep + "-" + name, Tags: map[string]string{"wharf.batch_endpoint": ep, "wharf.batch_deployment": name},
		Steps: []scheduler.SubmittedStep{{Name: "batchscoring", Spec: spec}}})
	if err != nil {
		return 0, jobJSON{}, err
	}
	return http.StatusCreated, s.jobJSON(j, nil), nil
}

// warmBatch has the scheduler prepare what the deployment's jobs will need
// (its environment, a warm Python process with its model loaded), so that
// an invocation starts scoring at once. It is best effort: a job that
// finds nothing ready prepares it itself.
func (s *Server) warmBatch(ctx context.Context, d *wharf.BatchDeployment) {
	if s.Scheduler == nil || s.Scheduler.WarmDir == "" || d.Type == wharf.JobTypePipeline {
		return
	}
	var set batchSettings
	if json.Unmarshal(d.Spec, &set) != nil {
		return
	}
	wm := &warming{done: make(chan struct{}), scoresModel: set.CodeConfiguration == nil}
	s.batchWarm.Store(d.Workspace+"/"+d.Endpoint+"/"+d.Name, wm)
	digest, set, err := s.batchModel(ctx, d, set)
	if err != nil {
		s.Logger.Warn("batch deployment not warmed", "workspace", d.Workspace, "endpoint", d.Endpoint, "deployment", d.Name, "err", err)
		wm.err = err
		close(wm.done)
		return
	}
	ch := s.Scheduler.Warm(d.Workspace, batchStepSpec(d.Endpoint, d.Name, d.Model, set, digest, scheduler.InputSpec{}), "model")
	go func() {
		res := <-ch
		wm.err, wm.used = res.Err, res.Warmed
		close(wm.done)
	}()
}

// WarmBatchDeployments warms every batch deployment (see warmBatch), as a
// starting server does for the deployments it finds.
func (s *Server) WarmBatchDeployments(ctx context.Context) error {
	wss, err := s.Store.ListWorkspaces(ctx)
	if err != nil {
		return err
	}
	for _, ws := range wss {
		eps, err := s.Store.ListBatchEndpoints(ctx, ws.Name)
		if err != nil {
			return err
		}
		for _, e := range eps {
			ds, err := s.Store.ListBatchDeployments(ctx, ws.Name, e.Name)
			if err != nil {
				return err
			}
			for _, d := range ds {
				s.warmBatch(ctx, d)
			}
		}
	}
	return nil
}

// batchStepSpec is the step a batch deployment's job runs on input in.
func batchStepSpec(ep, name, model string, set batchSettings, modelDigest string, in scheduler.InputSpec) scheduler.StepSpec {
	workers := max(set.InstanceCount, 1) * max(set.MaxConcurrencyPerInstance, 1)
	args := []string{`"$WHARF" batch-score --model ${{inputs.model}} --input ${{inputs.data}} --output ${{outputs.score}}`,
		fmt.Sprintf("--workers %d --mini-batch-size %d --rows-per-batch %d --max-retries %d --timeout %d --error-threshold %d",
			workers, max(set.MiniBatchSize, 1), max(set.RowsPerBatch, 0), set.MaxRetries, max(set.TimeoutSeconds, 1), set.ErrorThreshold)}
	if set.OutputFileName != "" {
		args = append(args, "--output-file-name "+shellQuote(set.OutputFileName))
	}
	if set.OutputAction == "summary_only" {
		args = append(args, "--summary-only")
	}
	codeDigest := ""
	if cc := set.CodeConfiguration; cc != nil {
		// The code snapshot is the job's code, so its working folder.
		codeDigest = cc.CodeDigest
		args = append(args, "--code . --scoring-script "+shellQuote(cc.ScoringScript))
	}
	in.Type = "uri_folder"
	if in.Kind != "folder" {
		in.Type = "uri_file"
	}
	// Without a driver only Wharf's own reader opens the input (an MLflow
	// model's workers get each mini-batch written anew), so a large file
	// need not be copied before scoring can start.
	in.Link = set.CodeConfiguration == nil
	spec := scheduler.StepSpec{Component: "batch-endpoint:" + ep + "/" + name, ComponentHash: "batch", Command: strings.Join(args, " "),
		CodeDigest: codeDigest, Compute: set.Compute, EnvVars: set.EnvironmentVariables, MaxRetries: 1,
		Inputs: map[string]scheduler.InputSpec{
			"model": {Type: "custom_model", Digest: modelDigest, Kind: "folder", Source: "azureml:" + model},
			"data":  in,
		},
		Outputs: map[string]scheduler.OutputSpec{"score": {Type: "uri_folder"}}}
	if set.Environment != nil {
		spec.Environment = *set.Environment
	}
	return spec
}

// batchModel returns what a batch deployment's jobs take its model as:
// the snapshot of the model's files, laid out as the folder
// AZUREML_MODEL_DIR names (see wharf.ModelDirPath), and set with the
// environment they run in. A deployment that gives no environment runs
// an MLflow model in the one the model was logged with, as an online
// deployment does, unless the server names an interpreter for such
// deployments (DeploymentPython), whose folder then comes first on the
// job's PATH.
func (s *Server) batchModel(ctx context.Context, d *wharf.BatchDeployment, set batchSettings) (string, batchSettings, error) {
	files, err := s.modelFiles(ctx, d.Workspace, d.Model)
	if err != nil {
		return "", set, err
	}
	m, err := snapshot.FromStored(ctx, files, s.Blobs)
	if err != nil {
		return "", set, err
	}
	// The job that scores with the model reads it as an input of the
	// workspace, which the manifest now is.
	if err := s.Store.AddBlobRefs(ctx, d.Workspace, m.Digests()); err != nil {
		return "", set, err
	}
	switch {
	case set.Environment != nil:
	case s.DeploymentPython != "":
		if _, ok := set.EnvironmentVariables["PATH"]; !ok {
			vars := maps.Clone(set.EnvironmentVariables)
			if vars == nil {
				vars = map[string]string{}
			}
			vars["PATH"] = filepath.Dir(s.DeploymentPython) + string(filepath.ListSeparator) + os.Getenv("PATH")
			set.EnvironmentVariables = vars
		}
	default:
		if set.Environment, err = s.modelEnvironment(ctx, files); err != nil {
			return "", set, fmt.Errorf("model %s: %w", d.Model, err)
		}
	}
	return m.Digest, set, nil
}

// modelFiles lists a model version's stored files by their paths in a
// deployment's model folder.
func (s *Server) modelFiles(ctx context.Context, ws, model string) ([]snapshot.File, error) {
	name, version, _ := strings.Cut(model, ":")
	v, err := s.findVersionCtx(ctx, ws, name, version)
	if err != nil {
		return nil, err
	}
	loc, err := wharf.ModelLocation(ctx, s.Store, ws, v)
	if err != nil {
		return nil, err
	}
	root, ok := mlflow.ArtifactRoot(loc)
	if !ok {
		return nil, wharf.Errorf(wharf.EINVALID, "model %s is stored outside this server (%s)", model, loc)
	}
	arts, err := s.Store.ListArtifacts(ctx, ws, root)
	if err != nil {
		return nil, err
	}
	var files []snapshot.File
	for _, a := range arts {
		files = append(files, snapshot.File{Path: wharf.ModelDirPath(root, a.Path), Mode: snapshot.ModeFile, Digest: a.Digest, Size: a.Size})
	}
	if len(files) == 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "model %s has no files", model)
	}
	return files, nil
}

// modelEnvironment is the environment an MLflow model that Python workers
// score was logged with (see pyenv.MLflowModelSpec), read from its stored
// files; nil for any other model, or one that names no environment.
func (s *Server) modelEnvironment(ctx context.Context, files []snapshot.File) (*scheduler.EnvSpec, error) {
	read := modelFileReader(ctx, s.Blobs, files)
	b, err := read("MLmodel")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mm, err := scoring.ParseMLmodel(b)
	if err != nil {
		return nil, fmt.Errorf("MLmodel: %w", err)
	}
	if !mm.ServedByPython() {
		return nil, nil
	}
	spec, ok, err := pyenv.MLflowModelSpec(read)
	if err != nil || !ok {
		return nil, err
	}
	return &scheduler.EnvSpec{PythonVersion: spec.PythonVersion, Pip: spec.Pip, Conda: spec.Conda}, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
