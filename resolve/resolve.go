// Package resolve turns job documents — the az ml CLI v2 job schema as
// JSON, local content already uploaded — into what the scheduler runs. It
// is the one place where references are resolved: azureml:<name>:<version>
// and @latest, datastore paths and the folders below them, components and
// environments. Work enters the server through it (jobs created over the
// API, which the CLI uses too; schedule firings; batch endpoint
// invocations) at the moment the job is created, so that a schedule's next
// firing sees the data registered since the last. A rerun is the one
// exception by design: it repeats a job on the data that job resolved.
package resolve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/yamlfile"
)

// UploadDatastore and UploadFolder name where a client's uploads appear in
// a job document: azureml://datastores/workspaceblobstore/paths/
// LocalUpload/<sha256 hex>/<name>, with a trailing slash for a folder, as
// Azure ML names content its CLI uploaded. The digest in the path is the
// content itself, so nothing needs to be recorded at that path.
const (
	UploadDatastore = "workspaceblobstore"
	UploadFolder    = "LocalUpload"
)

// UploadURI is the datastore URI a job document gives uploaded content.
func UploadURI(digest, kind, name string) string {
	u := "azureml://datastores/" + UploadDatastore + "/paths/" + UploadFolder + "/" +
		strings.TrimPrefix(digest, "sha256:") + "/" + name
	if kind == scheduler.KindFolder {
		u += "/"
	}
	return u
}

// Resolver resolves job documents against one server's store.
type Resolver struct {
	Store wharf.Store
	Blobs wharf.BlobStore
}

// Job validates a job document and resolves everything it refers to, for
// the workspace. A document with problems gives one EINVALID error whose
// Details name each problem's field path.
func (r *Resolver) Job(ctx context.Context, workspace string, doc json.RawMessage) (*scheduler.Submission, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "the job document is empty")
	}
	run := &resolution{ctx: ctx, r: r, ws: workspace, assets: map[string]*wharf.Asset{}}
	plan, err := jobspec.ParseJobDocument(doc, run)
	if err != nil {
		if run.err != nil {
			return nil, run.err
		}
		return nil, DocumentError(err)
	}
	sub, err := run.submission(plan)
	if err != nil {
		return nil, DocumentError(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "the job document is not JSON: %v", err)
	}
	sub.Document = compact.Bytes()
	return sub, nil
}

// CheckComponent checks a component's stored definition before it is
// registered: a pipeline component's steps must read, against what the
// workspace holds now, with its inputs not yet given. A command
// component was checked by the client that read its file.
func (r *Resolver) CheckComponent(ctx context.Context, workspace string, spec json.RawMessage) error {
	var stored Component
	if len(spec) == 0 || json.Unmarshal(spec, &stored) != nil || stored.Component == nil || !stored.Component.IsPipeline() {
		return nil
	}
	if stored.Component.Jobs == nil || len(stored.Component.Jobs.Document) == 0 {
		return wharf.Errorf(wharf.EINVALID, "pipeline component %s has no steps", stored.Component.Name).WithField("spec.component.jobs")
	}
	run := &resolution{ctx: ctx, r: r, ws: workspace, assets: map[string]*wharf.Asset{}}
	if _, err := jobspec.ParseComponentDocument(stored.Component.Jobs.Document, run); err != nil {
		if run.err != nil {
			return run.err
		}
		return DocumentError(err)
	}
	return nil
}

// CommandComponent reads a command component received over the API, as
// the Azure ML SDK sends one (JSON, no local paths, its code named by the
// caller apart): its environment and other references are checked against
// the workspace, and it is returned in the form `wharf ml component
// create` stores, an inline environment built.
func (r *Resolver) CommandComponent(ctx context.Context, workspace string, doc []byte) (*Component, error) {
	run := &resolution{ctx: ctx, r: r, ws: workspace, assets: map[string]*wharf.Asset{}}
	spec, err := jobspec.ParseComponentDocument(doc, run)
	if err != nil {
		if run.err != nil {
			return nil, run.err
		}
		return nil, DocumentError(err)
	}
	if spec.IsPipeline() || spec.Parallel != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "component %s is not a command component; register pipeline and parallel components with `wharf ml component create`", spec.Name).WithField("type")
	}
	stored := &Component{Component: spec.Clone()}
	stored.Component.Code, stored.Component.AdditionalIncludes = "", nil
	if spec.Environment.Inline != nil {
		env, err := EnvironmentOf(spec.Environment.Inline)
		if err != nil {
			return nil, err
		}
		stored.Environment = &env
	}
	return stored, nil
}

// PipelinePorts returns the inputs a pipeline job document takes, by
// name and type, and its outputs: those of the pipeline component it runs
// (component:, which must exist and read), else those the document
// declares.
func (r *Resolver) PipelinePorts(ctx context.Context, workspace string, doc json.RawMessage) (map[string]string, []string, error) {
	var head struct {
		Component json.RawMessage            `json:"component"`
		Inputs    map[string]json.RawMessage `json:"inputs"`
		Outputs   map[string]json.RawMessage `json:"outputs"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, nil, wharf.Errorf(wharf.EINVALID, "the pipeline job document is not a JSON object: %v", err)
	}
	out := map[string]string{}
	if len(head.Component) == 0 {
		for name, v := range head.Inputs {
			var in struct {
				Type string `json:"type"`
				Path string `json:"path"`
			}
			switch {
			case json.Unmarshal(v, &in) != nil:
				out[name] = jobspec.TypeString
			case in.Type != "":
				out[name] = in.Type
			default:
				out[name] = jobspec.TypeURIFolder
			}
		}
		return out, slices.Sorted(maps.Keys(head.Outputs)), nil
	}
	run := &resolution{ctx: ctx, r: r, ws: workspace, assets: map[string]*wharf.Asset{}}
	var comp *jobspec.ComponentSpec
	var ref string
	if json.Unmarshal(head.Component, &ref) == nil {
		parsed, err := jobspec.ParseAssetRef(ref)
		if err != nil {
			return nil, nil, wharf.Errorf(wharf.EINVALID, "component: %v", err).WithField("component")
		}
		c, found, err := run.Component(parsed)
		switch {
		case err != nil:
			return nil, nil, err
		case !found:
			return nil, nil, wharf.Errorf(wharf.EINVALID, "component: unknown component reference %s: no such component is registered", ref).WithField("component")
		}
		comp = c
	} else {
		c, err := jobspec.ParseComponentDocument(head.Component, run)
		if err != nil {
			if run.err != nil {
				return nil, nil, run.err
			}
			return nil, nil, DocumentError(err)
		}
		comp = c
	}
	if !comp.IsPipeline() {
		return nil, nil, wharf.Errorf(wharf.EINVALID, "component %s is a command component; a pipeline deployment runs a pipeline component", comp.Name).WithField("component")
	}
	for name, in := range comp.Inputs {
		out[name] = in.Type
	}
	return out, slices.Sorted(maps.Keys(comp.Outputs)), nil
}

// DocumentError turns the problems jobspec found in a document into one
// EINVALID error: the first problem is its message and field, every one of
// them is in its Details. Lines are left out: they count in the request,
// not in a file anyone wrote.
func DocumentError(err error) error {
	var list []*yamlfile.Error
	var ye *yamlfile.Error
	var yl *yamlfile.ErrorList
	switch {
	case errors.As(err, &yl):
		list = yl.Errors
	case errors.As(err, &ye):
		list = []*yamlfile.Error{ye}
	default:
		return err
	}
	if len(list) == 0 {
		return err
	}
	out := wharf.Errorf(wharf.EINVALID, "%s", fieldMessage(list[0])).WithField(list[0].Field)
	if len(list) > 1 {
		out.Message = fmt.Sprintf("%s (and %d more problems)", out.Message, len(list)-1)
	}
	for _, e := range list {
		out.Details = append(out.Details, wharf.Error{Code: wharf.EINVALID, Message: e.Msg, Field: e.Field})
	}
	return out
}

func fieldMessage(e *yamlfile.Error) string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// resolution is one document being resolved: the assets it looked up are
// kept so that validation and resolution read each one once, and read the
// same version even if a newer one is registered in between.
type resolution struct {
	ctx    context.Context
	r      *Resolver
	ws     string
	assets map[string]*wharf.Asset
	// contents are the datastore URIs already resolved: steps that share
	// a code folder or an input look it up once.
	contents map[string]*wharf.DatastoreFile
	// serverless is set once the workspace is known to have its
	// serverless cluster.
	serverless bool
	// err is a store failure met while jobspec asked about an asset: it
	// is the server's problem, not the document's.
	err error
}

// fetch returns an asset version; found is false when it does not exist.
func (run *resolution) fetch(kind string, ref jobspec.AssetRef) (*wharf.Asset, bool, error) {
	if ref.Form == jobspec.RefRegistry {
		return nil, false, nil
	}
	if ref.Workspace != "" && ref.Workspace != run.ws {
		return nil, false, nil
	}
	version := ref.Version
	if version == "" {
		version = wharf.LatestVersion
	}
	key := kind + "/" + ref.Name + "/" + version
	if a, ok := run.assets[key]; ok {
		return a, true, nil
	}
	a, err := run.r.Store.FindAsset(run.ctx, run.ws, kind, ref.Name, version)
	if wharf.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		run.err = err
		return nil, false, err
	}
	run.assets[key] = a
	return a, true, nil
}

// Component implements jobspec.Resolver.
func (run *resolution) Component(ref jobspec.AssetRef) (*jobspec.ComponentSpec, bool, error) {
	a, found, err := run.fetch(wharf.AssetComponent, ref)
	if err != nil || !found {
		return nil, found, err
	}
	var stored Component
	if err := json.Unmarshal(a.Spec, &stored); err != nil || stored.Component == nil {
		run.err = wharf.Errorf(wharf.EINTERNAL, "component %s:%s is stored in a form this server cannot read: %v", a.Name, a.Version, err)
		return nil, false, run.err
	}
	return stored.Component, true, nil
}

// AssetExists implements jobspec.Resolver.
func (run *resolution) AssetExists(kind jobspec.AssetKind, ref jobspec.AssetRef) (bool, error) {
	switch kind {
	case jobspec.AssetEnvironment:
		_, found, err := run.environmentAsset(ref)
		return found, err
	case jobspec.AssetData, jobspec.AssetComponent:
		_, found, err := run.fetch(string(kind), ref)
		return found, err
	case jobspec.AssetModel:
		if ref.Form == jobspec.RefRegistry {
			return false, nil
		}
		var err error
		if ref.Version == "" {
			_, err = run.r.Store.FindRegisteredModel(run.ctx, run.ws, ref.Name)
		} else {
			_, err = run.r.Store.FindModelAssetVersion(run.ctx, run.ws, ref.Name, ref.Version)
		}
		if wharf.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			run.err = err
		}
		return err == nil, err
	}
	return false, nil
}

// submission builds what the scheduler runs from a validated plan.
func (run *resolution) submission(plan *jobspec.Plan) (*scheduler.Submission, error) {
	sub := &scheduler.Submission{Name: plan.Name, Type: string(plan.Kind), DisplayName: plan.DisplayName,
		ExperimentName: plan.ExperimentName, Description: plan.Description, Tags: plan.Tags}
	if plan.Kind == jobspec.KindPipeline {
		sub.Pipeline = &scheduler.PipelineSpec{ContinueOnStepFailure: plan.Settings.ContinueOnStepFailure,
			ForceRerun: plan.Settings.ForceRerun, Outputs: map[string]scheduler.StepOutputRef{}}
	}
	for _, st := range plan.Steps {
		spec, err := run.stepSpec(plan, st)
		if err != nil {
			return nil, err
		}
		if sub.Pipeline != nil {
			for name, o := range st.Outputs {
				if o.ParentOutput != "" {
					sub.Pipeline.Outputs[o.ParentOutput] = scheduler.StepOutputRef{Step: st.Name, Output: name}
				}
			}
		}
		sub.Steps = append(sub.Steps, scheduler.SubmittedStep{Name: st.Name, DisplayName: st.DisplayName, Spec: *spec})
	}
	return sub, nil
}

func (run *resolution) stepSpec(plan *jobspec.Plan, st *jobspec.Step) (*scheduler.StepSpec, error) {
	comp := st.Component
	spec := &scheduler.StepSpec{Command: comp.Command, Compute: st.Compute, EnvVars: st.EnvironmentVariables,
		MaxRetries: st.Retry.MaxRetries, Deterministic: comp.IsDeterministic, ForceRerun: plan.Settings.ForceRerun || st.ForceRerun,
		Datastore: plan.Settings.DefaultDatastore, Sweep: st.Sweep,
		Inputs: map[string]scheduler.InputSpec{}, Outputs: map[string]scheduler.OutputSpec{}}
	if st.DefaultDatastore != "" {
		spec.Datastore = st.DefaultDatastore
	}
	spec.InstanceType, spec.GPUsPerInstance = comp.Resources.InstanceType, comp.Resources.GPUsPerInstance
	if d := comp.Distribution; d != nil && d.Type != "ray" {
		spec.Distribution = &scheduler.DistributionSpec{Type: d.Type, InstanceCount: max(comp.Resources.InstanceCount, 1),
			ProcessCountPerInstance: d.ProcessCountPerInstance, WorkerCount: d.WorkerCount, ParameterServerCount: d.ParameterServerCount}
	}
	if spec.Compute == "" {
		spec.Compute = Serverless
	}
	if spec.Compute == Serverless {
		if err := run.ensureServerless(); err != nil {
			return nil, err
		}
	}
	timeout := st.Timeout
	if timeout == 0 {
		timeout = st.Retry.Timeout
	}
	spec.TimeoutSeconds = int(timeout.Seconds())
	if st.Retry.MaxRetries > 0 {
		spec.RetryBackoffSeconds = 1
	}
	if strings.HasPrefix(st.ComponentRef, "azureml:") || (st.ComponentRef != "" && !strings.HasPrefix(st.ComponentRef, "file:")) {
		spec.Component = strings.TrimPrefix(st.ComponentRef, "azureml:")
	}

	// Code: content at a datastore path (what the client uploaded), or
	// a registered component's own snapshot.
	switch {
	case comp.CodeURI != nil:
		d, err := run.datastoreContent(*comp.CodeURI)
		if err != nil {
			return nil, codePos(st).Errorf("%s", wharf.ErrorMessage(err))
		}
		if d.Kind != scheduler.KindFolder {
			return nil, codePos(st).Errorf("code %s must be a folder", comp.CodeURI.String())
		}
		spec.CodeDigest = d.Digest
	case comp.Code != "":
		return nil, codePos(st).Errorf("code %s is a local path, which a job document cannot hold", comp.Code)
	case spec.Component != "":
		ref, err := jobspec.ParseAssetRef(st.ComponentRef)
		if err != nil {
			return nil, st.Pos.Errorf("%s", err.Error())
		}
		asset, found, err := run.fetch(wharf.AssetComponent, ref)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, st.Pos.Errorf("component %s not found", st.ComponentRef)
		}
		spec.CodeDigest = asset.Digest
		spec.Component = asset.Name + ":" + asset.Version
	}

	env, err := run.environment(comp)
	if err != nil {
		return nil, st.Pos.Errorf("environment: %s", err.Error())
	}
	spec.Environment = env

	if spec.ComponentHash, err = ComponentHash(comp); err != nil {
		return nil, err
	}

	names := make([]string, 0, len(st.Inputs))
	for n := range st.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		in, err := run.inputSpec(st, name, st.Inputs[name])
		if err != nil {
			return nil, err
		}
		if def, ok := comp.Inputs[name]; ok {
			in.Optional = def.Optional
		}
		spec.Inputs[name] = in
	}
	for name, o := range st.Outputs {
		spec.Outputs[name] = scheduler.OutputSpec{Type: o.Type, Mode: o.Mode, Parent: o.ParentOutput, Path: o.Path}
	}
	// Outputs the component declares but the step does not bind still get
	// a folder, as in Azure ML.
	for name, o := range comp.Outputs {
		if _, ok := spec.Outputs[name]; !ok {
			spec.Outputs[name] = scheduler.OutputSpec{Type: o.Type, Mode: o.Mode}
		}
	}
	return spec, nil
}

// Serverless is the compute of a job that names none, or names
// azureml:serverless: where Azure ML would run it on serverless compute,
// Wharf runs it on a cluster of its own by that name, made in the
// workspace the first time a job needs it.
const Serverless = "serverless"

// ensureServerless makes the workspace's serverless cluster if it has
// none: as many steps at once as the machine has cores.
func (run *resolution) ensureServerless() error {
	if run.serverless {
		return nil
	}
	_, err := run.r.Store.FindCompute(run.ctx, run.ws, Serverless)
	if wharf.IsNotFound(err) {
		c := &wharf.Compute{Workspace: run.ws, Name: Serverless, Type: "amlcompute", MaxInstances: max(2, runtime.NumCPU()),
			Description: "Runs the jobs that name no compute, as Azure ML runs them on serverless compute"}
		if err = c.Validate(); err == nil {
			_, err = run.r.Store.PutCompute(run.ctx, c)
		}
	}
	if err != nil {
		return err
	}
	run.serverless = true
	return nil
}

// codePos is where a step's code is written: the step's code field.
func codePos(st *jobspec.Step) jobspec.Position {
	p := st.Pos
	p.Field = joinField(p.Field, "code")
	if st.ComponentRef == "" && st.Component != nil && st.Component.Pos.Field != st.Pos.Field {
		p.Field = joinField(st.Component.Pos.Field, "code")
	}
	return p
}

func joinField(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// environment pins a step's environment to what it builds.
func (run *resolution) environment(comp *jobspec.ComponentSpec) (scheduler.EnvSpec, error) {
	switch {
	case comp.Environment.Inline != nil:
		e, err := EnvironmentOf(comp.Environment.Inline)
		if err != nil {
			return scheduler.EnvSpec{}, err
		}
		return scheduler.EnvSpec{Image: e.Image, PythonVersion: e.PythonVersion, Pip: e.Pip, Conda: condaDeps(e.Conda)}, nil
	case comp.Environment.Ref != nil:
		asset, found, err := run.environmentAsset(*comp.Environment.Ref)
		if err != nil {
			return scheduler.EnvSpec{}, err
		}
		if !found {
			return scheduler.EnvSpec{}, errors.New(jobspec.UnknownEnvironment(*comp.Environment.Ref))
		}
		var e Environment
		if err := json.Unmarshal(asset.Spec, &e); err != nil {
			return scheduler.EnvSpec{}, fmt.Errorf("environment %s:%s cannot be read: %w", asset.Name, asset.Version, err)
		}
		return scheduler.EnvSpec{Ref: asset.Name + ":" + asset.Version, Image: e.Image, PythonVersion: e.PythonVersion,
			Pip: e.Pip, Conda: condaDeps(e.Conda), Note: e.Note}, nil
	}
	return scheduler.EnvSpec{}, nil
}

func condaDeps(c *jobspec.CondaSpec) []string {
	if c == nil {
		return nil
	}
	return c.Dependencies
}

// inputSpec resolves one bound input.
func (run *resolution) inputSpec(st *jobspec.Step, name string, b jobspec.Binding) (scheduler.InputSpec, error) {
	in := scheduler.InputSpec{Type: b.Type}
	switch {
	case b.Kind == jobspec.BindStepOutput:
		in.Step, in.Output = b.Step, b.Port
		return in, nil
	case b.Literal != nil:
		text, _ := b.Text()
		in.Literal = &text
		return in, nil
	case b.Data != nil:
		if err := run.data(b.Data, &in); err != nil {
			if wharf.ErrorCode(err) == wharf.EINVALID || wharf.IsNotFound(err) {
				return in, b.Pos.Errorf("input %s: %s", name, wharf.ErrorMessage(err))
			}
			return in, err
		}
		return in, nil
	case b.Kind == jobspec.BindStepInput:
		return in, b.Pos.Errorf("input %s is bound to an input of step %s that has no value of its own", name, b.Step)
	}
	return in, b.Pos.Errorf("input %s has no value", name)
}

// data resolves a data reference into in: the content it names now.
func (run *resolution) data(d *jobspec.DataRef, in *scheduler.InputSpec) error {
	switch {
	case d.Asset != nil && isModelType(in.Type, d.Type):
		return run.model(*d.Asset, in)
	case d.Asset != nil:
		asset, found, err := run.fetch(wharf.AssetData, *d.Asset)
		if err != nil {
			return err
		}
		if !found {
			return wharf.Errorf(wharf.EINVALID, "data asset %s not found", d.Asset.String())
		}
		var ds DataAsset
		if err := json.Unmarshal(asset.Spec, &ds); err != nil {
			return err
		}
		in.Digest, in.Kind, in.FileName = asset.Digest, ds.Kind, ds.FileName
		in.Source = "azureml:" + asset.Name + ":" + asset.Version
		if asset.Digest == "" && jobspec.IsDatastoreURI(ds.Path) {
			// Registered before anything was at its path: what is there
			// now, if anything.
			u, err := jobspec.ParseDatastoreURI(ds.Path)
			if err != nil {
				return err
			}
			df, err := run.datastoreContent(u)
			if wharf.IsNotFound(err) {
				return wharf.Errorf(wharf.EINVALID, "data asset %s:%s names %s, which holds nothing yet", asset.Name, asset.Version, ds.Path)
			}
			if err != nil {
				return err
			}
			if err := CheckKind(ds.Type, df.Kind, ds.Path); err != nil {
				return err
			}
			in.Digest, in.Kind, in.FileName = df.Digest, df.Kind, path.Base(df.Path)
		}
	case d.Datastore != nil:
		df, err := run.datastoreContent(*d.Datastore)
		if err != nil {
			return err
		}
		in.Digest, in.Kind, in.FileName, in.Source = df.Digest, df.Kind, path.Base(df.Path), d.Datastore.String()
	case d.LocalPath != "":
		return wharf.Errorf(wharf.EINVALID, "%s is a local path, which a job document cannot hold", d.LocalPath)
	case d.URL != "":
		return urlData(d, in)
	default:
		return wharf.Errorf(wharf.EINVALID, "%s cannot be read by this server; use a data asset or an azureml://datastores/ path", d.String())
	}
	return nil
}

// isModelType reports whether an input (typ, or the type its data was
// given with) takes a registered model.
func isModelType(types ...string) bool {
	for _, t := range types {
		switch t {
		case jobspec.TypeMLflowModel, jobspec.TypeCustomModel, jobspec.TypeTritonModel:
			return true
		}
	}
	return false
}

// model resolves a model input (azureml:<name>:<version>, @latest) to
// the files of that registered version, as one folder: the folder the
// model was registered from (an MLflow model's MLmodel at its top), or,
// for a model registered from one file, a folder holding that file. A
// step reads it as Azure mounts a model input.
func (run *resolution) model(ref jobspec.AssetRef, in *scheduler.InputSpec) error {
	if ref.Form == jobspec.RefRegistry || (ref.Workspace != "" && ref.Workspace != run.ws) {
		return wharf.Errorf(wharf.EINVALID, "model %s is not in workspace %s", ref.String(), run.ws)
	}
	version := ref.Version
	if version == "" || version == wharf.LatestVersion {
		vs, _, err := run.r.Store.SearchModelVersions(run.ctx, run.ws, wharf.SearchQuery{
			Filter: "name = '" + strings.ReplaceAll(ref.Name, "'", "\\'") + "'", OrderBy: []string{"version_number DESC"}, MaxResults: 1})
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return wharf.Errorf(wharf.EINVALID, "model %s not found", ref.String())
		}
		version = vs[0].AzureVersion()
	}
	v, err := run.r.Store.FindModelAssetVersion(run.ctx, run.ws, ref.Name, version)
	if wharf.IsNotFound(err) {
		return wharf.Errorf(wharf.EINVALID, "model %s not found", ref.String())
	}
	if err != nil {
		return err
	}
	loc, err := wharf.ModelLocation(run.ctx, run.r.Store, run.ws, v)
	if err != nil {
		return err
	}
	root, ok := mlflow.ArtifactRoot(loc)
	if !ok {
		return wharf.Errorf(wharf.EINVALID, "model %s:%s is stored outside this server (%s)", v.Name, v.AzureVersion(), loc)
	}
	arts, err := run.r.Store.ListArtifacts(run.ctx, run.ws, root)
	if err != nil {
		return err
	}
	if len(arts) == 0 {
		return wharf.Errorf(wharf.EINVALID, "model %s:%s has no files", v.Name, v.AzureVersion())
	}
	files := make([]snapshot.File, len(arts))
	for i, a := range arts {
		rel := strings.Trim(strings.TrimPrefix(a.Path, root), "/")
		if rel == "" {
			rel = path.Base(a.Path) // a model registered from one file
		}
		files[i] = snapshot.File{Path: rel, Mode: snapshot.ModeFile, Digest: a.Digest, Size: a.Size}
	}
	if run.r.Blobs == nil {
		return wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	m, err := snapshot.FromStored(run.ctx, files, run.r.Blobs)
	if err != nil {
		return err
	}
	// The step reads the model as content of the workspace, which the
	// manifest now is.
	if err := run.r.Store.AddBlobRefs(run.ctx, run.ws, m.Digests()); err != nil {
		return err
	}
	in.Digest, in.Kind, in.Source = m.Digest, scheduler.KindFolder, "azureml:"+v.Name+":"+v.AzureVersion()
	return nil
}

// urlData resolves a data path given as a URL, read by the scheduler
// when the step runs, so its content is not known now: a uri_file is
// downloaded, a folder listed and downloaded from Azure Blob storage (a
// URL elsewhere fails then, with the reason). A file given as a uri_file
// where the input is a folder, as the job may write it over a
// component's uri_folder input, is a file in that folder.
func urlData(d *jobspec.DataRef, in *scheduler.InputSpec) error {
	fetch, err := jobspec.FetchURL(d.URL)
	if err != nil {
		return wharf.Errorf(wharf.EINVALID, "%v", err)
	}
	u, err := url.Parse(fetch)
	if err != nil {
		return wharf.Errorf(wharf.EINVALID, "%q is not a valid URL: %v", d.URL, err)
	}
	typ := in.Type
	if typ == "" || d.Type == jobspec.TypeURIFile {
		typ = d.Type
	}
	in.URL, in.Source = fetch, d.URL
	if typ != jobspec.TypeURIFile {
		in.Kind = scheduler.KindFolder
		return nil
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == ".." {
		name = ""
	}
	in.Kind, in.FileName = scheduler.KindFile, name
	return nil
}

// CheckKind refuses content of the wrong kind for a data type: a uri_file
// must be a file, a uri_folder or mltable a folder.
func CheckKind(typ, kind, where string) error {
	switch {
	case typ == jobspec.TypeURIFile && kind != scheduler.KindFile:
		return wharf.Errorf(wharf.EINVALID, "type uri_file needs a file, but %s is a folder", where).WithField("path")
	case typ != "" && typ != jobspec.TypeURIFile && kind == scheduler.KindFile:
		return wharf.Errorf(wharf.EINVALID, "type %s needs a folder, but %s is a file", typ, where).WithField("path")
	}
	return nil
}

// Input resolves one data input given by reference, as a batch endpoint
// invocation gives it: azureml:<name>:<version> or @latest, or an
// azureml://datastores/ path (uploaded content included). field names it
// in errors.
func (r *Resolver) Input(ctx context.Context, workspace, typ, ref, field string) (scheduler.InputSpec, error) {
	run := &resolution{ctx: ctx, r: r, ws: workspace, assets: map[string]*wharf.Asset{}}
	in := scheduler.InputSpec{Type: typ}
	var d jobspec.DataRef
	switch {
	case jobspec.IsDatastoreURI(ref):
		u, err := jobspec.ParseDatastoreURI(ref)
		if err != nil {
			return in, wharf.Errorf(wharf.EINVALID, "%v", err).WithField(field)
		}
		d.Datastore = &u
	case strings.HasPrefix(ref, "azureml:"):
		a, err := jobspec.ParseAssetRef(ref)
		if err != nil {
			return in, wharf.Errorf(wharf.EINVALID, "%v", err).WithField(field)
		}
		d.Asset = &a
	default:
		return in, wharf.Errorf(wharf.EINVALID, "%q: expected azureml:<name>:<version>, azureml:<name>@latest or an azureml://datastores/ path", ref).WithField(field)
	}
	if err := run.data(&d, &in); err != nil {
		var we *wharf.Error
		if errors.As(err, &we) && (we.Code == wharf.EINVALID || we.Code == wharf.ENOTFOUND) {
			return in, wharf.Errorf(we.Code, "%s", we.Message).WithField(field)
		}
		return in, err
	}
	return in, nil
}

// datastoreContent is what a datastore URI names now: uploaded content
// named by its digest, a file or folder recorded at the path, or the
// folder of everything recorded below it, as it stands at this moment.
func (run *resolution) datastoreContent(u jobspec.DatastoreURI) (*wharf.DatastoreFile, error) {
	key := u.Datastore + "/" + u.Path
	if f, ok := run.contents[key]; ok {
		return f, nil
	}
	f, err := run.lookupContent(u)
	if err != nil {
		return nil, err
	}
	if run.contents == nil {
		run.contents = map[string]*wharf.DatastoreFile{}
	}
	run.contents[key] = f
	return f, nil
}

func (run *resolution) lookupContent(u jobspec.DatastoreURI) (*wharf.DatastoreFile, error) {
	if digest, name, kind, ok := parseUpload(u); ok {
		err := snapshot.CheckReferenced(run.ctx, run.r.Store, run.r.Blobs, run.ws, digest, "")
		if err == nil {
			if err := run.publishUpload(u, digest, kind); err != nil {
				return nil, err
			}
			return &wharf.DatastoreFile{Workspace: run.ws, Datastore: u.Datastore, Path: name, Digest: digest, Kind: kind}, nil
		}
		// The Azure ML SDK names its uploads by a hash of its own, in
		// the same form, and they are recorded at the path it wrote: a
		// file there, or a folder's files below it.
		if f, ferr := run.r.Store.FindDatastoreFile(run.ctx, run.ws, u.Datastore, u.Path); ferr == nil {
			return f, nil
		}
		if f, ferr := run.folderBelow(u, err); ferr == nil {
			return f, nil
		}
		return nil, err
	}
	if strings.ContainsAny(u.Path, "*?[") || strings.Contains(u.Path, "${{") {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: patterns and expressions in datastore paths are not supported", u.String())
	}
	if f, found, err := run.containerContent(u); found || err != nil {
		return f, err
	}
	f, err := run.r.Store.FindDatastoreFile(run.ctx, run.ws, u.Datastore, u.Path)
	if err == nil || !wharf.IsNotFound(err) {
		return f, err
	}
	return run.folderBelow(u, err)
}

// containerContent is what the container or bucket of an azure_blob or s3
// datastore holds at a path, whoever put it there: the object at the
// path, or the folder of the objects below it together with what Wharf
// recorded below it and the container lacks (the container's object wins
// where both have a path). Its files are read into the content store, so
// the digest is of the bytes the container holds now. found is false for
// another type of datastore, and when the container holds nothing there.
func (run *resolution) containerContent(u jobspec.DatastoreURI) (f *wharf.DatastoreFile, found bool, err error) {
	d, err := run.r.Store.FindDatastore(run.ctx, run.ws, u.Datastore)
	if wharf.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	c, ok, err := blob.OpenContainer(run.ctx, run.r.Store, run.r.Blobs, d)
	if err != nil || !ok {
		return nil, false, err
	}
	objects, isFile, err := c.Read(run.ctx, u.Path)
	err = blob.DefinitionFault(err)
	switch {
	case err != nil:
		return nil, false, err
	case len(objects) == 0:
		return nil, false, nil
	case isFile:
		return &wharf.DatastoreFile{Workspace: run.ws, Datastore: u.Datastore, Path: strings.Trim(u.Path, "/"),
			Digest: objects[0].Digest, Kind: scheduler.KindFile}, true, nil
	}
	files, err := run.recordedBelow(u)
	if err != nil {
		return nil, false, err
	}
	for _, o := range objects {
		files[o.Path] = o
	}
	f, err = run.folderOf(u, files)
	return f, err == nil, err
}

// publishUpload writes content a client uploaded into the container of
// the upload datastore at the path its URI names, when that datastore is
// an azure_blob or s3 one, as Azure ML's CLI uploads code and local
// inputs there: other tools listing the container find them. Content
// already written there is not sent again.
func (run *resolution) publishUpload(u jobspec.DatastoreURI, digest, kind string) error {
	return run.r.publish(run.ctx, run.ws, u, digest, kind)
}

func (r *Resolver) publish(ctx context.Context, ws string, u jobspec.DatastoreURI, digest, kind string) error {
	d, err := r.Store.FindDatastore(ctx, ws, u.Datastore)
	if wharf.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c, ok, err := blob.OpenContainer(ctx, r.Store, r.Blobs, d)
	if err != nil || !ok {
		return err
	}
	return blob.DefinitionFault(c.WriteMissing(ctx, u.Path, digest, kind == scheduler.KindFolder))
}

// PublishUpload writes uploaded content, digest, at the LocalUpload URI
// uri that names it (UploadURI) into the upload datastore's container
// when that is an azure_blob or s3 one, as a job's code and local inputs
// are: what a component or deployment keeps of its code. field names
// where uri was given, for a uri that does not name digest.
func (r *Resolver) PublishUpload(ctx context.Context, ws, uri, digest, field string) error {
	u, err := jobspec.ParseDatastoreURI(uri)
	named, kind, ok := "", "", false
	if err == nil {
		named, _, kind, ok = parseUpload(u)
	}
	if !ok || named != digest {
		return wharf.Errorf(wharf.EINVALID, "%s %q does not name the uploaded content %s", field, uri, digest).WithField(field)
	}
	return r.publish(ctx, ws, u, digest, kind)
}

// PublishComponentCode writes a component's code folder, content digest,
// at its stored code_path (Component.CodePath) into the upload
// datastore's container, as a job's code is. A component without a
// code_path has nothing to publish.
func (r *Resolver) PublishComponentCode(ctx context.Context, ws string, spec json.RawMessage, digest string) error {
	var stored Component
	if len(spec) == 0 || json.Unmarshal(spec, &stored) != nil || stored.CodePath == "" {
		return nil
	}
	return r.PublishUpload(ctx, ws, stored.CodePath, digest, "spec.code_path")
}

// parseUpload reads the digest out of a LocalUpload URI.
func parseUpload(u jobspec.DatastoreURI) (digest, name, kind string, ok bool) {
	if u.Datastore != UploadDatastore {
		return "", "", "", false
	}
	rest, found := strings.CutPrefix(u.Path, UploadFolder+"/")
	if !found {
		return "", "", "", false
	}
	hexPart, name, _ := strings.Cut(rest, "/")
	if len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return "", "", "", false
	}
	kind = scheduler.KindFile
	if strings.HasSuffix(name, "/") {
		kind = scheduler.KindFolder
	}
	name = strings.TrimSuffix(name, "/")
	if name == "" {
		name = hexPart
	}
	return "sha256:" + hexPart, name, kind, true
}

// folderBelow makes the snapshot of everything recorded below a datastore
// folder: files written there since the last submission are in it, and
// the same files give the same digest, so unchanged data keeps reuse.
func (run *resolution) folderBelow(u jobspec.DatastoreURI, notFound error) (*wharf.DatastoreFile, error) {
	files, err := run.recordedBelow(u)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, notFound
	}
	return run.folderOf(u, files)
}

// recordedBelow returns the files Wharf recorded below a datastore folder,
// by their paths relative to it.
func (run *resolution) recordedBelow(u jobspec.DatastoreURI) (map[string]snapshot.File, error) {
	prefix := strings.Trim(u.Path, "/")
	entries, err := run.r.Store.ListDatastoreFiles(run.ctx, run.ws, u.Datastore, prefix)
	if err != nil {
		return nil, err
	}
	files := map[string]snapshot.File{}
	if len(entries) == 0 {
		return files, nil
	}
	if run.r.Blobs == nil {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	// A path recorded later replaces what an earlier folder put there.
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].CreatedAt.Before(entries[j].CreatedAt) })
	for _, e := range entries {
		rel := strings.TrimPrefix(strings.TrimPrefix(e.Path, prefix), "/")
		switch e.Kind {
		case scheduler.KindFolder:
			m, err := snapshot.Load(run.ctx, e.Digest, run.r.Blobs)
			if err != nil {
				return nil, err
			}
			for _, f := range m.Files {
				f.Path = path.Join(rel, f.Path)
				files[f.Path] = f
			}
		default:
			size, err := run.r.Blobs.Stat(run.ctx, e.Digest)
			if err != nil {
				return nil, err
			}
			files[rel] = snapshot.File{Path: rel, Mode: snapshot.ModeFile, Digest: e.Digest, Size: size}
		}
	}
	return files, nil
}

// folderOf stores the snapshot of a datastore folder's files, as content
// of the workspace.
func (run *resolution) folderOf(u jobspec.DatastoreURI, files map[string]snapshot.File) (*wharf.DatastoreFile, error) {
	list := make([]snapshot.File, 0, len(files))
	for _, f := range files {
		list = append(list, f)
	}
	m, err := snapshot.FromStored(run.ctx, list, run.r.Blobs)
	if err != nil {
		return nil, err
	}
	if err := run.r.Store.AddBlobRefs(run.ctx, run.ws, []string{m.Digest}); err != nil {
		return nil, err
	}
	return &wharf.DatastoreFile{Workspace: run.ws, Datastore: u.Datastore, Path: strings.Trim(u.Path, "/"), Digest: m.Digest, Kind: scheduler.KindFolder}, nil
}

// ComponentHash identifies what a component computes: its command,
// inputs, outputs and settings, but not where its code sits or on which
// line each key is (a checkout in another folder must hit the same cached
// steps), nor its name and description. Code and environment have their
// own digests in the step's reuse key.
func ComponentHash(comp *jobspec.ComponentSpec) (string, error) {
	c := comp.Clone()
	c.Code, c.CodeRef, c.CodeURI, c.Environment = "", nil, nil, jobspec.EnvironmentRef{}
	c.Name, c.Version, c.DisplayName, c.Description, c.Tags = "", "", "", "", nil
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	// Where code is stored says nothing about what runs; leaving the key
	// out keeps hashes equal to those of jobs stored before it existed.
	delete(doc, "CodeURI")
	delete(doc, "AdditionalIncludes")
	b, err = json.Marshal(withoutPositions(doc))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// withoutPositions drops every "Pos" (YAML position) from a decoded JSON
// document; encoding/json then writes map keys sorted, so the result is
// canonical.
func withoutPositions(v any) any {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "Pos")
		for k, e := range t {
			t[k] = withoutPositions(e)
		}
	case []any:
		for i, e := range t {
			t[i] = withoutPositions(e)
		}
	}
	return v
}
