package jobspec

import (
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/sweep"
)

// KindSweep is a sweep job: a trial run again and again with
// hyperparameters drawn from a search space.
const KindSweep JobKind = "sweep"

// A sweep is read as a step whose component is the trial, with one
// literal input per search space parameter: the scheduler gives each trial
// that step with the inputs set to the values drawn for it. An inline
// trial's ${{search_space.x}} is read as ${{inputs.x}}; a component
// trial's inputs named like parameters receive their values.

type rawSweepJob struct {
	rawJobHeader      `yaml:",inline"`
	Compute           *yaml.Node `yaml:"compute"`
	Inputs            *yaml.Node `yaml:"inputs"`
	Outputs           *yaml.Node `yaml:"outputs"`
	Identity          *Identity  `yaml:"identity"`
	QueueSettings     *yaml.Node `yaml:"queue_settings"`
	Trial             *yaml.Node `yaml:"trial"`
	SearchSpace       *yaml.Node `yaml:"search_space"`
	SamplingAlgorithm *yaml.Node `yaml:"sampling_algorithm"`
	Objective         *yaml.Node `yaml:"objective"`
	Limits            *yaml.Node `yaml:"limits"`
	EarlyTermination  *yaml.Node `yaml:"early_termination"`
}

// rawTrial is an inline command trial.
type rawTrial struct {
	Type                 string            `yaml:"type"`
	Command              *yaml.Node        `yaml:"command"`
	Code                 *yaml.Node        `yaml:"code"`
	Environment          *yaml.Node        `yaml:"environment"`
	EnvironmentVariables map[string]string `yaml:"environment_variables"`
	Resources            *yaml.Node        `yaml:"resources"`
	Distribution         *yaml.Node        `yaml:"distribution"`
	Description          string            `yaml:"description"`
}

type rawSearchParam struct {
	Type     string     `yaml:"type"`
	Values   *yaml.Node `yaml:"values"`
	Upper    *int       `yaml:"upper"`
	MinValue *float64   `yaml:"min_value"`
	MaxValue *float64   `yaml:"max_value"`
	Q        *float64   `yaml:"q"`
	Mu       *float64   `yaml:"mu"`
	Sigma    *float64   `yaml:"sigma"`
}

type rawSampling struct {
	Type string `yaml:"type"`
	Seed *int64 `yaml:"seed"`
	Rule string `yaml:"rule"`
}

type rawObjective struct {
	Goal          string `yaml:"goal"`
	PrimaryMetric string `yaml:"primary_metric"`
}

type rawSweepLimits struct {
	MaxTotalTrials      *int           `yaml:"max_total_trials"`
	MaxConcurrentTrials *int           `yaml:"max_concurrent_trials"`
	Timeout             *time.Duration `yaml:"timeout"`
	TrialTimeout        *time.Duration `yaml:"trial_timeout"`
}

type rawPolicy struct {
	Type                 string   `yaml:"type"`
	EvaluationInterval   *int     `yaml:"evaluation_interval"`
	DelayEvaluation      *int     `yaml:"delay_evaluation"`
	SlackFactor          *float64 `yaml:"slack_factor"`
	SlackAmount          *float64 `yaml:"slack_amount"`
	TruncationPercentage *int     `yaml:"truncation_percentage"`
	ExcludeFinishedJobs  *bool    `yaml:"exclude_finished_jobs"`
}

// Defaults of a sweep's limits, as in Azure ML: 1000 trials, all of them
// at once if the compute allows, for at most a week.
const (
	DefaultMaxTotalTrials = 1000
	DefaultSweepTimeout   = 7 * 24 * time.Hour
)

var searchSpaceRefRe = regexp.MustCompile(`\$\{\{\s*search_space\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

func (s scope) sweepJob(n *yaml.Node, field string, r Resolver) *Plan {
	var raw rawSweepJob
	s.decode(n, field, &raw)
	plan := s.topLevelPlan(KindSweep, n, field, jobHeader{raw.Name, raw.DisplayName, raw.ExperimentName, raw.Description, raw.Tags, raw.Identity})
	stepName := plan.Name
	if stepName == "" {
		stepName = "trial"
	}
	b := s.sweepStep(stepName, n, field, &raw, r, nil)
	if b == nil {
		return plan
	}
	b.resolveInputs(s, nil, nil)
	plan.Steps = []*Step{b.step}
	for name, bind := range b.step.Inputs {
		if b.step.Sweep != nil && b.step.Sweep.Param(name) != nil {
			continue
		}
		plan.Inputs[name] = &InputValue{Name: name, Type: bind.Type, Literal: bind.Literal, Data: bind.Data, Pos: bind.Pos}
	}
	plan.Outputs = b.step.Outputs
	return plan
}

// isSweepStep reports whether a pipeline step mapping is a sweep.
func isSweepStep(n *yaml.Node) bool {
	t := deref(valueOf(n, "type"))
	return t != n && t.Kind == yaml.ScalarNode && t.Value == string(KindSweep)
}

// pipelineSweepStep reads a sweep written as a pipeline step.
func (s scope) pipelineSweepStep(name string, n *yaml.Node, field string, r Resolver, pc *pipelineContext) *stepBuild {
	var raw rawSweepJob
	s.decode(n, field, &raw)
	if raw.Name != "" && raw.Name != name {
		s.fail(valueOf(n, "name"), join(field, "name"), "name %q differs from the step name %q", raw.Name, name)
	}
	s.checkIdentity(n, field, raw.Identity)
	return s.sweepStep(name, n, field, &raw, r, pc)
}

// sweepStep builds the step of a sweep: the trial as its component, the
// sweep's inputs and outputs as its own, and its settings in Sweep. It is
// nil when the trial cannot be read at all.
func (s scope) sweepStep(name string, n *yaml.Node, field string, raw *rawSweepJob, r Resolver, pc *pipelineContext) *stepBuild {
	before := len(s.errs.list)
	cfg := s.sweepConfig(n, field, raw)
	trial := deref(raw.Trial)
	trialField := join(field, "trial")
	if trial == nil || isNull(trial) {
		s.fail(n, trialField, "trial is required: a command (code, command, environment) or a component")
		return nil
	}
	params := map[string]sweep.Param{}
	if cfg != nil {
		for _, p := range cfg.SearchSpace {
			params[p.Name] = p
		}
	}
	// Every parameter written, usable or not, so that a reference to
	// one with a bad distribution is not reported a second time.
	names := map[string]bool{}
	for _, e := range entries(deref(raw.SearchSpace)) {
		names[e.key.Value] = true
	}
	synth := rawCommandJob{rawJobHeader: rawJobHeader{DisplayName: raw.DisplayName, Description: raw.Description, Tags: raw.Tags},
		Compute: raw.Compute, Outputs: raw.Outputs, Identity: raw.Identity}
	clean := true
	switch {
	case trial.Kind == yaml.ScalarNode || isComponentMapping(trial):
		synth.Component = trial
	case trial.Kind == yaml.MappingNode:
		var rt rawTrial
		clean = s.decode(trial, trialField, &rt)
		if rt.Type != "" && rt.Type != "command" {
			s.fail(valueOf(trial, "type"), join(trialField, "type"), "unsupported trial type %q (a trial is a command or a command component)", rt.Type)
		}
		cmd := deref(rt.Command)
		switch {
		case cmd == nil || isNull(cmd):
			if clean {
				s.fail(trial, join(trialField, "command"), "command is required (or give a component as the trial)")
			}
		case cmd.Kind != yaml.ScalarNode:
			s.fail(cmd, join(trialField, "command"), "command must be a string")
		default:
			c := *cmd
			c.Value = searchSpaceRefRe.ReplaceAllStringFunc(cmd.Value, func(m string) string {
				key := searchSpaceRefRe.FindStringSubmatch(m)[1]
				if !names[key] {
					s.fail(cmd, join(trialField, "command"), "%s: the search space has no parameter %q (parameters: %s)",
						strings.TrimSpace(m), key, listOrNone(sortedKeys(names)))
				}
				return "${{inputs." + key + "}}"
			})
			synth.Command = &c
		}
		if clean && (rt.Environment == nil || isNull(rt.Environment)) {
			s.fail(trial, join(trialField, "environment"), "environment is required")
		}
		synth.Code, synth.Environment, synth.EnvironmentVariables = rt.Code, rt.Environment, rt.EnvironmentVariables
		synth.Resources, synth.Distribution = rt.Resources, rt.Distribution
	default:
		s.fail(trial, trialField, "trial must be a command mapping or a component reference (./train.yml, file:train.yml, azureml:<name>:<version>)")
		return nil
	}
	if cfg == nil {
		// Without a usable search space the trial's inputs are not
		// known; it is checked once the sweep's settings are fixed.
		return nil
	}
	synth.Inputs = sweepInputs(raw.Inputs, params, valueOf(n, "search_space"))
	// The trial's fields are checked here; buildStep's own checks of a
	// command job's command and environment would name the wrong place.
	b := s.buildStep(name, n, field, &synth, nil, false, r, pc)
	b.sweepInputs = raw.Inputs
	b.step.Sweep = cfg
	b.searchSpaceFields(s, before)
	if cfg.Limits.TrialTimeoutSeconds > 0 {
		b.step.Timeout = time.Duration(cfg.Limits.TrialTimeoutSeconds) * time.Second
	}
	return b
}

// searchSpaceFields points the problems found since before with a
// parameter that reaches the trial as an input where the parameter is
// written: in the search space.
func (b *stepBuild) searchSpaceFields(s scope, before int) {
	if b.step.Sweep == nil {
		return
	}
	for _, e := range s.errs.list[before:] {
		for _, p := range b.step.Sweep.Names() {
			if e.Field == join(b.field, "inputs."+p) && !hasInput(b.sweepInputs, p) {
				e.Field = join(b.field, "search_space."+p)
			}
		}
	}
}

// isComponentMapping tells an inline component given as a trial from an
// inline command: a component declares its inputs and outputs.
func isComponentMapping(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for _, k := range []string{"inputs", "outputs", "$schema", "name", "version", "is_deterministic"} {
		if valueOf(n, k) != n {
			return true
		}
	}
	return false
}

func hasInput(inputs *yaml.Node, name string) bool {
	inputs = deref(inputs)
	return inputs != nil && inputs.Kind == yaml.MappingNode && valueOf(inputs, name) != inputs
}

// sweepInputs is the trial step's inputs: the sweep's own, and for every
// parameter a literal of the kind its values have (a value the scheduler
// replaces with each trial's), written where the parameter is.
func sweepInputs(inputs *yaml.Node, params map[string]sweep.Param, space *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if inputs = deref(inputs); inputs != nil && inputs.Kind == yaml.MappingNode {
		out.Line, out.Column = inputs.Line, inputs.Column
		for _, e := range entries(inputs) {
			if _, isParam := params[e.key.Value]; !isParam {
				out.Content = append(out.Content, e.key, e.value)
			}
		}
	} else if inputs != nil && !isNull(inputs) {
		return inputs
	}
	for _, name := range sortedKeys(params) {
		at := valueOf(space, name)
		example := params[name].FromUnit(0.5)
		tag := map[string]string{sweep.KindInt: "!!int", sweep.KindFloat: "!!float", sweep.KindBool: "!!bool"}[example.Kind]
		if tag == "" {
			tag = "!!str"
		}
		out.Content = append(out.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Line: at.Line, Column: at.Column},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: example.Text, Line: at.Line, Column: at.Column})
	}
	return out
}

// sweepConfig reads a sweep's search space, sampling algorithm,
// objective, limits and early termination policy; nil when one of them is
// unusable (each problem is reported).
func (s scope) sweepConfig(n *yaml.Node, field string, raw *rawSweepJob) *sweep.Config {
	before := len(s.errs.list)
	cfg := &sweep.Config{}
	require := func(v *yaml.Node, key, what string) bool {
		if v == nil || isNull(v) {
			s.fail(n, join(field, key), "%s is required", what)
			return false
		}
		return true
	}

	// Search space.
	spaceField := join(field, "search_space")
	if require(raw.SearchSpace, "search_space", "search_space (the hyperparameters and their distributions)") {
		space := deref(raw.SearchSpace)
		if space.Kind != yaml.MappingNode || len(entries(space)) == 0 {
			s.fail(space, spaceField, "search_space must be a mapping of hyperparameter name to distribution")
		}
		for _, e := range entries(space) {
			f := join(spaceField, e.key.Value)
			if !portNameRe.MatchString(e.key.Value) {
				s.fail(e.key, f, "invalid hyperparameter name %q (letters, digits and '_', not starting with a digit)", e.key.Value)
				continue
			}
			if d, ok := s.searchDistribution(e.value, f); ok {
				cfg.SearchSpace = append(cfg.SearchSpace, sweep.Param{Name: e.key.Value, Distribution: d})
			}
		}
		slices.SortFunc(cfg.SearchSpace, func(a, b sweep.Param) int { return strings.Compare(a.Name, b.Name) })
	}

	// Sampling algorithm.
	samplingField := join(field, "sampling_algorithm")
	if require(raw.SamplingAlgorithm, "sampling_algorithm", "sampling_algorithm (random, grid or bayesian)") {
		sn := deref(raw.SamplingAlgorithm)
		var rs rawSampling
		typeNode := sn
		switch sn.Kind {
		case yaml.ScalarNode:
			rs.Type = sn.Value
		case yaml.MappingNode:
			s.decode(sn, samplingField, &rs)
			typeNode = valueOf(sn, "type")
		default:
			s.fail(sn, samplingField, "sampling_algorithm must be random, grid or bayesian, or a mapping with type")
		}
		cfg.Sampling.Type = strings.ToLower(rs.Type)
		switch cfg.Sampling.Type {
		case sweep.Random:
			cfg.Sampling.Rule = strings.ToLower(rs.Rule)
			switch cfg.Sampling.Rule {
			case "":
				cfg.Sampling.Rule = sweep.RuleRandom
			case sweep.RuleRandom, sweep.RuleSobol:
			default:
				s.fail(valueOf(sn, "rule"), join(samplingField, "rule"), "rule must be random or sobol, got %q", rs.Rule)
			}
		case sweep.Grid, sweep.Bayesian:
			if rs.Rule != "" {
				s.fail(valueOf(sn, "rule"), join(samplingField, "rule"), "rule applies to random sampling only")
			}
			if rs.Seed != nil && cfg.Sampling.Type == sweep.Grid {
				s.fail(valueOf(sn, "seed"), join(samplingField, "seed"), "grid sampling draws nothing at random; seed applies to random and bayesian sampling")
			}
		case "":
			s.fail(sn, join(samplingField, "type"), "type is required (random, grid or bayesian)")
		default:
			s.fail(typeNode, join(samplingField, "type"), "unknown sampling algorithm %q (expected random, grid or bayesian)", rs.Type)
		}
		if rs.Seed != nil {
			cfg.Sampling.Seed = *rs.Seed
		} else {
			// Drawn once, when the sweep is read: every trial's values
			// then follow from what is stored.
			cfg.Sampling.Seed = rand.Int64N(math.MaxInt32)
		}
		for _, p := range cfg.SearchSpace {
			switch {
			case cfg.Sampling.Type == sweep.Grid && p.Type != sweep.Choice:
				s.fail(valueOf(valueOf(raw.SearchSpace, p.Name), "type"), join(spaceField, p.Name+".type"),
					"grid sampling needs every hyperparameter to be a choice; %s is %s", p.Name, p.Type)
			case cfg.Sampling.Type == sweep.Bayesian && p.Type != sweep.Choice && p.Type != sweep.Uniform && p.Type != sweep.QUniform:
				s.fail(valueOf(valueOf(raw.SearchSpace, p.Name), "type"), join(spaceField, p.Name+".type"),
					"bayesian sampling supports choice, uniform and quniform only; %s is %s", p.Name, p.Type)
			}
		}
	}

	// Objective.
	objField := join(field, "objective")
	if require(raw.Objective, "objective", "objective (goal and primary_metric)") {
		var ro rawObjective
		if s.decode(raw.Objective, objField, &ro) {
			cfg.Objective.Goal = strings.ToLower(ro.Goal)
			cfg.Objective.PrimaryMetric = ro.PrimaryMetric
			if cfg.Objective.Goal != sweep.Maximize && cfg.Objective.Goal != sweep.Minimize {
				s.fail(valueOf(raw.Objective, "goal"), join(objField, "goal"), "goal must be maximize or minimize, got %q", ro.Goal)
			}
			if ro.PrimaryMetric == "" {
				s.fail(raw.Objective, join(objField, "primary_metric"), "primary_metric is required: the metric each trial logs with mlflow.log_metric")
			}
		}
	}

	// Limits.
	cfg.Limits.MaxTotalTrials = DefaultMaxTotalTrials
	cfg.Limits.TimeoutSeconds = int(DefaultSweepTimeout.Seconds())
	limitsField := join(field, "limits")
	concurrentSet := false
	if raw.Limits != nil && !isNull(raw.Limits) {
		var rl rawSweepLimits
		ln := raw.Limits
		if s.decode(ln, limitsField, &rl) {
			positive := func(v *int, key string) int {
				if *v < 1 {
					s.fail(valueOf(ln, key), join(limitsField, key), "%s must be 1 or more, got %d", key, *v)
				}
				return *v
			}
			seconds := func(v *time.Duration, key string) int {
				if *v < time.Second {
					s.fail(valueOf(ln, key), join(limitsField, key), "%s must be a positive number of seconds", key)
				}
				return int(v.Seconds())
			}
			if rl.MaxTotalTrials != nil {
				cfg.Limits.MaxTotalTrials = positive(rl.MaxTotalTrials, "max_total_trials")
			}
			if rl.MaxConcurrentTrials != nil {
				cfg.Limits.MaxConcurrentTrials = positive(rl.MaxConcurrentTrials, "max_concurrent_trials")
				concurrentSet = true
			}
			if rl.Timeout != nil {
				cfg.Limits.TimeoutSeconds = seconds(rl.Timeout, "timeout")
			}
			if rl.TrialTimeout != nil {
				cfg.Limits.TrialTimeoutSeconds = seconds(rl.TrialTimeout, "trial_timeout")
			}
		}
	}
	if !concurrentSet {
		cfg.Limits.MaxConcurrentTrials = cfg.Limits.MaxTotalTrials
	}

	// Early termination.
	etField := join(field, "early_termination")
	if et := raw.EarlyTermination; et != nil && !isNull(et) {
		var rp rawPolicy
		if s.decode(et, etField, &rp) {
			p := &sweep.Policy{Type: strings.ToLower(rp.Type)}
			nonNegative := func(v *int, key string) int {
				if v == nil {
					return 0
				}
				if *v < 0 {
					s.fail(valueOf(et, key), join(etField, key), "%s must be 0 or more, got %d", key, *v)
				}
				return *v
			}
			p.EvaluationInterval = nonNegative(rp.EvaluationInterval, "evaluation_interval")
			p.DelayEvaluation = nonNegative(rp.DelayEvaluation, "delay_evaluation")
			only := func(what string, set bool, key string) {
				if set {
					s.fail(valueOf(et, key), join(etField, key), "%s applies to the %s policy only", key, what)
				}
			}
			switch p.Type {
			case sweep.Bandit:
				switch {
				case (rp.SlackFactor == nil) == (rp.SlackAmount == nil):
					s.fail(et, join(etField, "slack_factor"), "the bandit policy needs one of slack_factor or slack_amount")
				case rp.SlackFactor != nil && *rp.SlackFactor <= 0:
					s.fail(valueOf(et, "slack_factor"), join(etField, "slack_factor"), "slack_factor must be more than 0")
				case rp.SlackAmount != nil && *rp.SlackAmount <= 0:
					s.fail(valueOf(et, "slack_amount"), join(etField, "slack_amount"), "slack_amount must be more than 0")
				case rp.SlackFactor != nil:
					p.SlackFactor = *rp.SlackFactor
				default:
					p.SlackAmount = *rp.SlackAmount
				}
				only("truncation_selection", rp.TruncationPercentage != nil, "truncation_percentage")
				only("truncation_selection", rp.ExcludeFinishedJobs != nil, "exclude_finished_jobs")
			case sweep.MedianStopping:
				only("bandit", rp.SlackFactor != nil, "slack_factor")
				only("bandit", rp.SlackAmount != nil, "slack_amount")
				only("truncation_selection", rp.TruncationPercentage != nil, "truncation_percentage")
				only("truncation_selection", rp.ExcludeFinishedJobs != nil, "exclude_finished_jobs")
			case sweep.TruncationSelection:
				only("bandit", rp.SlackFactor != nil, "slack_factor")
				only("bandit", rp.SlackAmount != nil, "slack_amount")
				switch {
				case rp.TruncationPercentage == nil:
					s.fail(et, join(etField, "truncation_percentage"), "the truncation_selection policy needs truncation_percentage (1 to 99)")
				case *rp.TruncationPercentage < 1 || *rp.TruncationPercentage > 99:
					s.fail(valueOf(et, "truncation_percentage"), join(etField, "truncation_percentage"), "truncation_percentage must be 1 to 99, got %d", *rp.TruncationPercentage)
				default:
					p.TruncationPercentage = *rp.TruncationPercentage
				}
				if rp.ExcludeFinishedJobs != nil {
					p.ExcludeFinishedJobs = *rp.ExcludeFinishedJobs
				}
			case "":
				s.fail(et, join(etField, "type"), "type is required (bandit, median_stopping or truncation_selection)")
			default:
				s.fail(valueOf(et, "type"), join(etField, "type"), "unknown early termination policy %q (expected bandit, median_stopping or truncation_selection)", rp.Type)
			}
			if cfg.Sampling.Type == sweep.Bayesian {
				s.fail(et, etField, "bayesian sampling does not support early termination; remove early_termination or use random or grid sampling")
			}
			cfg.EarlyTermination = p
		}
	}
	if len(s.errs.list) > before {
		return nil
	}
	return cfg
}

// searchDistribution reads one search space expression.
func (s scope) searchDistribution(n *yaml.Node, field string) (sweep.Distribution, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		s.fail(n, field, "a hyperparameter must be a mapping such as {type: choice, values: [...]} or {type: uniform, min_value: 0, max_value: 1}")
		return sweep.Distribution{}, false
	}
	var rp rawSearchParam
	if !s.decode(n, field, &rp) {
		return sweep.Distribution{}, false
	}
	d := sweep.Distribution{Type: strings.ToLower(rp.Type)}
	ok := true
	need := func(v *float64, key string) float64 {
		if v == nil {
			s.fail(n, join(field, key), "%s is required for %s", key, d.Type)
			ok = false
			return 0
		}
		return *v
	}
	unwanted := func(set bool, key string) {
		if set {
			s.fail(valueOf(n, key), join(field, key), "%s does not apply to %s", key, d.Type)
			ok = false
		}
	}
	quantised := strings.HasPrefix(d.Type, "q")
	switch d.Type {
	case sweep.Choice:
		vals := deref(rp.Values)
		if vals == nil || vals.Kind != yaml.SequenceNode || len(vals.Content) == 0 {
			s.fail(n, join(field, "values"), "values is required for choice: a list of at least one value")
			return d, false
		}
		for i, v := range vals.Content {
			l, err := literalFromNode(v)
			if err != nil {
				s.fail(v, join(field, "values"), "value %d: choice values must be numbers, strings or booleans (%v)", i+1, err)
				ok = false
				continue
			}
			d.Values = append(d.Values, sweepLiteral(l))
		}
		unwanted(rp.Upper != nil, "upper")
		unwanted(rp.MinValue != nil, "min_value")
		unwanted(rp.MaxValue != nil, "max_value")
		unwanted(rp.Q != nil, "q")
		unwanted(rp.Mu != nil, "mu")
		unwanted(rp.Sigma != nil, "sigma")
	case sweep.Randint:
		if rp.Upper == nil || *rp.Upper < 1 {
			s.fail(n, join(field, "upper"), "upper is required for randint: values are drawn from 0 to upper-1, so it must be 1 or more")
			ok = false
		} else {
			d.Upper = *rp.Upper
		}
		unwanted(rp.Values != nil, "values")
		unwanted(rp.MinValue != nil, "min_value")
		unwanted(rp.MaxValue != nil, "max_value")
		unwanted(rp.Q != nil, "q")
		unwanted(rp.Mu != nil, "mu")
		unwanted(rp.Sigma != nil, "sigma")
	case sweep.Uniform, sweep.LogUniform, sweep.QUniform, sweep.QLogUniform:
		d.MinValue, d.MaxValue = need(rp.MinValue, "min_value"), need(rp.MaxValue, "max_value")
		if ok && d.MinValue >= d.MaxValue {
			s.fail(valueOf(n, "max_value"), join(field, "max_value"), "max_value (%g) must be more than min_value (%g)", d.MaxValue, d.MinValue)
			ok = false
		}
		unwanted(rp.Values != nil, "values")
		unwanted(rp.Upper != nil, "upper")
		unwanted(rp.Mu != nil, "mu")
		unwanted(rp.Sigma != nil, "sigma")
		unwanted(!quantised && rp.Q != nil, "q")
	case sweep.Normal, sweep.LogNormal, sweep.QNormal, sweep.QLogNormal:
		d.Mu, d.Sigma = need(rp.Mu, "mu"), need(rp.Sigma, "sigma")
		if rp.Sigma != nil && *rp.Sigma <= 0 {
			s.fail(valueOf(n, "sigma"), join(field, "sigma"), "sigma must be more than 0")
			ok = false
		}
		unwanted(rp.Values != nil, "values")
		unwanted(rp.Upper != nil, "upper")
		unwanted(rp.MinValue != nil, "min_value")
		unwanted(rp.MaxValue != nil, "max_value")
		unwanted(!quantised && rp.Q != nil, "q")
	case "":
		s.fail(n, join(field, "type"), "type is required (choice, randint, uniform, loguniform, quniform, qloguniform, normal, lognormal, qnormal or qlognormal)")
		return d, false
	default:
		s.fail(valueOf(n, "type"), join(field, "type"), "unknown distribution %q (expected choice, randint, uniform, loguniform, quniform, qloguniform, normal, lognormal, qnormal or qlognormal)", rp.Type)
		return d, false
	}
	if quantised {
		if q := need(rp.Q, "q"); rp.Q != nil && q <= 0 {
			s.fail(valueOf(n, "q"), join(field, "q"), "q must be more than 0")
			ok = false
		} else {
			d.Q = q
		}
	}
	return d, ok
}

// sweepLiteral is a choice value as Python would write it.
func sweepLiteral(v Value) sweep.Literal {
	switch v.Type {
	case TypeInteger:
		return sweep.IntLiteral(v.Int)
	case TypeNumber:
		return sweep.FloatLiteral(v.Float)
	case TypeBoolean:
		return sweep.BoolLiteral(v.Bool)
	}
	return sweep.StringLiteral(v.Raw)
}
