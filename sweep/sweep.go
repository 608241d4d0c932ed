// Package sweep is the arithmetic of hyperparameter sweeps, apart from
// running anything: the search space's distributions and how their values
// are written, the sampling algorithms (random, grid, Bayesian) and the
// early termination policies, each a pure function of the sweep's settings
// and of what earlier trials did, so that a scheduler can rebuild a sweep
// from its stored trials alone.
package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Distribution types of a search space, as Azure ML names them.
const (
	Choice      = "choice"
	Randint     = "randint"
	Uniform     = "uniform"
	LogUniform  = "loguniform"
	QUniform    = "quniform"
	QLogUniform = "qloguniform"
	Normal      = "normal"
	LogNormal   = "lognormal"
	QNormal     = "qnormal"
	QLogNormal  = "qlognormal"
)

// Sampling algorithms.
const (
	Random   = "random"
	Grid     = "grid"
	Bayesian = "bayesian"
)

// Rules of random sampling: independent draws, or a low-discrepancy
// sequence that covers the space evenly.
const (
	RuleRandom = "random"
	RuleSobol  = "sobol"
)

// Goals of an objective.
const (
	Maximize = "maximize"
	Minimize = "minimize"
)

// Early termination policies.
const (
	Bandit              = "bandit"
	MedianStopping      = "median_stopping"
	TruncationSelection = "truncation_selection"
)

// Config is a whole sweep: what is searched, how, towards what and within
// which limits. It is stored with the sweep job.
type Config struct {
	// SearchSpace is sorted by name, the order grid sampling counts in.
	SearchSpace      []Param   `json:"search_space"`
	Sampling         Sampling  `json:"sampling_algorithm"`
	Objective        Objective `json:"objective"`
	Limits           Limits    `json:"limits"`
	EarlyTermination *Policy   `json:"early_termination,omitempty"`
}

// Param is one hyperparameter and the distribution it is drawn from.
type Param struct {
	Name string `json:"name"`
	Distribution
}

// Distribution is one search space expression: choice(values),
// randint(upper), uniform and loguniform (min_value, max_value), their
// quantised forms (q), and normal and lognormal (mu, sigma) with theirs.
// The log forms take their bounds in log space, as Azure ML does:
// loguniform(a, b) is exp(uniform(a, b)).
type Distribution struct {
	Type     string    `json:"type"`
	Values   []Literal `json:"values,omitempty"`
	Upper    int       `json:"upper,omitempty"`
	MinValue float64   `json:"min_value,omitempty"`
	MaxValue float64   `json:"max_value,omitempty"`
	Q        float64   `json:"q,omitempty"`
	Mu       float64   `json:"mu,omitempty"`
	Sigma    float64   `json:"sigma,omitempty"`
}

// Literal kinds.
const (
	KindInt    = "int"
	KindFloat  = "float"
	KindString = "string"
	KindBool   = "bool"
)

// Literal is one value of a hyperparameter: its kind and its text as
// Python writes it (str() of the value), which is how Azure ML puts it
// into a trial's command.
type Literal struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// Float is the literal's numeric value; ok is false for strings.
func (l Literal) Float() (float64, bool) {
	switch l.Kind {
	case KindInt, KindFloat:
		f, err := strconv.ParseFloat(l.Text, 64)
		return f, err == nil
	case KindBool:
		if l.Text == "True" {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// IntLiteral is an integer's literal.
func IntLiteral(i int64) Literal { return Literal{Kind: KindInt, Text: strconv.FormatInt(i, 10)} }

// FloatLiteral is a float's literal, written as Python's str() writes it.
func FloatLiteral(f float64) Literal { return Literal{Kind: KindFloat, Text: PythonFloat(f)} }

// BoolLiteral is a boolean's literal (True or False).
func BoolLiteral(b bool) Literal {
	if b {
		return Literal{Kind: KindBool, Text: "True"}
	}
	return Literal{Kind: KindBool, Text: "False"}
}

// StringLiteral is a string's literal.
func StringLiteral(s string) Literal { return Literal{Kind: KindString, Text: s} }

// PythonFloat writes f as Python's repr() does: the shortest text that
// reads back as f, positional with a ".0" for whole numbers between 1e-4
// and 1e16, and otherwise an exponent of at least two digits (1e-05).
func PythonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[:1]
	digits := strings.TrimLeft(exp[1:], "0")
	if len(digits) < 2 {
		digits = strings.Repeat("0", 2-len(digits)) + digits
	}
	return mant + "e" + sign + digits
}

// Sampling is the sampling algorithm. Seed is fixed when the sweep is
// created (drawn then if the file set none), so that every trial's values
// can be derived again from the stored sweep.
type Sampling struct {
	Type string `json:"type"`
	Seed int64  `json:"seed"`
	// Rule is random sampling's rule: random or sobol.
	Rule string `json:"rule,omitempty"`
}

// Objective is the metric trials are compared by.
type Objective struct {
	Goal          string `json:"goal"`
	PrimaryMetric string `json:"primary_metric"`
}

// Better reports whether a is a better value of the objective than b.
func (o Objective) Better(a, b float64) bool {
	if o.Goal == Minimize {
		return a < b
	}
	return a > b
}

// Limits bound a sweep.
type Limits struct {
	MaxTotalTrials      int `json:"max_total_trials"`
	MaxConcurrentTrials int `json:"max_concurrent_trials"`
	// TimeoutSeconds bounds the whole sweep, TrialTimeoutSeconds each
	// trial; 0 is no limit.
	TimeoutSeconds      int `json:"timeout,omitempty"`
	TrialTimeoutSeconds int `json:"trial_timeout,omitempty"`
}

// Policy is an early termination policy.
type Policy struct {
	Type string `json:"type"`
	// EvaluationInterval is how many reports of the primary metric lie
	// between two evaluations (0 counts as 1); DelayEvaluation is how
	// many reports pass before the first.
	EvaluationInterval int `json:"evaluation_interval,omitempty"`
	DelayEvaluation    int `json:"delay_evaluation,omitempty"`
	// Bandit: the slack allowed behind the best trial, as a ratio or an
	// amount.
	SlackFactor float64 `json:"slack_factor,omitempty"`
	SlackAmount float64 `json:"slack_amount,omitempty"`
	// Truncation selection: the share of the worst trials cancelled at
	// each evaluation, and whether finished trials are left out of the
	// comparison.
	TruncationPercentage int  `json:"truncation_percentage,omitempty"`
	ExcludeFinishedJobs  bool `json:"exclude_finished_jobs,omitempty"`
}

// Names lists the search space's parameter names in order.
func (c *Config) Names() []string {
	names := make([]string, len(c.SearchSpace))
	for i, p := range c.SearchSpace {
		names[i] = p.Name
	}
	return names
}

// Param returns the named parameter, or nil.
func (c *Config) Param(name string) *Param {
	i := slices.IndexFunc(c.SearchSpace, func(p Param) bool { return p.Name == name })
	if i < 0 {
		return nil
	}
	return &c.SearchSpace[i]
}

// String describes a distribution as it is written in Python.
func (d Distribution) String() string {
	switch d.Type {
	case Choice:
		texts := make([]string, len(d.Values))
		for i, v := range d.Values {
			texts[i] = v.Text
		}
		return "choice(" + strings.Join(texts, ", ") + ")"
	case Randint:
		return fmt.Sprintf("randint(%d)", d.Upper)
	case Uniform, LogUniform:
		return fmt.Sprintf("%s(%g, %g)", d.Type, d.MinValue, d.MaxValue)
	case QUniform, QLogUniform:
		return fmt.Sprintf("%s(%g, %g, %g)", d.Type, d.MinValue, d.MaxValue, d.Q)
	case Normal, LogNormal:
		return fmt.Sprintf("%s(%g, %g)", d.Type, d.Mu, d.Sigma)
	case QNormal, QLogNormal:
		return fmt.Sprintf("%s(%g, %g, %g)", d.Type, d.Mu, d.Sigma, d.Q)
	}
	return d.Type
}
