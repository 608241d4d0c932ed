package sweep

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// History is what one trial reported of the primary metric, in order.
// Each report is an interval, as Azure ML counts them.
type History struct {
	Trial   string
	Values  []float64
	Running bool
}

// evaluationPoint is the latest interval at or before reports at which
// the policy is applied, 0 when there is none yet: every
// evaluation_interval reports, after delay_evaluation.
func (p *Policy) evaluationPoint(reports int) int {
	every := max(p.EvaluationInterval, 1)
	for k := reports; k > p.DelayEvaluation; k-- {
		if k%every == 0 {
			return k
		}
	}
	return 0
}

// Terminate decides which running trials the policy stops, and why: each
// trial is judged at its latest evaluation interval against every trial
// that reached that interval, finished ones included (truncation selection
// leaves those out when exclude_finished_jobs is set).
func (p *Policy) Terminate(obj Objective, trials []History) map[string]string {
	out := map[string]string{}
	if p == nil {
		return out
	}
	for _, t := range trials {
		if !t.Running {
			continue
		}
		k := p.evaluationPoint(len(t.Values))
		if k == 0 {
			continue
		}
		var why string
		switch p.Type {
		case Bandit:
			why = p.bandit(obj, t, k, trials)
		case MedianStopping:
			why = p.median(obj, t, k, trials)
		case TruncationSelection:
			why = p.truncation(obj, t, k, trials)
		}
		if why != "" {
			out[t.Trial] = why
		}
	}
	return out
}

func (p *Policy) bandit(obj Objective, t History, k int, trials []History) string {
	v := t.Values[k-1]
	best := v
	for _, o := range trials {
		if len(o.Values) >= k && obj.Better(o.Values[k-1], best) {
			best = o.Values[k-1]
		}
	}
	var limit float64
	var slack string
	switch {
	case p.SlackFactor > 0 && obj.Goal == Minimize:
		limit, slack = best*(1+p.SlackFactor), fmt.Sprintf("slack_factor %g", p.SlackFactor)
	case p.SlackFactor > 0:
		limit, slack = best/(1+p.SlackFactor), fmt.Sprintf("slack_factor %g", p.SlackFactor)
	case obj.Goal == Minimize:
		limit, slack = best+p.SlackAmount, fmt.Sprintf("slack_amount %g", p.SlackAmount)
	default:
		limit, slack = best-p.SlackAmount, fmt.Sprintf("slack_amount %g", p.SlackAmount)
	}
	if !obj.Better(limit, v) {
		return ""
	}
	return fmt.Sprintf("early termination by the bandit policy (%s): at interval %d %s was %s, %s than %s allowed by the best trial's %s",
		slack, k, obj.PrimaryMetric, num(v), worse(obj), num(limit), num(best))
}

func (p *Policy) median(obj Objective, t History, k int, trials []History) string {
	var avgs []float64
	for _, o := range trials {
		if len(o.Values) < k {
			continue
		}
		sum := 0.0
		for _, v := range o.Values[:k] {
			sum += v
		}
		avgs = append(avgs, sum/float64(k))
	}
	slices.Sort(avgs)
	med := avgs[len(avgs)/2]
	if len(avgs)%2 == 0 {
		med = (avgs[len(avgs)/2-1] + avgs[len(avgs)/2]) / 2
	}
	best := t.Values[0]
	for _, v := range t.Values[:k] {
		if obj.Better(v, best) {
			best = v
		}
	}
	if !obj.Better(med, best) {
		return ""
	}
	return fmt.Sprintf("early termination by the median stopping policy: at interval %d the best %s so far was %s, %s than %s, the median of the running averages of %d trials",
		k, obj.PrimaryMetric, num(best), worse(obj), num(med), len(avgs))
}

func (p *Policy) truncation(obj Objective, t History, k int, trials []History) string {
	var set []History
	for _, o := range trials {
		if len(o.Values) >= k && (o.Running || !p.ExcludeFinishedJobs) {
			set = append(set, o)
		}
	}
	// Worst first; ties keep the trials' order.
	slices.SortStableFunc(set, func(a, b History) int {
		switch {
		case obj.Better(b.Values[k-1], a.Values[k-1]):
			return -1
		case obj.Better(a.Values[k-1], b.Values[k-1]):
			return 1
		}
		return 0
	})
	cut := len(set) * p.TruncationPercentage / 100
	i := slices.IndexFunc(set, func(o History) bool { return o.Trial == t.Trial })
	if i < 0 || i >= cut {
		return ""
	}
	return fmt.Sprintf("early termination by the truncation selection policy (truncation_percentage %d): at interval %d %s was %s, among the lowest %d of %d trials",
		p.TruncationPercentage, k, obj.PrimaryMetric, num(t.Values[k-1]), cut, len(set))
}

func worse(obj Objective) string {
	if obj.Goal == Minimize {
		return "higher"
	}
	return "lower"
}

func num(f float64) string {
	if math.Abs(f) >= 1e-3 && math.Abs(f) < 1e6 {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", f), "0"), ".")
	}
	return fmt.Sprintf("%.4g", f)
}
