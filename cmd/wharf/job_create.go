package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/scheduler"
)

func (a *app) jobCreateCommand() *cobra.Command {
	var f createFlags
	var stream bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Submit a command or pipeline job from CLI v2 YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			res := newAPIResolver(cmd.Context(), c, ws)
			plan, err := jobspec.LoadJob(f.file, f.overrides(), res)
			if err != nil {
				return err
			}
			sub, err := a.submission(cmd.Context(), c, ws, res, plan)
			if err != nil {
				return err
			}
			var created map[string]any
			if err := c.Do(cmd.Context(), "POST", jobsPath(ws), sub, &created); err != nil {
				return err
			}
			name, _ := created["name"].(string)
			if !stream {
				return a.print(created)
			}
			if err := a.streamJob(cmd.Context(), c, ws, name); err != nil {
				return err
			}
			var final any
			if err := c.Do(cmd.Context(), "GET", jobsPath(ws)+"/"+name, nil, &final); err != nil {
				return err
			}
			return a.print(final)
		},
	}
	f.add(create)
	create.Flags().BoolVarP(&stream, "stream", "s", false, "follow the job's logs until it ends; fail if it does not complete")
	f.field(create, "experiment-name", "e", "experiment_name", "experiment (overrides the YAML's)")
	f.field(create, "display-name", "", "display_name", "display name (overrides the YAML's)")
	return create
}

// submission turns a validated plan into what the server runs: local code
// and data are uploaded, registered assets are pinned to their content.
func (a *app) submission(ctx context.Context, c *wharfhttp.Client, ws string, res *apiResolver, plan *jobspec.Plan) (*scheduler.Submission, error) {
	sub := &scheduler.Submission{Name: plan.Name, Type: string(plan.Kind), DisplayName: plan.DisplayName,
		ExperimentName: plan.ExperimentName, Description: plan.Description, Tags: plan.Tags}
	if plan.Kind == jobspec.KindPipeline {
		sub.Pipeline = &scheduler.PipelineSpec{ContinueOnStepFailure: plan.Settings.ContinueOnStepFailure,
			ForceRerun: plan.Settings.ForceRerun, Outputs: map[string]scheduler.StepOutputRef{}}
	}
	uploads := map[string]uploaded{}
	for _, st := range plan.Steps {
		spec, err := a.stepSpec(ctx, c, ws, res, plan, st, uploads)
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

// uploaded is local content already sent in this submission.
type uploaded struct {
	digest, kind string
}

func (a *app) upload(ctx context.Context, c *wharfhttp.Client, ws, path, what string, cache map[string]uploaded) (uploaded, error) {
	if u, ok := cache[path]; ok {
		return u, nil
	}
	digest, kind, _, _, err := a.uploadLocal(ctx, c, ws, path, what)
	if err != nil {
		return uploaded{}, err
	}
	cache[path] = uploaded{digest, kind}
	return cache[path], nil
}

func (a *app) stepSpec(ctx context.Context, c *wharfhttp.Client, ws string, res *apiResolver, plan *jobspec.Plan, st *jobspec.Step, uploads map[string]uploaded) (*scheduler.StepSpec, error) {
	comp := st.Component
	spec := &scheduler.StepSpec{Command: comp.Command, Compute: st.Compute, EnvVars: st.EnvironmentVariables,
		MaxRetries: st.Retry.MaxRetries, Deterministic: comp.IsDeterministic, ForceRerun: plan.Settings.ForceRerun,
		Datastore: plan.Settings.DefaultDatastore,
		Inputs:    map[string]scheduler.InputSpec{}, Outputs: map[string]scheduler.OutputSpec{}}
	if spec.Compute == "" {
		return nil, st.Pos.Errorf("no compute for step %s: set compute: on the step or settings.default_compute", st.Name)
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

	// Code: a local folder is uploaded; a registered component brings its
	// own snapshot.
	switch {
	case comp.Code != "":
		u, err := a.upload(ctx, c, ws, comp.Code, "code", uploads)
		if err != nil {
			return nil, err
		}
		if u.kind != "folder" {
			return nil, st.Pos.Errorf("code %s must be a folder", comp.Code)
		}
		spec.CodeDigest = u.digest
	case spec.Component != "":
		ref, err := jobspec.ParseAssetRef(st.ComponentRef)
		if err != nil {
			return nil, st.Pos.Errorf("%s", err.Error())
		}
		asset, found, err := res.fetch(wharf.AssetComponent, ref)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, st.Pos.Errorf("component %s not found", st.ComponentRef)
		}
		spec.CodeDigest = asset.Digest
		spec.Component = asset.Name + ":" + asset.Version
	}

	env, err := a.environment(res, comp)
	if err != nil {
		return nil, st.Pos.Errorf("environment: %s", err.Error())
	}
	spec.Environment = env

	if spec.ComponentHash, err = componentHash(comp); err != nil {
		return nil, err
	}

	names := make([]string, 0, len(st.Inputs))
	for n := range st.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		in, err := a.inputSpec(ctx, c, ws, res, plan, st, name, st.Inputs[name], uploads)
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

// environment pins a step's environment to what it builds.
func (a *app) environment(res *apiResolver, comp *jobspec.ComponentSpec) (scheduler.EnvSpec, error) {
	switch {
	case comp.Environment.Inline != nil:
		e, err := envSpecOf(comp.Environment.Inline)
		if err != nil {
			return scheduler.EnvSpec{}, err
		}
		return scheduler.EnvSpec{Image: e.Image, PythonVersion: e.PythonVersion, Pip: e.Pip, Conda: condaDeps(e.Conda)}, nil
	case comp.Environment.Ref != nil:
		asset, found, err := res.fetch(wharf.AssetEnvironment, *comp.Environment.Ref)
		if err != nil {
			return scheduler.EnvSpec{}, err
		}
		if !found {
			return scheduler.EnvSpec{}, fmt.Errorf("environment %s not found", comp.Environment.Ref.String())
		}
		var e envSpecJSON
		if err := json.Unmarshal(asset.Spec, &e); err != nil {
			return scheduler.EnvSpec{}, fmt.Errorf("environment %s:%s cannot be read: %w", asset.Name, asset.Version, err)
		}
		return scheduler.EnvSpec{Ref: asset.Name + ":" + asset.Version, Image: e.Image, PythonVersion: e.PythonVersion,
			Pip: e.Pip, Conda: condaDeps(e.Conda)}, nil
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
func (a *app) inputSpec(ctx context.Context, c *wharfhttp.Client, ws string, res *apiResolver, plan *jobspec.Plan, st *jobspec.Step, name string, b jobspec.Binding, uploads map[string]uploaded) (scheduler.InputSpec, error) {
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
		d := b.Data
		switch {
		case d.Asset != nil:
			asset, found, err := res.fetch(wharf.AssetData, *d.Asset)
			if err != nil {
				return in, err
			}
			if !found {
				return in, b.Pos.Errorf("data asset %s not found", d.Asset.String())
			}
			var ds dataSpecJSON
			if err := json.Unmarshal(asset.Spec, &ds); err != nil {
				return in, err
			}
			in.Digest, in.Kind, in.FileName = asset.Digest, ds.Kind, ds.FileName
			in.Source = "azureml:" + asset.Name + ":" + asset.Version
		case d.LocalPath != "":
			u, err := a.upload(ctx, c, ws, d.LocalPath, "input "+name, uploads)
			if err != nil {
				return in, err
			}
			in.Digest, in.Kind, in.FileName, in.Source = u.digest, u.kind, filepath.Base(d.LocalPath), d.LocalPath
		case d.Datastore != nil:
			df, err := datastoreContent(ctx, c, ws, d.Datastore)
			if err != nil {
				return in, b.Pos.Errorf("input %s: %s", name, wharf.ErrorMessage(err))
			}
			in.Digest, in.Kind, in.FileName, in.Source = df.Digest, df.Kind, filepath.Base(df.Path), d.Datastore.String()
		default:
			return in, b.Pos.Errorf("input %s: %s cannot be read by this server; use a data asset, an azureml://datastores/ path or a local path", name, d.String())
		}
		return in, nil
	case b.Kind == jobspec.BindStepInput:
		return in, b.Pos.Errorf("input %s is bound to an input of step %s that has no value of its own", name, b.Step)
	}
	return in, b.Pos.Errorf("input %s has no value", name)
}

// componentHash identifies what a component computes: its command,
// inputs, outputs and settings, but not where its file sits or on which
// line each key is (a checkout in another folder must hit the same cached
// steps), nor its name and description. Code and environment have their
// own digests in the step's reuse key.
func componentHash(comp *jobspec.ComponentSpec) (string, error) {
	c := comp.Clone()
	c.Code, c.CodeRef, c.Environment = "", nil, jobspec.EnvironmentRef{}
	c.Name, c.Version, c.DisplayName, c.Description, c.Tags = "", "", "", "", nil
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", err
	}
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
