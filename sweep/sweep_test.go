package sweep

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func choice(texts ...string) Distribution {
	d := Distribution{Type: Choice}
	for _, t := range texts {
		d.Values = append(d.Values, Literal{Kind: KindString, Text: t})
	}
	return d
}

func TestGridEnumeratesEveryCombinationLastNameFastest(t *testing.T) {
	c := &Config{Sampling: Sampling{Type: Grid}, SearchSpace: []Param{
		{Name: "a", Distribution: choice("1", "2")},
		{Name: "b", Distribution: choice("x", "y", "z")},
	}}
	if c.GridSize() != 6 {
		t.Fatalf("grid size %d, want 6", c.GridSize())
	}
	var got []string
	for n := 0; ; n++ {
		a, ok := c.Next(n, nil)
		if !ok {
			break
		}
		got = append(got, a["a"].Text+a["b"].Text)
	}
	want := []string{"1x", "1y", "1z", "2x", "2y", "2z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("grid order %v, want %v", got, want)
	}
	c.SearchSpace = append(c.SearchSpace, Param{Name: "c", Distribution: Distribution{Type: Uniform, MaxValue: 1}})
	if c.GridSize() != -1 {
		t.Fatalf("grid over a uniform has size %d, want -1", c.GridSize())
	}
}

func TestDistributionsStayInRangeAndQuantise(t *testing.T) {
	cases := []struct {
		d     Distribution
		check func(l Literal) string
	}{
		{Distribution{Type: Randint, Upper: 5}, func(l Literal) string {
			i, err := strconv.Atoi(l.Text)
			if l.Kind != KindInt || err != nil || i < 0 || i >= 5 {
				return "randint(5) outside [0, 5)"
			}
			return ""
		}},
		{Distribution{Type: Uniform, MinValue: -2, MaxValue: 3}, func(l Literal) string {
			f, _ := l.Float()
			if l.Kind != KindFloat || f < -2 || f > 3 {
				return "uniform(-2, 3) outside its bounds"
			}
			return ""
		}},
		{Distribution{Type: LogUniform, MinValue: math.Log(1e-4), MaxValue: math.Log(1e-1)}, func(l Literal) string {
			f, _ := l.Float()
			if f < 1e-4*0.999999 || f > 1e-1*1.000001 {
				return "loguniform outside exp(bounds)"
			}
			return ""
		}},
		{Distribution{Type: QUniform, MinValue: 10, MaxValue: 100, Q: 5}, func(l Literal) string {
			i, err := strconv.Atoi(l.Text)
			if l.Kind != KindInt || err != nil || i%5 != 0 || i < 10 || i > 100 {
				return "quniform(10, 100, 5) not a whole multiple of 5 in range"
			}
			return ""
		}},
		{Distribution{Type: QUniform, MinValue: 0, MaxValue: 1, Q: 0.1}, func(l Literal) string {
			f, _ := l.Float()
			if l.Kind != KindFloat || math.Abs(f*10-math.Round(f*10)) > 1e-9 || len(l.Text) > 4 {
				return "quniform(0, 1, 0.1) not a clean multiple of 0.1"
			}
			return ""
		}},
		{Distribution{Type: QLogUniform, MinValue: 0, MaxValue: math.Log(100), Q: 1}, func(l Literal) string {
			i, err := strconv.Atoi(l.Text)
			if err != nil || i < 1 || i > 100 {
				return "qloguniform outside [1, 100]"
			}
			return ""
		}},
		{Distribution{Type: LogNormal, Mu: 0, Sigma: 1}, func(l Literal) string {
			if f, _ := l.Float(); f <= 0 {
				return "lognormal not positive"
			}
			return ""
		}},
		{Distribution{Type: QNormal, Mu: 10, Sigma: 3, Q: 2}, func(l Literal) string {
			i, err := strconv.Atoi(l.Text)
			if err != nil || i%2 != 0 {
				return "qnormal(q=2) not an even integer"
			}
			return ""
		}},
		{Distribution{Type: QLogNormal, Mu: 1, Sigma: 0.5, Q: 1}, func(l Literal) string {
			if i, err := strconv.Atoi(l.Text); err != nil || i < 0 {
				return "qlognormal(q=1) not a non-negative integer"
			}
			return ""
		}},
	}
	for _, tc := range cases {
		c := &Config{Sampling: Sampling{Type: Random, Seed: 7}, SearchSpace: []Param{{Name: "x", Distribution: tc.d}}}
		for n := range 300 {
			a, _ := c.Next(n, nil)
			if msg := tc.check(a["x"]); msg != "" {
				t.Fatalf("%s: trial %d drew %q: %s", tc.d, n, a["x"].Text, msg)
			}
		}
	}
	// Normal draws centre on mu.
	c := &Config{Sampling: Sampling{Type: Random, Seed: 3}, SearchSpace: []Param{{Name: "x", Distribution: Distribution{Type: Normal, Mu: 5, Sigma: 1}}}}
	sum := 0.0
	for n := range 2000 {
		a, _ := c.Next(n, nil)
		f, _ := a["x"].Float()
		sum += f
	}
	if mean := sum / 2000; math.Abs(mean-5) > 0.1 {
		t.Fatalf("normal(5, 1) mean %v", mean)
	}
}

func TestSamplingIsReproducibleBySeed(t *testing.T) {
	for _, rule := range []string{RuleRandom, RuleSobol} {
		mk := func(seed int64) *Config {
			return &Config{Sampling: Sampling{Type: Random, Seed: seed, Rule: rule}, SearchSpace: []Param{
				{Name: "lr", Distribution: Distribution{Type: Uniform, MinValue: 0, MaxValue: 1}},
				{Name: "n", Distribution: Distribution{Type: Randint, Upper: 1000}},
			}}
		}
		a, b, other := mk(42), mk(42), mk(43)
		same := true
		for n := range 10 {
			x, _ := a.Next(n, nil)
			y, _ := b.Next(n, nil)
			z, _ := other.Next(n, nil)
			if !reflect.DeepEqual(x, y) {
				t.Fatalf("%s: trial %d differs under the same seed: %v and %v", rule, n, x, y)
			}
			same = same && reflect.DeepEqual(x, z)
		}
		if same {
			t.Fatalf("%s: seeds 42 and 43 drew the same ten trials", rule)
		}
	}
}

func TestPythonFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0.01: "0.01", 1e-05: "1e-05", 3: "3.0", 0.0001: "0.0001", 123456789: "123456789.0",
		1e16: "1e+16", 2.5e-10: "2.5e-10", -0.5: "-0.5", 0: "0.0",
	} {
		if got := PythonFloat(f); got != want {
			t.Errorf("PythonFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

// The Bayesian sampler, guided by earlier trials' results, comes closer to
// a known optimum than random sampling does with the same budget and seed.
func TestBayesianBeatsRandomOnAKnownFunction(t *testing.T) {
	f := func(a Assignment) float64 {
		x, _ := a["x"].Float()
		y, _ := a["y"].Float()
		return -((x-0.3)*(x-0.3) + (y-0.7)*(y-0.7))
	}
	run := func(alg string, seed int64) float64 {
		c := &Config{Sampling: Sampling{Type: alg, Seed: seed}, Objective: Objective{Goal: Maximize, PrimaryMetric: "m"},
			SearchSpace: []Param{
				{Name: "x", Distribution: Distribution{Type: Uniform, MinValue: 0, MaxValue: 1}},
				{Name: "y", Distribution: Distribution{Type: Uniform, MinValue: 0, MaxValue: 1}},
			}}
		var hist []Observation
		best := math.Inf(-1)
		for n := range 20 {
			a, _ := c.Next(n, hist)
			v := f(a)
			hist = append(hist, Observation{Params: a, Value: v, HasValue: true})
			best = math.Max(best, v)
		}
		return best
	}
	wins := 0
	for seed := int64(1); seed <= 5; seed++ {
		b, r := run(Bayesian, seed), run(Random, seed)
		if b > r {
			wins++
		}
		if b < -0.005 {
			t.Errorf("seed %d: bayesian best %v is not within 0.07 of the optimum", seed, b)
		}
	}
	if wins < 4 {
		t.Fatalf("bayesian beat random on %d of 5 seeds", wins)
	}
}

func TestBayesianMinimisesAndHandlesChoice(t *testing.T) {
	c := &Config{Sampling: Sampling{Type: Bayesian, Seed: 1}, Objective: Objective{Goal: Minimize, PrimaryMetric: "loss"},
		SearchSpace: []Param{
			{Name: "act", Distribution: choice("relu", "tanh", "sigmoid")},
			{Name: "units", Distribution: Distribution{Type: QUniform, MinValue: 8, MaxValue: 128, Q: 8}},
		}}
	loss := func(a Assignment) float64 {
		u, _ := a["units"].Float()
		l := math.Abs(u-64) / 64
		if a["act"].Text != "tanh" {
			l += 1
		}
		return l
	}
	var hist []Observation
	best := math.Inf(1)
	for n := range 15 {
		a, _ := c.Next(n, hist)
		if !strings.Contains("relu tanh sigmoid", a["act"].Text) {
			t.Fatalf("trial %d: act %q is not a choice", n, a["act"].Text)
		}
		v := loss(a)
		hist = append(hist, Observation{Params: a, Value: v, HasValue: true})
		best = math.Min(best, v)
	}
	if best > 0.2 {
		t.Fatalf("bayesian minimisation reached %v, want <= 0.2 (tanh near 64 units)", best)
	}
}

func TestBanditCancelsTrialsOutsideTheSlack(t *testing.T) {
	obj := Objective{Goal: Maximize, PrimaryMetric: "acc"}
	p := &Policy{Type: Bandit, SlackFactor: 0.1, EvaluationInterval: 1}
	trials := []History{
		{Trial: "good", Values: []float64{0.5, 0.8}},
		{Trial: "close", Values: []float64{0.46}, Running: true},
		{Trial: "bad", Values: []float64{0.4}, Running: true},
	}
	got := p.Terminate(obj, trials)
	if _, ok := got["bad"]; !ok || len(got) != 1 {
		t.Fatalf("bandit stopped %v, want only bad (0.4 < 0.5/1.1)", got)
	}
	if !strings.Contains(got["bad"], "slack_factor 0.1") || !strings.Contains(got["bad"], "0.4545") {
		t.Fatalf("reason %q does not give the policy and its limit", got["bad"])
	}
	// slack_amount, minimised; and delay_evaluation defers the decision.
	obj = Objective{Goal: Minimize, PrimaryMetric: "loss"}
	p = &Policy{Type: Bandit, SlackAmount: 0.2, EvaluationInterval: 2, DelayEvaluation: 2}
	trials = []History{
		{Trial: "best", Values: []float64{1, 0.9, 0.5, 0.3}},
		{Trial: "slow", Values: []float64{5, 5, 5}, Running: true},
		{Trial: "late", Values: []float64{5, 5, 5, 0.45}, Running: true},
		{Trial: "worse", Values: []float64{5, 5, 5, 0.6}, Running: true},
	}
	got = p.Terminate(obj, trials)
	if _, ok := got["worse"]; !ok || len(got) != 1 {
		t.Fatalf("bandit stopped %v, want only worse (0.6 > 0.3+0.2 at interval 4; interval 3 is no evaluation)", got)
	}
}

func TestMedianStoppingComparesBestWithMedianOfRunningAverages(t *testing.T) {
	obj := Objective{Goal: Maximize, PrimaryMetric: "acc"}
	p := &Policy{Type: MedianStopping, EvaluationInterval: 1, DelayEvaluation: 1}
	trials := []History{
		{Trial: "a", Values: []float64{0.6, 0.8}},                // average 0.7
		{Trial: "b", Values: []float64{0.5, 0.7}},                // 0.6
		{Trial: "c", Values: []float64{0.2, 0.3}, Running: true}, // best 0.3, average 0.25
		{Trial: "d", Values: []float64{0.9}, Running: true},      // before its delay
	}
	got := p.Terminate(obj, trials)
	if _, ok := got["c"]; !ok || len(got) != 1 {
		t.Fatalf("median stopping stopped %v, want only c (best 0.3 < median 0.6)", got)
	}
	if !strings.Contains(got["c"], "median") {
		t.Fatalf("reason %q", got["c"])
	}
}

func TestTruncationCancelsTheLowestShare(t *testing.T) {
	obj := Objective{Goal: Maximize, PrimaryMetric: "acc"}
	p := &Policy{Type: TruncationSelection, TruncationPercentage: 50, EvaluationInterval: 1}
	trials := []History{
		{Trial: "done-low", Values: []float64{0.1}},
		{Trial: "r1", Values: []float64{0.4}, Running: true},
		{Trial: "r2", Values: []float64{0.6}, Running: true},
		{Trial: "r3", Values: []float64{0.9}, Running: true},
	}
	got := p.Terminate(obj, trials)
	// Of four, the lowest two are done-low (finished, not stopped) and r1.
	if _, ok := got["r1"]; !ok || len(got) != 1 {
		t.Fatalf("truncation stopped %v, want r1", got)
	}
	p.ExcludeFinishedJobs = true
	got = p.Terminate(obj, trials)
	// Of the three running, the lowest 50% is one trial: r1.
	if _, ok := got["r1"]; !ok || len(got) != 1 {
		t.Fatalf("truncation without finished trials stopped %v, want r1", got)
	}
	p.TruncationPercentage = 10
	if got := p.Terminate(obj, trials); len(got) != 0 {
		t.Fatalf("10%% of 3 trials is none, stopped %v", got)
	}
}
