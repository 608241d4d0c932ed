package jobspec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf/yamlfile"
)

// testResolver knows the assets the fixtures reference.
func testResolver() *MapResolver {
	r := &MapResolver{}
	r.AddAsset(AssetData, "taxi-data", "1")
	r.AddAsset(AssetData, "taxi-data", "2")
	r.AddAsset(AssetEnvironment, "taxi-train-env", "1")
	r.AddAsset(AssetEnvironment, "env", "1")
	r.AddAsset(AssetEnvironment, "sklearn-env", "2")
	r.AddComponent(&ComponentSpec{
		Name: "score_model", Version: "1", IsDeterministic: true, Command: "python score.py ${{inputs.model}}",
		Environment: EnvironmentRef{Ref: &AssetRef{Form: RefShort, Name: "env", Version: "1"}},
		Inputs: map[string]*InputSpec{
			"model":     {Name: "model", Type: TypeMLflowModel},
			"threshold": {Name: "threshold", Type: TypeNumber},
		},
		Outputs: map[string]*OutputSpec{"scores": {Name: "scores", Type: TypeURIFolder}},
	})
	return r
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func stepNames(p *Plan) []string {
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Name)
	}
	return names
}

func TestTaxiPipeline(t *testing.T) {
	file := "testdata/taxi/mlops/azureml/train/pipeline.yml"
	plan, err := LoadJob(file, nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kind != KindPipeline || plan.ExperimentName != "taxi-fare-training" || plan.DisplayName != "taxi-fare-training" {
		t.Errorf("plan header = %v %q %q", plan.Kind, plan.ExperimentName, plan.DisplayName)
	}
	want := Settings{DefaultCompute: "cpu-cluster", DefaultDatastore: "workspaceblobstore", ContinueOnStepFailure: false}
	if plan.Settings != want {
		t.Errorf("settings = %+v, want %+v", plan.Settings, want)
	}
	if got := stepNames(plan); !reflect.DeepEqual(got, []string{"prep_data", "train_model", "evaluate_model", "register_model"}) {
		t.Errorf("step order = %v", got)
	}
	raw := plan.Inputs["raw_data"]
	if raw.Type != TypeURIFile || raw.Data == nil || raw.Data.Asset == nil || !raw.Data.Asset.IsLatest() || raw.Data.Asset.Name != "taxi-data" {
		t.Errorf("raw_data = %+v", raw)
	}
	if v := plan.Inputs["enable_monitoring"].Literal; v == nil || v.Type != TypeString || v.Raw != "false" {
		t.Errorf("enable_monitoring = %+v", v)
	}
	if o := plan.Outputs["train_data"]; o == nil || o.Type != TypeURIFolder || o.Mode != ModeRWMount {
		t.Errorf("train_data output = %+v", o)
	}

	prep := plan.Step("prep_data")
	if prep.Component.Code != abs(t, "testdata/taxi/data-science/src") {
		t.Errorf("code = %q", prep.Component.Code)
	}
	if prep.Component.Name != "" || !prep.Component.IsDeterministic {
		t.Errorf("inline component = %q deterministic=%v", prep.Component.Name, prep.Component.IsDeterministic)
	}
	if env := prep.Component.Environment.Ref; env == nil || env.Name != "taxi-train-env" || env.Label != "latest" {
		t.Errorf("environment = %+v", env)
	}
	if prep.Compute != "cpu-cluster" || prep.Pos.Line != 28 || prep.Pos.Field != "jobs.prep_data" {
		t.Errorf("prep compute=%q pos=%+v", prep.Compute, prep.Pos)
	}
	mon := prep.Inputs["enable_monitoring"]
	if mon.Kind != BindParentInput || mon.ParentInput != "enable_monitoring" || mon.Type != TypeString {
		t.Errorf("enable_monitoring binding = %+v", mon)
	}
	if text, _ := mon.Text(); text != "false" {
		t.Errorf("enable_monitoring text = %q", text)
	}
	rd := prep.Inputs["raw_data"]
	if rd.Kind != BindParentInput || rd.Type != TypeURIFile || rd.Mode != ModeROMount || rd.Data == nil || rd.Data.Asset.Name != "taxi-data" {
		t.Errorf("raw_data binding = %+v", rd)
	}
	if o := prep.Outputs["train_data"]; o.ParentOutput != "train_data" || o.Type != TypeURIFolder {
		t.Errorf("prep output = %+v", o)
	}

	reg := plan.Step("register_model")
	if !reflect.DeepEqual(reg.Deps, []string{"evaluate_model", "train_model"}) {
		t.Errorf("register deps = %v", reg.Deps)
	}
	mp := reg.Inputs["model_path"]
	if mp.Kind != BindStepOutput || mp.Step != "train_model" || mp.Port != "model_output" {
		t.Errorf("model_path binding = %+v", mp)
	}
	if mn := reg.Inputs["model_name"]; mn.Kind != BindLiteral || mn.Literal.Raw != "taxi-model" {
		t.Errorf("model_name binding = %+v", mn)
	}

	inputs := map[string]string{}
	for name, b := range prep.Inputs {
		if text, ok := b.Text(); ok {
			inputs[name] = text
		} else {
			inputs[name] = "/mnt/" + name
		}
	}
	outputs := map[string]string{"train_data": "/out/train", "val_data": "/out/val", "test_data": "/out/test"}
	cmd, err := RenderCommand(prep.Component.Command, inputs, outputs)
	if err != nil {
		t.Fatal(err)
	}
	wantCmd := "python prep.py --raw_data /mnt/raw_data --train_data /out/train --val_data /out/val --test_data /out/test --enable_monitoring false --table_name taximonitoring"
	if cmd != wantCmd {
		t.Errorf("command:\n got %s\nwant %s", cmd, wantCmd)
	}
}

func TestTaxiPipelineSets(t *testing.T) {
	file := "testdata/taxi/mlops/azureml/train/pipeline.yml"
	sets := []string{"inputs.enable_monitoring=true", "settings.force_rerun=true", "experiment_name=dev_taxi_fare_train_main", "display_name=dev_run_42"}
	plan, err := LoadJob(file, sets, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Settings.ForceRerun || plan.ExperimentName != "dev_taxi_fare_train_main" || plan.DisplayName != "dev_run_42" {
		t.Errorf("plan = %+v", plan)
	}
	// The override replaces a string, so it stays the string the user typed.
	if text, _ := plan.Step("prep_data").Inputs["enable_monitoring"].Text(); text != "true" {
		t.Errorf("enable_monitoring = %q, want true", text)
	}
}

func TestComponentPipeline(t *testing.T) {
	plan, err := LoadJob("testdata/pipelines/components.yml", []string{"jobs.train.inputs.alpha=0.75"}, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if plan.ExperimentName != "pipelines" {
		t.Errorf("default experiment name = %q, want the file's folder name", plan.ExperimentName)
	}
	if !plan.Settings.ForceRerun || !plan.Settings.ContinueOnStepFailure {
		t.Errorf("settings = %+v", plan.Settings)
	}
	train := plan.Step("train")
	c := train.Component
	if c.Name != "train_classifier" || c.Version != "3" || c.IsDeterministic || train.ComponentRef != "file:../components/train.yml" {
		t.Errorf("component = %s:%s deterministic=%v ref=%q", c.Name, c.Version, c.IsDeterministic, train.ComponentRef)
	}
	if c.Code != abs(t, "testdata/components/src") {
		t.Errorf("component code = %q", c.Code)
	}
	if train.Compute != "gpu-cluster" || train.Timeout != time.Hour || train.Retry != (RetrySettings{MaxRetries: 2, Timeout: 10 * time.Minute}) {
		t.Errorf("run settings compute=%q timeout=%v retry=%+v", train.Compute, train.Timeout, train.Retry)
	}
	alpha := train.Inputs["alpha"]
	if alpha.Kind != BindLiteral || alpha.Literal.Type != TypeNumber || alpha.Literal.Float != 0.75 {
		t.Errorf("alpha = %+v (want the --set value 0.75)", alpha)
	}
	if epochs := train.Inputs["epochs"]; !epochs.FromDefault || epochs.Literal.Int != 10 {
		t.Errorf("epochs = %+v", epochs)
	}
	if _, ok := train.Inputs["verbose"]; ok {
		t.Error("unset optional input verbose is bound")
	}
	if d := train.Inputs["data"]; d.Data == nil || d.Data.LocalPath != abs(t, "testdata/inputs/folder") {
		t.Errorf("data = %+v", d)
	}
	if o := train.Outputs["model"]; o.Type != TypeMLflowModel || o.ParentOutput != "final_model" {
		t.Errorf("model output = %+v", o)
	}
	score := plan.Step("score")
	if score.ComponentRef != "azureml:score_model@latest" || !reflect.DeepEqual(score.Deps, []string{"train"}) || score.Compute != "cpu-cluster" {
		t.Errorf("score = ref %q deps %v compute %q", score.ComponentRef, score.Deps, score.Compute)
	}
	if score.EnvironmentVariables["LOG_LEVEL"] != "debug" {
		t.Errorf("environment variables = %v", score.EnvironmentVariables)
	}

	text := map[string]string{}
	for name, b := range train.Inputs {
		if v, ok := b.Text(); ok {
			text[name] = v
		} else {
			text[name] = "/data"
		}
	}
	cmd, err := RenderCommand(c.Command, text, map[string]string{"model": "/out/model"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "python train.py --data /data --alpha 0.75 --epochs 10 --solver saga  --model /out/model"; cmd != want {
		t.Errorf("command:\n got %q\nwant %q", cmd, want)
	}
}

func TestCommandJob(t *testing.T) {
	plan, err := LoadJob("testdata/jobs/command.yml", nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kind != KindCommand || len(plan.Steps) != 1 || plan.ExperimentName != "jobs" {
		t.Fatalf("plan kind=%v steps=%d experiment=%q", plan.Kind, len(plan.Steps), plan.ExperimentName)
	}
	st := plan.Steps[0]
	if st.Name != "main" || st.Compute != "cpu-cluster" || st.Timeout != 2*time.Minute || st.EnvironmentVariables["SEED"] != "42" {
		t.Errorf("step = %+v", st)
	}
	env := st.Component.Environment.Inline
	if env == nil || env.Image != "python:3.11-slim" || env.PythonVersion() != "3.11" || !reflect.DeepEqual(env.PipRequirements(), []string{"numpy==2.0.1"}) {
		t.Fatalf("inline environment = %+v", env)
	}
	flag := st.Inputs["flag"]
	if text, _ := flag.Text(); text != "True" || flag.Type != TypeBoolean {
		t.Errorf("flag = %+v", flag)
	}
	data := plan.Inputs["data"]
	if data.Data == nil || data.Data.LocalPath != abs(t, "testdata/taxi/data/taxi-data.csv") || data.Data.Mode != ModeDownload || data.Type != TypeURIFile {
		t.Errorf("data input = %+v", data.Data)
	}
	if o := plan.Outputs["out"]; o == nil || o.Type != TypeURIFolder || o.Mode != ModeRWMount {
		t.Errorf("output = %+v", o)
	}
}

func TestLoadAssets(t *testing.T) {
	dir := "testdata/taxi/mlops/azureml/train/"
	d, err := LoadData(dir+"data.yml", []string{"name=taxi-data"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "taxi-data" || d.Type != TypeURIFile || d.Source.LocalPath != abs(t, "testdata/taxi/data/taxi-data.csv") {
		t.Errorf("data = %+v", d)
	}

	env, err := LoadEnvironment(dir+"train-env.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if env.Name != "taxi-train-env" || env.OSType != "linux" || env.CondaFile != abs(t, "testdata/taxi/data-science/environment/train-conda.yml") {
		t.Errorf("environment = %+v", env)
	}
	if env.PythonVersion() != "3.8" {
		t.Errorf("python = %q", env.PythonVersion())
	}
	wantPip := []string{"azureml-mlflow==1.38.0", "mlflow== 1.24.0", "scikit-learn==0.24.1", "pandas==1.2.1"}
	if !reflect.DeepEqual(env.PipRequirements(), wantPip) || !reflect.DeepEqual(env.Conda.Dependencies, []string{"python=3.8", "pip=21.2.4"}) {
		t.Errorf("conda = %+v", env.Conda)
	}
	h1, err := env.Hash()
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := LoadEnvironment(dir+"train-env.yml", []string{"name=other", "description=changed"})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := LoadEnvironment(dir+"train-env.yml", []string{"image=mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"})
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := renamed.Hash()
	h3, _ := changed.Hash()
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Errorf("hashes: same build %s vs %s, other image %s", h1, h2, h3)
	}

	c, err := LoadComponent("testdata/components/train.yml", nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	alpha := c.Inputs["alpha"]
	if alpha.Type != TypeNumber || *alpha.Min != 0 || *alpha.Max != 1 || !reflect.DeepEqual(c.Inputs["solver"].Enum, []string{"lbfgs", "saga"}) {
		t.Errorf("inputs = %+v %+v", alpha, c.Inputs["solver"])
	}
	if c.Environment.Ref.String() != "azureml:sklearn-env:2" || c.Outputs["model"].Type != TypeMLflowModel {
		t.Errorf("component = %+v", c)
	}
}

// errorCase is one validation failure with the exact message lines it must
// produce.
type errorCase struct {
	name string
	file string
	sets []string
	want []string
}

func TestValidationErrors(t *testing.T) {
	cases := []errorCase{
		{"unknown key", "testdata/errors/unknown_key.yml", nil, []string{
			`testdata/errors/unknown_key.yml:4:5: field jobs.train.comand: unknown field "comand" (allowed: `,
		}},
		{"unknown references", "testdata/errors/unknown_refs.yml", nil, []string{
			`testdata/errors/unknown_refs.yml:5:11: field inputs.raw.path: unknown data asset reference azureml:no-such-data:1: no such data asset is registered`,
			`testdata/errors/unknown_refs.yml:8:16: field jobs.train.component: unknown component reference azureml:no_such_component:4: no such component is registered`,
			`testdata/errors/unknown_refs.yml:11:18: field jobs.prep.environment: unknown environment reference azureml:no-such-env@latest: no such environment is registered`,
		}},
		{"cycle", "testdata/errors/cycle.yml", nil, []string{
			`testdata/errors/cycle.yml:7:10: field jobs.a.inputs.x: dependency cycle between steps: b -> c -> a -> b`,
		}},
		{"missing step, output, parent input and output", "testdata/errors/missing_bindings.yml", nil, []string{
			`testdata/errors/missing_bindings.yml:11:12: field jobs.first.outputs.out: ${{parent.outputs.reslt}}: the pipeline has no output "reslt" (declared: result)`,
			`testdata/errors/missing_bindings.yml:16:10: field jobs.second.inputs.a: ${{parent.jobs.frist.outputs.out}}: there is no step "frist" in this pipeline (steps: first, second)`,
			`testdata/errors/missing_bindings.yml:17:10: field jobs.second.inputs.b: ${{parent.jobs.first.outputs.output}}: step "first" has no output "output" (outputs: out)`,
			`testdata/errors/missing_bindings.yml:18:10: field jobs.second.inputs.c: ${{parent.inputs.rat}}: the pipeline has no input "rat" (inputs: rate)`,
		}},
		{"type mismatches, range, enum, unset", "testdata/errors/types.yml", nil, []string{
			`testdata/errors/types.yml:11:14: field jobs.as_string.inputs.alpha: input "alpha": type mismatch: a string literal ("0.5") cannot be bound to number input; write it unquoted`,
			`testdata/errors/types.yml:15:13: field jobs.literal_to_data.inputs.data: type mismatch: a string literal cannot be bound to uri_folder input "data"; write {type: uri_folder, path: ...}`,
			`testdata/errors/types.yml:21:14: field jobs.data_to_literal.inputs.alpha: type mismatch: pipeline input "folder" cannot be bound to number input "alpha"`,
			`testdata/errors/types.yml:26:14: field jobs.out_of_range.inputs.alpha: input "alpha": value 1.5 is above the maximum 1`,
			`testdata/errors/types.yml:32:15: field jobs.not_in_enum.inputs.solver: input "solver": value "adam" is not one of "lbfgs", "saga"`,
			`testdata/errors/types.yml:36:7: field jobs.unset.inputs.data: required input "data" of component train_classifier:3 is not set (no binding, no default, and not optional)`,
		}},
		{"--set values", "testdata/errors/set_target.yml", []string{"jobs.train.inputs.alpha=abc", "jobs.train.inptus.x=1"}, []string{
			`testdata/errors/set_target.yml: field jobs.train.inptus: unknown field "inptus" (allowed: `,
			`testdata/errors/set_target.yml: field jobs.train.inputs.alpha: input "alpha": type mismatch: a string literal ("abc") cannot be bound to number input; write it unquoted (from --set jobs.train.inputs.alpha=abc)`,
		}},
		{"command placeholders and local compute", "testdata/errors/command_refs.yml", nil, []string{
			`testdata/errors/command_refs.yml:6:14: field jobs.train.command: command uses ${{inputs.lr}} but no input "lr" is declared`,
			`testdata/errors/command_refs.yml:6:14: field jobs.train.command: command uses ${{outputs.model}} but no output "model" is declared`,
			`testdata/errors/command_refs.yml:8:14: field jobs.train.compute: compute local is not allowed inside a pipeline`,
		}},
		{"resources and distribution", "testdata/errors/resources.yml", nil, []string{
			`testdata/errors/resources.yml:8:22: field resources.gpus_per_instance: gpus_per_instance must not be negative, got -1`,
			`testdata/errors/resources.yml:10:3: field distribution.type: distribution type must be mpi, pytorch, tensorflow or ray, got "horovod"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadJob(tc.file, tc.sets, testResolver())
			checkErrors(t, err, tc.want)
		})
	}
}

// checkErrors asserts err holds exactly the wanted lines (each a prefix of
// the corresponding message) and is a yamlfile error.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var list *yamlfile.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want *yamlfile.ErrorList: %v", err, err)
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestComponentErrors(t *testing.T) {
	_, err := LoadComponent("testdata/errors/reserved.yml", nil, testResolver())
	checkErrors(t, err, []string{
		`testdata/errors/reserved.yml:6:3: field inputs.home: "home" is a reserved name`,
		`testdata/errors/reserved.yml:10:10: field inputs.size.min: min applies to integer and number inputs only`,
		`testdata/errors/reserved.yml:3:10: field command: command uses ${{inputs.home}} but no input "home" is declared`,
	})
}

// TestInlineEnvironmentMayBeNamed: Azure accepts a name and version on an
// inline environment; they label it, and a bad name is still refused.
func TestInlineEnvironmentMayBeNamed(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "job.yml")
	body := "command: echo hi\nenvironment:\n  name: sklearn-1.5\n  version: '3'\n  image: python:3.11\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := LoadJob(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if env := plan.Steps[0].Component.Environment.Inline; env == nil || env.Name != "sklearn-1.5" || env.Image != "python:3.11" {
		t.Fatalf("inline environment: %+v", env)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(body, "sklearn-1.5", "-bad", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadJob(file, nil, nil)
	checkErrors(t, err, []string{file + `:3:3: field environment.name: invalid name "-bad" (letters, digits, '-', '_' and '.', starting with a letter or digit)`})
}

// TestBareComponentPath: a pipeline step names its component file by a
// bare relative path, as Azure's samples do; a path where an asset
// reference is expected gets an error that suggests nothing invalid.
func TestBareComponentPath(t *testing.T) {
	dir := t.TempDir()
	comp := "name: train\ncommand: echo ${{inputs.x}}\nenvironment:\n  image: python:3.11\ninputs:\n  x: {type: string}\n"
	for name, text := range map[string]string{
		"components/train.yml": comp,
		"pipelines/p.yml": "type: pipeline\nsettings: {default_compute: azureml:cpu}\njobs:\n" +
			"  a:\n    component: ../components/train.yml\n    inputs: {x: one}\n" +
			"  b:\n    component: ./../components/train.yml\n    inputs: {x: two}\n" +
			"  c:\n    component: file:../components/train.yml\n    inputs: {x: three}\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := LoadJob(filepath.Join(dir, "pipelines/p.yml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range plan.Steps {
		if st.Component == nil || st.Component.Name != "train" {
			t.Errorf("step %s: component %+v", st.Name, st.Component)
		}
	}
	_, err = ParseAssetRef("azureml:./train.yml")
	if err == nil || strings.Contains(err.Error(), "write azureml:./") || !strings.Contains(err.Error(), "is a path") {
		t.Errorf("a path written as a reference: %v", err)
	}
}

func TestRenderCommand(t *testing.T) {
	cmd := "python run.py --in ${{ inputs.data }} $[[--lr ${{inputs.lr}} --wd ${{inputs.wd}}]] $[[--tag ${{inputs.tag}}]] --out ${{outputs.model}}"
	outs := map[string]string{"model": "/o"}
	cases := []struct {
		inputs map[string]string
		want   string
	}{
		{map[string]string{"data": "/d"}, "python run.py --in /d   --out /o"},
		{map[string]string{"data": "/d", "lr": "0.1"}, "python run.py --in /d   --out /o"},
		{map[string]string{"data": "/d", "lr": "0.1", "wd": "0", "tag": "x y"}, "python run.py --in /d --lr 0.1 --wd 0 --tag x y --out /o"},
	}
	for _, tc := range cases {
		got, err := RenderCommand(cmd, tc.inputs, outs)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("inputs %v:\n got %q\nwant %q", tc.inputs, got, tc.want)
		}
	}
	if _, err := RenderCommand(cmd, map[string]string{}, outs); err == nil || !strings.Contains(err.Error(), "${{inputs.data}}") {
		t.Errorf("unset required input: err = %v", err)
	}
	if _, err := RenderCommand("a $[[ ${{inputs.x}}", nil, nil); err == nil {
		t.Error("unclosed fragment accepted")
	}
	if got, err := RenderCommand("if [[ -f x ]]; then echo ${{inputs.x}}; fi", map[string]string{"x": "1"}, nil); err != nil || got != "if [[ -f x ]]; then echo 1; fi" {
		t.Errorf("shell test: %q, %v", got, err)
	}
	if _, err := RenderCommand("echo ${{name}}", nil, nil); err == nil {
		t.Error("unknown expression accepted")
	}
}

func TestLiteralText(t *testing.T) {
	cases := map[string]Value{
		"True":  {Type: TypeBoolean, Bool: true},
		"False": {Type: TypeBoolean},
		"10":    {Type: TypeInteger, Raw: "010", Int: 10},
		"0.50":  {Type: TypeNumber, Raw: "0.50", Float: 0.5},
		"2":     {Type: TypeNumber, Float: 2},
		"abc":   StringValue("abc"),
	}
	for want, v := range cases {
		if got := LiteralText(v); got != want {
			t.Errorf("LiteralText(%+v) = %q, want %q", v, got, want)
		}
	}
}

func TestParseAssetRef(t *testing.T) {
	cases := []struct {
		in   string
		want AssetRef
	}{
		{"azureml:taxi-data:3", AssetRef{Form: RefShort, Name: "taxi-data", Version: "3"}},
		{"azureml:taxi-data@latest", AssetRef{Form: RefShort, Name: "taxi-data", Label: "latest"}},
		{"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest", AssetRef{Form: RefShort, Name: "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", Label: "latest"}},
		{"train_env:7", AssetRef{Form: RefShort, Name: "train_env", Version: "7"}},
		{"azureml:/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/environments/env/versions/2",
			AssetRef{Form: RefARM, Kind: AssetEnvironment, Name: "env", Version: "2", Subscription: "s1", ResourceGroup: "rg", Workspace: "ws"}},
		{"azureml://registries/shared/components/train/versions/1", AssetRef{Form: RefRegistry, Kind: AssetComponent, Name: "train", Version: "1", Registry: "shared"}},
		{"file:./train.yaml", AssetRef{Form: RefFile, Path: "./train.yaml"}},
	}
	for _, tc := range cases {
		got, err := ParseAssetRef(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		tc.want.Raw = tc.in
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "azureml:taxi", "azureml://datastores/x/paths/y", "https://x/y", "azureml:bad name:1", "azureml:a:b:c"} {
		if _, err := ParseAssetRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if n, err := ParseResourceRef("azureml:cpu-cluster"); err != nil || n != "cpu-cluster" {
		t.Errorf("compute ref = %q, %v", n, err)
	}
	if n, err := ParseResourceRef("workspaceblobstore"); err != nil || n != "workspaceblobstore" {
		t.Errorf("datastore ref = %q, %v", n, err)
	}
	u, err := ParseDatastoreURI("azureml://datastores/workspaceblobstore/paths/taxi/**/*.csv")
	if err != nil || u != (DatastoreURI{Datastore: "workspaceblobstore", Path: "taxi/**/*.csv"}) {
		t.Errorf("datastore URI = %+v, %v", u, err)
	}
	u, err = ParseDatastoreURI("azureml://subscriptions/s/resourcegroups/g/workspaces/w/datastores/ds/paths/a/b")
	if err != nil || u != (DatastoreURI{Datastore: "ds", Path: "a/b"}) {
		t.Errorf("long datastore URI = %+v, %v", u, err)
	}
}

func TestMapResolverLatest(t *testing.T) {
	r := testResolver()
	c, ok, err := r.Component(AssetRef{Name: "score_model", Label: "latest"})
	if err != nil || !ok || c.Version != "1" {
		t.Fatalf("latest = %v %v %v", c, ok, err)
	}
	if ok, _ := r.AssetExists(AssetData, AssetRef{Name: "taxi-data", Version: "3"}); ok {
		t.Error("unregistered version found")
	}
	if ok, _ := r.AssetExists(AssetData, AssetRef{Form: RefRegistry, Name: "taxi-data", Version: "1"}); ok {
		t.Error("registry reference found")
	}
}

func TestSchedules(t *testing.T) {
	sc, err := LoadSchedule("testdata/schedules/cron.yml", nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "nightly_taxi_training" || sc.Job == nil || len(sc.Job.Steps) != 4 || sc.JobFile != abs(t, "testdata/taxi/mlops/azureml/train/pipeline.yml") {
		t.Fatalf("schedule = %+v", sc)
	}
	// Friday 10:00 in Los Angeles; the next weekday 09:00 there is Monday.
	got := sc.Trigger.Next(time.Date(2024, 1, 5, 18, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 1, 8, 17, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("cron next = %v, want %v", got, want)
	}
	// Before start_time the first firing is on or after the start.
	got = sc.Trigger.Next(time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 1, 1, 17, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("cron first = %v, want %v", got, want)
	}

	rec, err := LoadSchedule("testdata/schedules/recurrence.yml", nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Job.Kind != KindPipeline || rec.Job.Steps[0].Name != "hello" {
		t.Errorf("inline job = %+v", rec.Job)
	}
	next := rec.Trigger.Next(time.Date(2024, 1, 1, 5, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 1, 1, 16, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("recurrence next = %v, want %v", next, want)
	}
	next = rec.Trigger.Next(next)
	if want := time.Date(2024, 1, 3, 4, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("recurrence after = %v, want %v", next, want)
	}

	monthly := &Trigger{Type: "recurrence", Frequency: "month", Interval: 1, StartTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Pattern: RecurrencePattern{Hours: []int{0}, Minutes: []int{0}, MonthDays: []int{31}}}
	if got := monthly.Next(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("monthly next = %v", got)
	}
	every15 := &Trigger{Type: "recurrence", Frequency: "minute", Interval: 15, StartTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		EndTime: time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)}
	if got := every15.Next(time.Date(2024, 1, 1, 0, 20, 0, 0, time.UTC)); !got.Equal(time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)) {
		t.Errorf("every 15 minutes next = %v", got)
	}
	if got := every15.Next(time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Errorf("past end_time: %v", got)
	}

	_, err = LoadSchedule("testdata/schedules/bad_cron.yml", nil, testResolver())
	checkErrors(t, err, []string{`testdata/schedules/bad_cron.yml:4:15: field trigger.expression: invalid cron expression "61 * * * *"`})
}

func FuzzParseJob(f *testing.F) {
	for _, file := range []string{
		"testdata/taxi/mlops/azureml/train/pipeline.yml", "testdata/pipelines/components.yml",
		"testdata/jobs/command.yml", "testdata/errors/cycle.yml", "testdata/errors/types.yml",
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("type: pipeline\njobs: {a: {component: {inputs: {x: {type: integer, min: a}}}}}"))
	f.Add([]byte("command: ${{inputs.x\ninputs: {x: *a}"))
	r := testResolver()
	file := filepath.Join("testdata", "pipelines", "fuzz.yml")
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := ParseJob(file, data, nil, r)
		if err == nil && plan == nil {
			t.Fatal("no plan and no error")
		}
		if err != nil {
			var ye *yamlfile.Error
			if !errors.As(err, &ye) {
				t.Fatalf("error is %T, not a yamlfile error: %v", err, err)
			}
		}
	})
}

func TestTriggerSurvivesJSON(t *testing.T) {
	for _, tr := range []*Trigger{
		mustTrigger(t, "type: cron\nexpression: \"30 6 * * 1-5\"\ntime_zone: Europe/Paris\n"),
		mustTrigger(t, "type: recurrence\nfrequency: day\ninterval: 2\nschedule:\n  hours: [4]\n  minutes: [15]\nstart_time: \"2026-01-01T00:00:00\"\n"),
	} {
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		var back Trigger
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		from := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		for i := 0; i < 5; i++ {
			want, got := tr.Next(from), back.Next(from)
			if !want.Equal(got) || want.IsZero() {
				t.Fatalf("%s: Next(%v) = %v after a JSON round trip, want %v", b, from, got, want)
			}
			from = want
		}
	}
}

func mustTrigger(t *testing.T, trigger string) *Trigger {
	t.Helper()
	dir := t.TempDir()
	job := "type: pipeline\njobs:\n  a:\n    command: echo\n    environment:\n      image: x\n    compute: azureml:c\n"
	if err := os.WriteFile(filepath.Join(dir, "job.yml"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	indented := "  " + strings.ReplaceAll(strings.TrimRight(trigger, "\n"), "\n", "\n  ")
	src := "name: s\ntrigger:\n" + indented + "\ncreate_job: job.yml\n"
	p := filepath.Join(dir, "schedule.yml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSchedule(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.Trigger
}
