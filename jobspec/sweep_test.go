package jobspec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/sweep"
)

const trainComponent = `
name: train_sweep
version: "1"
type: command
inputs:
  data: {type: uri_folder}
  lr: {type: number}
  depth: {type: integer, default: 3}
outputs:
  model: {type: uri_folder}
code: .
environment: azureml:env:1
command: python train.py --data ${{inputs.data}} --lr ${{inputs.lr}} --depth ${{inputs.depth}} --model ${{outputs.model}}
`

func TestSweepInlineTrialEveryDistribution(t *testing.T) {
	dir := writeFiles(t, map[string]string{"sweep.yml": `
type: sweep
name: tune
trial:
  code: .
  command: >-
    python train.py --lr ${{search_space.lr}} --c ${{ search_space.c }} --rows ${{inputs.rows}}
    --o ${{outputs.model}}
  environment: azureml:env:1
inputs:
  rows: 100
outputs:
  model: {type: uri_folder}
search_space:
  c: {type: choice, values: [0.01, 1, "relu", true]}
  n: {type: randint, upper: 5}
  lr: {type: loguniform, min_value: -6, max_value: -1}
  u: {type: uniform, min_value: 0, max_value: 1}
  qu: {type: quniform, min_value: 10, max_value: 100, q: 10}
  qlu: {type: qloguniform, min_value: 0, max_value: 4, q: 1}
  nm: {type: normal, mu: 0, sigma: 1}
  ln: {type: lognormal, mu: 0, sigma: 1}
  qn: {type: qnormal, mu: 10, sigma: 2, q: 1}
  qln: {type: qlognormal, mu: 1, sigma: 1, q: 0.5}
sampling_algorithm: {type: random, seed: 7, rule: sobol}
objective: {goal: Maximize, primary_metric: accuracy}
limits: {max_total_trials: 20, max_concurrent_trials: 4, timeout: 3600, trial_timeout: 600}
early_termination: {type: bandit, slack_factor: 0.1, evaluation_interval: 2, delay_evaluation: 3}
`})
	plan, err := LoadJob(filepath.Join(dir, "sweep.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kind != KindSweep || len(plan.Steps) != 1 {
		t.Fatalf("plan %v with %d steps", plan.Kind, len(plan.Steps))
	}
	st := plan.Steps[0]
	cfg := st.Sweep
	if cfg == nil {
		t.Fatal("the trial step has no sweep settings")
	}
	if got := strings.Join(cfg.Names(), ","); got != "c,ln,lr,n,nm,qln,qlu,qn,qu,u" {
		t.Fatalf("search space %s", got)
	}
	if cfg.Sampling != (sweep.Sampling{Type: sweep.Random, Seed: 7, Rule: sweep.RuleSobol}) {
		t.Fatalf("sampling %+v", cfg.Sampling)
	}
	if cfg.Objective != (sweep.Objective{Goal: sweep.Maximize, PrimaryMetric: "accuracy"}) {
		t.Fatalf("objective %+v", cfg.Objective)
	}
	if cfg.Limits != (sweep.Limits{MaxTotalTrials: 20, MaxConcurrentTrials: 4, TimeoutSeconds: 3600, TrialTimeoutSeconds: 600}) {
		t.Fatalf("limits %+v", cfg.Limits)
	}
	if p := cfg.EarlyTermination; p == nil || p.Type != sweep.Bandit || p.SlackFactor != 0.1 || p.EvaluationInterval != 2 || p.DelayEvaluation != 3 {
		t.Fatalf("early termination %+v", p)
	}
	if c := cfg.Param("c"); len(c.Values) != 4 || c.Values[0].Text != "0.01" || c.Values[1] != sweep.IntLiteral(1) ||
		c.Values[2] != sweep.StringLiteral("relu") || c.Values[3].Text != "True" {
		t.Fatalf("choice values %+v", c.Values)
	}
	if want := "python train.py --lr ${{inputs.lr}} --c ${{inputs.c}} --rows ${{inputs.rows}} --o ${{outputs.model}}"; st.Component.Command != want {
		t.Fatalf("command %q, want %q", st.Component.Command, want)
	}
	if _, ok := st.Inputs["lr"]; !ok || st.Timeout.Seconds() != 600 {
		t.Fatalf("trial inputs %v, timeout %v", st.Inputs, st.Timeout)
	}
	if _, ok := plan.Inputs["rows"]; !ok || len(plan.Inputs) != 1 {
		t.Fatalf("sweep inputs %v, want rows only", plan.Inputs)
	}
}

func TestSweepComponentTrialForms(t *testing.T) {
	for _, trial := range []string{"./train.yml", "file:train.yml", "train.yml", "azureml:train_sweep:1", "azureml:train_sweep@latest"} {
		t.Run(trial, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"train.yml": trainComponent, "sweep.yml": `
type: sweep
trial: ` + trial + `
inputs:
  data: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/d/}
search_space:
  lr: {type: uniform, min_value: 0.01, max_value: 0.1}
  depth: {type: choice, values: [2, 4]}
sampling_algorithm: bayesian
objective: {goal: minimize, primary_metric: loss}
`})
			r := testResolver()
			spec, err := LoadComponent(filepath.Join(dir, "train.yml"), nil, r)
			if err != nil {
				t.Fatal(err)
			}
			r.AddComponent(spec)
			plan, err := LoadJob(filepath.Join(dir, "sweep.yml"), nil, r)
			if err != nil {
				t.Fatal(err)
			}
			st := plan.Steps[0]
			if st.Sweep.Sampling.Type != sweep.Bayesian || st.Sweep.Limits.MaxTotalTrials != DefaultMaxTotalTrials ||
				st.Sweep.Limits.MaxConcurrentTrials != DefaultMaxTotalTrials {
				t.Fatalf("sweep %+v", st.Sweep)
			}
			if st.Component.Name != "train_sweep" || st.Inputs["lr"].Literal == nil || st.Inputs["depth"].Literal == nil || st.Inputs["data"].Data == nil {
				t.Fatalf("trial %s inputs %+v", st.Component.Name, st.Inputs)
			}
			if _, ok := st.Outputs["model"]; !ok {
				t.Fatalf("trial outputs %v", st.Outputs)
			}
		})
	}
}

func TestSweepAsPipelineStep(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.yml": trainComponent, "pipe.yml": `
type: pipeline
inputs:
  data: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/d/}
jobs:
  sweep_step:
    type: sweep
    trial: ./train.yml
    inputs:
      data: ${{parent.inputs.data}}
    outputs:
      model:
    search_space:
      lr: {type: choice, values: [0.1, 0.01]}
    sampling_algorithm: grid
    objective: {goal: maximize, primary_metric: acc}
    limits: {max_total_trials: 2}
    early_termination: {type: median_stopping, evaluation_interval: 1}
  use:
    command: cat ${{inputs.m}}
    environment: azureml:env:1
    inputs:
      m: ${{parent.jobs.sweep_step.outputs.model}}
`})
	plan, err := LoadJob(filepath.Join(dir, "pipe.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	sw, use := plan.Step("sweep_step"), plan.Step("use")
	if sw == nil || sw.Sweep == nil || sw.Sweep.Sampling.Type != sweep.Grid || sw.Sweep.EarlyTermination.Type != sweep.MedianStopping {
		t.Fatalf("sweep step %+v", sw)
	}
	if sw.Inputs["data"].Kind != BindParentInput || use == nil || strings.Join(use.Deps, ",") != "sweep_step" {
		t.Fatalf("bindings: sweep data %+v, use deps %v", sw.Inputs["data"], use.Deps)
	}
}

func TestSweepRefusals(t *testing.T) {
	base := func(over string) string {
		return `type: sweep
trial:
  command: python t.py ${{search_space.lr}}
  environment: azureml:env:1
` + over
	}
	cases := []struct {
		name, body string
		want       []string // "line: field: message" fragments
	}{
		{"missing parts", base(""), []string{
			`:1:1: field search_space: search_space (the hyperparameters and their distributions) is required`,
			`:1:1: field sampling_algorithm: sampling_algorithm (random, grid or bayesian) is required`,
			`:1:1: field objective: objective (goal and primary_metric) is required`,
			`:3:12: field trial.command: ${{search_space.lr}}: the search space has no parameter "lr" (parameters: none)`,
		}},
		{"grid over uniform", base(`search_space:
  lr: {type: uniform, min_value: 0, max_value: 1}
sampling_algorithm: grid
objective: {goal: maximize, primary_metric: acc}
`), []string{`:6:14: field search_space.lr.type: grid sampling needs every hyperparameter to be a choice; lr is uniform`}},
		{"bayesian over normal, with early termination", base(`search_space:
  lr: {type: normal, mu: 0, sigma: 1}
sampling_algorithm: {type: bayesian}
objective: {goal: maximize, primary_metric: acc}
early_termination: {type: bandit, slack_amount: 0.1}
`), []string{
			`:6:14: field search_space.lr.type: bayesian sampling supports choice, uniform and quniform only; lr is normal`,
			`:9:20: field early_termination: bayesian sampling does not support early termination`,
		}},
		{"bad distributions", base(`search_space:
  lr: {type: uniform, min_value: 1, max_value: 0}
  q: {type: quniform, min_value: 0, max_value: 1}
  r: {type: randint}
  c: {type: choice, values: []}
  g: {type: gaussian}
  u: {type: uniform, min_value: 0, max_value: 1, q: 2}
sampling_algorithm: random
objective: {goal: maximize, primary_metric: acc}
`), []string{
			`:6:48: field search_space.lr.max_value: max_value (0) must be more than min_value (1)`,
			`:7:6: field search_space.q.q: q is required for quniform`,
			`:8:6: field search_space.r.upper: upper is required for randint`,
			`:9:6: field search_space.c.values: values is required for choice`,
			`:10:13: field search_space.g.type: unknown distribution "gaussian"`,
			`:11:53: field search_space.u.q: q does not apply to uniform`,
		}},
		{"sampling, objective, limits and policy fields", base(`search_space:
  lr: {type: choice, values: [1, 2]}
sampling_algorithm: {type: random, rule: halton}
objective: {goal: best, primary_metric: acc}
limits: {max_total_trials: 0}
early_termination: {type: truncation_selection, slack_factor: 0.2}
`), []string{
			`:7:42: field sampling_algorithm.rule: rule must be random or sobol, got "halton"`,
			`:8:19: field objective.goal: goal must be maximize or minimize, got "best"`,
			`:9:28: field limits.max_total_trials: max_total_trials must be 1 or more, got 0`,
			`:10:63: field early_termination.slack_factor: slack_factor applies to the bandit policy only`,
			`:10:20: field early_termination.truncation_percentage: the truncation_selection policy needs truncation_percentage`,
		}},
		{"unknown search space reference, unknown sampling and policy", `type: sweep
trial:
  command: python t.py ${{search_space.rate}}
  environment: azureml:env:1
search_space:
  lr: {type: choice, values: [1, 2]}
sampling_algorithm: annealing
objective: {goal: maximize, primary_metric: acc}
early_termination: {type: hyperband}
`, []string{
			`:7:21: field sampling_algorithm.type: unknown sampling algorithm "annealing"`,
			`:9:27: field early_termination.type: unknown early termination policy "hyperband"`,
			`:3:12: field trial.command: ${{search_space.rate}}: the search space has no parameter "rate" (parameters: lr)`,
		}},
		{"bandit without slack", base(`search_space:
  lr: {type: choice, values: [1, 2]}
sampling_algorithm: random
objective: {goal: maximize, primary_metric: acc}
early_termination: {type: bandit, evaluation_interval: -1}
`), []string{
			`:9:56: field early_termination.evaluation_interval: evaluation_interval must be 0 or more, got -1`,
			`:9:20: field early_termination.slack_factor: the bandit policy needs one of slack_factor or slack_amount`,
		}},
		{"trial without command or environment", `type: sweep
trial:
  code: .
search_space:
  lr: {type: choice, values: [1, 2]}
sampling_algorithm: random
objective: {goal: maximize, primary_metric: acc}
`, []string{
			`:3:3: field trial.command: command is required`,
			`:3:3: field trial.environment: environment is required`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"sweep.yml": tc.body})
			file := filepath.Join(dir, "sweep.yml")
			_, err := LoadJob(file, nil, testResolver())
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, file+w[:strings.Index(w, " field")]) && strings.Contains(g, w[strings.Index(w, " field"):]) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error %q in:\n%s", w, err)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(got), len(tc.want), err)
			}
		})
	}
}

func TestSweepComponentTrialParameterMustBeAnInput(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.yml": trainComponent, "sweep.yml": `type: sweep
trial: ./train.yml
inputs:
  data: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/d/}
search_space:
  momentum: {type: uniform, min_value: 0, max_value: 1}
  depth: {type: choice, values: ["deep", "shallow"]}
  lr: {type: uniform, min_value: 0, max_value: 1}
sampling_algorithm: random
objective: {goal: maximize, primary_metric: acc}
`})
	file := filepath.Join(dir, "sweep.yml")
	_, err := LoadJob(file, nil, testResolver())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		file + `:6:13: field search_space.momentum: component train_sweep:1 has no input "momentum"`,
		file + `:7:10: field search_space.depth: input "depth":`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%s", want, err)
		}
	}
}

func TestSweepDocumentInlinesTheTrialComponent(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.yml": trainComponent, "train.py": "print(1)\n", "sweep.yml": `type: sweep
trial: ./train.yml
inputs:
  data: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/d/}
search_space:
  lr: {type: uniform, min_value: 0, max_value: 1}
sampling_algorithm: random
objective: {goal: maximize, primary_metric: acc}
`})
	doc, err := JobDocument(filepath.Join(dir, "sweep.yml"), nil, &recordingUploader{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ParseJobDocument(doc.JSON, testResolver())
	if err != nil {
		t.Fatalf("the server cannot read the document: %v\n%s", err, doc.JSON)
	}
	if plan.Kind != KindSweep || plan.Steps[0].Component.Name != "train_sweep" || plan.Steps[0].Component.CodeURI == nil {
		t.Fatalf("document %s read as %+v", doc.JSON, plan.Steps[0].Component)
	}
}
