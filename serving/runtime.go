package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/sandbox"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/snapshot"
)

// Factory starts deployments' runtimes on this machine: the model's files
// are materialized once per version, then served natively when the model
// is a Wharf linear model, by Python workers otherwise.
type Factory struct {
	Store wharf.Store
	Blobs wharf.BlobStore
	// Dir caches materialized models and code, and holds worker logs.
	Dir string
	// Envs builds a deployment's Python environment; nil means every
	// Python runtime uses Python.
	Envs *pyenv.Builder
	// Python is the interpreter of deployments without an environment of
	// their own ("" is python3 on PATH).
	Python string
	// Sandbox, when set, runs every Python worker in a sandbox of its
	// own, as the sandbox's user: a scoring script or model never runs
	// with the server's privileges.
	Sandbox *sandbox.Sandbox
	Logger  *slog.Logger

	mu sync.Mutex // serializes materialization into Dir
}

// Start implements RuntimeFactory.
func (f *Factory) Start(ctx context.Context, workspace string, d *wharf.OnlineDeployment) (Runtime, error) {
	name, version, ok := strings.Cut(d.Model, ":")
	if !ok || version == "" {
		return nil, fmt.Errorf("deployment %s names model %q, not name:version", d.Name, d.Model)
	}
	v, err := f.Store.FindModelAssetVersion(ctx, workspace, name, version)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", d.Model, err)
	}
	modelDir, err := f.materializeModel(ctx, workspace, name, v.Version)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", d.Model, err)
	}
	var spec struct {
		InstanceCount     int               `json:"instance_count"`
		EnvVars           map[string]string `json:"environment_variables"`
		CodeConfiguration *struct {
			CodeDigest    string `json:"code_digest"`
			ScoringScript string `json:"scoring_script"`
		} `json:"code_configuration"`
		Environment *storedEnv `json:"environment"`
	}
	if err := json.Unmarshal(d.Spec, &spec); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
	}
	logPath := filepath.Join(f.Dir, "logs", workspace, d.Endpoint, d.Name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}

	folder, mm, err := scoring.FindMLmodel(modelDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		mm = &scoring.MLmodel{} // a model for a scoring script may have none
	case err != nil:
		return nil, fmt.Errorf("model %s: %w", d.Model, err)
	}
	if spec.CodeConfiguration == nil {
		if mm.Native() {
			return loadNative(folder, mm, name, version)
		}
		if !mm.Pyfunc() {
			return nil, fmt.Errorf("model %s is not an MLflow model (no python_function flavor in MLmodel); "+
				"deploy it with code_configuration and a scoring script", d.Model)
		}
	}

	cfg := pyworker.Config{ModelDir: modelDir, Instances: max(spec.InstanceCount, 1), LogPath: logPath, Python: f.Python}
	env := []string{"AZUREML_MODEL_DIR=" + modelDir}
	if folder != "" {
		// As Azure ML sets it: the folder holding MLmodel, relative to
		// AZUREML_MODEL_DIR.
		rel, _ := filepath.Rel(modelDir, folder)
		env = append(env, "MLFLOW_MODEL_FOLDER="+rel)
	}
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	pe, err := f.environment(ctx, spec.Environment, folder, logPath)
	if err != nil {
		return nil, err
	}
	if pe != nil {
		cfg.Python = pe.Python
		env = append(env, pe.Environ(os.Getenv("PATH"))...)
		// The environment lives in the data folder, which the sandbox
		// hides; its workers see it as a job's steps see theirs.
		cfg.Mounts = append(cfg.Mounts, sandbox.Mount{Path: pe.Dir})
	}
	if f.Sandbox != nil {
		// The server's home is not in the sandbox; its /tmp is.
		env = append(env, "HOME=/tmp", "TMPDIR=/tmp")
	}
	for k, v := range spec.EnvVars {
		env = append(env, k+"="+v)
	}
	cfg.Env = env
	cfg.Sandbox = f.Sandbox
	mb, err := ParseMicroBatch(spec.EnvVars, spec.CodeConfiguration != nil)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
	}
	platform := "mlflow_pyfunc"
	if cc := spec.CodeConfiguration; cc != nil {
		codeDir, err := f.materializeCode(ctx, cc.CodeDigest)
		if err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
		cfg.Mode, cfg.CodeDir, cfg.ScoringScript = pyworker.ModeScore, codeDir, cc.ScoringScript
		platform = "score_py"
	} else {
		cfg.Mode = pyworker.ModePyfunc
	}
	pool, err := pyworker.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var sig *scoring.Signature
	if mm.Signature != nil && cfg.Mode == pyworker.ModePyfunc {
		if sig, err = scoring.ParseMLflowSignature(mm.Signature.Inputs); err != nil {
			pool.Close()
			return nil, fmt.Errorf("model %s: signature: %w", d.Model, err)
		}
	}
	p := &pythonRuntime{pool: pool, platform: platform, sig: sig, name: name, version: version}
	if mb.On {
		p.batch = newBatcher(cfg.Instances, mb.MaxRows, mb.MaxWait, p.scoreGroup)
	}
	return p, nil
}

// storedEnv is a deployment's environment as stored: in the form a job's
// takes (scheduler.EnvSpec's fields), or, in deployments stored by earlier
// versions, an environment asset's reference and definition under spec.
type storedEnv struct {
	Ref           string   `json:"ref"`
	Image         string   `json:"image"`
	PythonVersion string   `json:"python_version"`
	Pip           []string `json:"pip"`
	Conda         []string `json:"conda"`
	Spec          *struct {
		PythonVersion string   `json:"python_version"`
		Pip           []string `json:"pip"`
		Conda         *struct {
			Dependencies []string `json:"dependencies"`
		} `json:"conda"`
	} `json:"spec"`
}

// pyenvSpec is what the environment installs.
func (e *storedEnv) pyenvSpec() pyenv.Spec {
	if s := e.Spec; s != nil {
		out := pyenv.Spec{PythonVersion: s.PythonVersion, Pip: s.Pip}
		if s.Conda != nil {
			out.Conda = s.Conda.Dependencies
		}
		return out
	}
	return pyenv.Spec{PythonVersion: e.PythonVersion, Pip: e.Pip, Conda: e.Conda}
}

// environment builds the Python environment a deployment's workers run
// in, in this order: the deployment's own (inline or registered), built as
// a job's is; else the server's --python (Factory.Python) when it names
// one; else the environment the MLflow model in modelFolder was logged
// with, as mlflow models serve builds it. A nil *pyenv.Env means the
// host's tools: Factory.Python, or python3. The build's output goes to the
// deployment's log, so get-logs shows why a deployment failed to start.
func (f *Factory) environment(ctx context.Context, e *storedEnv, modelFolder, logPath string) (*pyenv.Env, error) {
	if f.Envs == nil {
		return nil, nil
	}
	var spec pyenv.Spec
	what := "the environment"
	switch {
	case e != nil:
		spec = e.pyenvSpec()
		if e.Ref != "" {
			what = "environment " + e.Ref
		}
	case f.Python != "" || modelFolder == "":
		return nil, nil
	default:
		ms, ok, err := pyenv.MLflowModelSpec(func(name string) ([]byte, error) {
			return os.ReadFile(filepath.Join(modelFolder, filepath.FromSlash(name)))
		})
		if err != nil {
			return nil, fmt.Errorf("the model's environment: %w", err)
		}
		if !ok {
			return nil, nil
		}
		spec, what = ms, "the model's environment"
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	pe, err := f.Envs.Ensure(ctx, spec, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return pe, nil
}

// materializeModel writes a model version's files under Dir once, laid out
// as Azure ML lays out a deployment's model (see wharf.ModelDirPath), and
// returns the folder AZUREML_MODEL_DIR names. It appears complete or not
// at all.
func (f *Factory) materializeModel(ctx context.Context, workspace, name string, version int64) (string, error) {
	// Not "models", where earlier versions kept models without the
	// folder they were registered from.
	dest := filepath.Join(f.Dir, "azureml-models", workspace, name, strconv.FormatInt(version, 10))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	v, err := f.Store.FindModelVersion(ctx, workspace, name, version)
	if err != nil {
		return "", err
	}
	loc, err := wharf.ModelLocation(ctx, f.Store, workspace, v)
	if err != nil {
		return "", err
	}
	root, ok := mlflow.ArtifactRoot(loc)
	if !ok {
		return "", fmt.Errorf("its files are outside this server (%s)", loc)
	}
	arts, err := f.Store.ListArtifacts(ctx, workspace, root)
	if err != nil {
		return "", err
	}
	if len(arts) == 0 {
		return "", fmt.Errorf("no files at %s", loc)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(mustMkdir(filepath.Dir(dest))), ".model-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, a := range arts {
		rel := filepath.FromSlash(wharf.ModelDirPath(root, a.Path))
		if !filepath.IsLocal(rel) {
			return "", fmt.Errorf("artifact path %q leaves the model folder", a.Path)
		}
		if err := f.writeBlob(ctx, a.Digest, filepath.Join(tmp, rel)); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return "", err
	}
	return dest, nil
}

func mustMkdir(dir string) string {
	_ = os.MkdirAll(dir, 0o700)
	return filepath.Join(dir, "x")
}

func (f *Factory) writeBlob(ctx context.Context, digest, path string) error {
	rc, _, err := f.Blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// materializeCode writes a scoring script's code snapshot under Dir once.
func (f *Factory) materializeCode(ctx context.Context, digest string) (string, error) {
	dest := filepath.Join(f.Dir, "code", strings.TrimPrefix(digest, "sha256:"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	tmp := dest + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := snapshot.Materialize(ctx, digest, f.Blobs, tmp); err != nil {
		return "", err
	}
	return dest, os.Rename(tmp, dest)
}

// Signature is the model's input signature, nil without one.
func (p *pythonRuntime) Signature() *scoring.Signature { return p.sig }

// pythonRuntime serves through a pool of Python workers.
type pythonRuntime struct {
	pool          *pyworker.Pool
	platform      string
	sig           *scoring.Signature
	name, version string
	// batch gathers concurrent requests into micro-batches; nil when
	// micro-batching is off.
	batch *batcher
	// unmerged is set once a worker found that the model's output does
	// not have one row per input row: its requests are no longer merged.
	unmerged atomic.Bool
}

func (p *pythonRuntime) Platform() string { return p.platform }
func (p *pythonRuntime) Restarts() int    { return p.pool.Restarts() }
func (p *pythonRuntime) Close() error     { return p.pool.Close() }

// Score passes a score.py the body as it came; for a pyfunc model the
// request is decoded and checked here, and the workers get a plain table.
func (p *pythonRuntime) Score(ctx context.Context, body []byte, proto Protocol) ([]byte, error) {
	if p.platform == "score_py" {
		if p.batch != nil {
			out, err := p.batch.submit(&batchItem{key: "score", rows: 1, ctx: ctx, value: body})
			return out, mapWorkerError(err)
		}
		out, err := p.pool.Predict(ctx, body)
		return out, mapWorkerError(err)
	}
	f, err := decodeFor(body, proto, p.sig)
	if err != nil {
		return nil, err
	}
	t, err := newTable(f)
	if err != nil {
		return nil, &RequestError{Msg: err.Error()}
	}
	var out []byte
	if p.batch != nil {
		key := t.key
		if p.unmerged.Load() {
			key = ""
		}
		out, err = p.batch.submit(&batchItem{key: key, rows: t.n, ctx: ctx, value: t})
	} else {
		out, err = p.pool.Predict(ctx, t.payload())
	}
	if err != nil {
		return nil, mapWorkerError(err)
	}
	switch f.Format {
	case scoring.FormatAzure:
		return out, nil
	case scoring.FormatV2:
		var preds []float64
		if err := json.Unmarshal(out, &preds); err != nil {
			return nil, &UserError{Msg: "the model's output is not a list of numbers, which the v2 protocol needs"}
		}
		return scoring.Encode(f.Format, scoring.Predictions{Float: preds}, scoring.ModelInfo{Name: p.name, Version: p.version, RequestID: f.ID})
	}
	return append(append([]byte(`{"predictions":`), out...), '}'), nil
}

// scoreGroup scores a micro-batch: a request alone as it would be without
// micro-batching, several in one call whose answer has one outcome each.
func (p *pythonRuntime) scoreGroup(ctx context.Context, group []*batchItem) {
	var batch *pyworker.Batch
	var err error
	if p.platform == "score_py" {
		bodies := make([][]byte, len(group))
		for i, it := range group {
			bodies[i] = it.value.([]byte)
		}
		batch, err = p.pool.PredictEach(ctx, bodies)
	} else {
		if len(group) == 1 {
			t := group[0].value.(*table)
			group[0].out, group[0].err = p.pool.Predict(ctx, t.payload())
			return
		}
		tables := make([]*table, len(group))
		for i, it := range group {
			tables[i] = it.value.(*table)
		}
		batch, err = p.pool.PredictMerged(ctx, mergeTables(tables), len(group))
		if err == nil && batch.Unmerged {
			p.unmerged.Store(true)
		}
	}
	for i, it := range group {
		if err != nil {
			it.err = err
			continue
		}
		it.out, it.err = batch.Outcomes[i].Out, batch.Outcomes[i].Err
	}
}

// mapWorkerError turns the pool's errors into the router's.
func mapWorkerError(err error) error {
	var modelErr *pyworker.ModelError
	var inputErr *pyworker.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inputErr):
		return &RequestError{Msg: inputErr.Message}
	case errors.As(err, &modelErr):
		return &UserError{Msg: modelErr.Error()}
	}
	return err
}

// decodeFor decodes a scoring body and checks it against the signature.
func decodeFor(body []byte, proto Protocol, sig *scoring.Signature) (*scoring.Frame, error) {
	f, err := scoring.Decode(body)
	if err != nil {
		return nil, &RequestError{Msg: wharf.ErrorMessage(err)}
	}
	if (proto == ProtocolV2) != (f.Format == scoring.FormatV2) {
		return nil, &RequestError{Msg: "the v2 infer route takes Open Inference Protocol requests, and /score the others"}
	}
	if sig != nil {
		if err := scoring.Check(f, sig); err != nil {
			return nil, &RequestError{Msg: wharf.ErrorMessage(err)}
		}
	}
	return f, nil
}

// nativeLinear is a linear model served in the router's own process.
type nativeLinear struct {
	model         *linear.Model
	sig           *scoring.Signature
	name, version string
}

func loadNative(dir string, mm *scoring.MLmodel, name, version string) (Runtime, error) {
	data, _ := mm.Flavors[linear.Flavor]["data"].(string)
	m, err := linear.Load(dir, data)
	if err != nil {
		return nil, fmt.Errorf("wharf_linear model: %w", err)
	}
	n := &nativeLinear{model: m, name: name, version: version}
	if mm.Signature != nil && mm.Signature.Inputs != "" {
		if n.sig, err = scoring.ParseMLflowSignature(mm.Signature.Inputs); err != nil {
			return nil, fmt.Errorf("wharf_linear model: signature: %w", err)
		}
	}
	return n, nil
}

func (n *nativeLinear) Platform() string { return "wharf_native" }
func (n *nativeLinear) Restarts() int    { return 0 }
func (n *nativeLinear) Close() error     { return nil }

// Signature is the model's input signature, nil without one.
func (n *nativeLinear) Signature() *scoring.Signature { return n.sig }

// Score computes X·coef + intercept for every row.
func (n *nativeLinear) Score(ctx context.Context, body []byte, proto Protocol) ([]byte, error) {
	f, err := decodeFor(body, proto, n.sig)
	if err != nil {
		return nil, err
	}
	var cols []string
	if f.Columns != nil && n.model.Columns != nil {
		cols = n.model.Columns
	} else if len(f.Data) != len(n.model.Coef) {
		return nil, &RequestError{Msg: fmt.Sprintf("the model takes %d columns, the request has %d", len(n.model.Coef), len(f.Data))}
	}
	x, err := f.Float64Matrix(cols)
	if err != nil {
		return nil, &RequestError{Msg: wharf.ErrorMessage(err)}
	}
	preds := make([]float64, len(x))
	for i, row := range x {
		preds[i] = n.model.Predict(row)
	}
	return scoring.Encode(f.Format, scoring.Predictions{Float: preds}, scoring.ModelInfo{Name: n.name, Version: n.version, RequestID: f.ID})
}
