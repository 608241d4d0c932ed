package sweep

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Bayesian sampling models the objective over the search space with a
// Gaussian process fitted to the trials that reported it, and proposes the
// point of greatest expected improvement over the best of them. Its first
// trials, before there is anything to fit, are drawn at random.

// bayesianWarmup is how many trials with a value the model needs before
// it proposes anything.
const bayesianWarmup = 3

// Candidates the expected improvement is evaluated at: random points of
// the space, and points near the best trials so far.
const (
	randomCandidates = 1000
	localCandidates  = 100
	localBest        = 3
	localSpread      = 0.05
)

// lengthScales are the kernel widths tried (in unit coordinates); the one
// under which the observations are likeliest is used.
var lengthScales = []float64{0.05, 0.1, 0.2, 0.3, 0.5, 1}

const (
	gpNoise        = 1e-4
	improvementMin = 0.01
)

func (c *Config) bayesian(n int, history []Observation) Assignment {
	var xs [][]float64
	var ys []float64
	var us [][]float64
	for _, o := range history {
		if !o.HasValue || math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
			continue
		}
		u, ok := c.toUnit(o.Params)
		if !ok {
			continue
		}
		us = append(us, u)
		xs = append(xs, c.encode(o.Params))
		y := o.Value
		if c.Objective.Goal == Minimize {
			y = -y
		}
		ys = append(ys, y)
	}
	if len(xs) < bayesianWarmup {
		return c.fromUnit(c.unitPoint(n))
	}
	mean, sd := meanStd(ys)
	for i := range ys {
		ys[i] = (ys[i] - mean) / sd
	}
	gp := fitGP(xs, ys)
	if gp == nil {
		return c.fromUnit(c.unitPoint(n))
	}
	best := slices.Max(ys)

	r := c.rng(n)
	d := len(c.SearchSpace)
	var cands [][]float64
	for range randomCandidates {
		u := make([]float64, d)
		for j := range u {
			u[j] = r.Float64()
		}
		cands = append(cands, u)
	}
	order := make([]int, len(ys))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case ys[a] > ys[b]:
			return -1
		case ys[a] < ys[b]:
			return 1
		}
		return 0
	})
	for _, i := range order[:min(localBest, len(order))] {
		for range localCandidates {
			u := make([]float64, d)
			for j := range u {
				u[j] = math.Min(math.Max(us[i][j]+r.NormFloat64()*localSpread, 0), math.Nextafter(1, 0))
			}
			cands = append(cands, u)
		}
	}
	var pick Assignment
	bestEI := math.Inf(-1)
	for _, u := range cands {
		a := c.fromUnit(u)
		mu, sigma := gp.predict(c.encode(a))
		if ei := expectedImprovement(mu, sigma, best); ei > bestEI {
			bestEI, pick = ei, a
		}
	}
	return pick
}

// encode places an assignment in the model's coordinates: continuous
// parameters scaled to [0, 1], a choice as one coordinate per value.
func (c *Config) encode(a Assignment) []float64 {
	var x []float64
	for _, p := range c.SearchSpace {
		l := a[p.Name]
		if p.Type == Choice {
			for _, v := range p.Values {
				if v == l {
					x = append(x, 1)
				} else {
					x = append(x, 0)
				}
			}
			continue
		}
		f, _ := l.Float()
		x = append(x, p.scale(f))
	}
	return x
}

// scale maps a value of a bounded parameter to [0, 1].
func (d Distribution) scale(f float64) float64 {
	if d.Type == LogUniform || d.Type == QLogUniform {
		f = math.Log(math.Max(f, 1e-300))
	}
	if d.MaxValue == d.MinValue {
		return 0
	}
	return (f - d.MinValue) / (d.MaxValue - d.MinValue)
}

// toUnit is the point of the unit cube an assignment came from, near
// enough to search around it; ok is false for values outside the space.
func (c *Config) toUnit(a Assignment) ([]float64, bool) {
	u := make([]float64, len(c.SearchSpace))
	for i, p := range c.SearchSpace {
		l, found := a[p.Name]
		if !found {
			return nil, false
		}
		switch p.Type {
		case Choice:
			k := slices.Index(p.Values, l)
			if k < 0 {
				return nil, false
			}
			u[i] = (float64(k) + 0.5) / float64(len(p.Values))
		case Uniform, QUniform, LogUniform, QLogUniform:
			f, ok := l.Float()
			if !ok {
				return nil, false
			}
			u[i] = math.Min(math.Max(p.scale(f), 0), 1)
		default:
			return nil, false
		}
	}
	return u, true
}

func meanStd(ys []float64) (mean, sd float64) {
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	for _, y := range ys {
		sd += (y - mean) * (y - mean)
	}
	sd = math.Sqrt(sd / float64(len(ys)))
	if sd == 0 {
		sd = 1
	}
	return mean, sd
}

// gp is a Gaussian process with a squared exponential kernel, conditioned
// on observations.
type gp struct {
	xs    [][]float64
	scale float64
	chol  mat.Cholesky
	alpha *mat.VecDense
}

func kernel(a, b []float64, scale float64) float64 {
	d := 0.0
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Exp(-d / (2 * scale * scale))
}

// fitGP conditions a process on the observations, with the length scale
// of greatest marginal likelihood; nil if none can be factorised.
func fitGP(xs [][]float64, ys []float64) *gp {
	n := len(xs)
	y := mat.NewVecDense(n, slices.Clone(ys))
	var best *gp
	bestLL := math.Inf(-1)
	for _, scale := range lengthScales {
		k := mat.NewSymDense(n, nil)
		for i := range n {
			for j := i; j < n; j++ {
				v := kernel(xs[i], xs[j], scale)
				if i == j {
					v += gpNoise
				}
				k.SetSym(i, j, v)
			}
		}
		g := &gp{xs: xs, scale: scale}
		if !g.chol.Factorize(k) {
			continue
		}
		g.alpha = mat.NewVecDense(n, nil)
		if err := g.chol.SolveVecTo(g.alpha, y); err != nil {
			continue
		}
		ll := -0.5*mat.Dot(y, g.alpha) - 0.5*g.chol.LogDet()
		if ll > bestLL {
			best, bestLL = g, ll
		}
	}
	return best
}

// predict is the process's mean and standard deviation at x.
func (g *gp) predict(x []float64) (mu, sigma float64) {
	n := len(g.xs)
	ks := mat.NewVecDense(n, nil)
	for i, xi := range g.xs {
		ks.SetVec(i, kernel(x, xi, g.scale))
	}
	mu = mat.Dot(ks, g.alpha)
	v := mat.NewVecDense(n, nil)
	if err := g.chol.SolveVecTo(v, ks); err != nil {
		return mu, 0
	}
	variance := 1 + gpNoise - mat.Dot(ks, v)
	return mu, math.Sqrt(math.Max(variance, 0))
}

// expectedImprovement is how much a point is expected to improve on best.
func expectedImprovement(mu, sigma, best float64) float64 {
	gain := mu - best - improvementMin
	if sigma < 1e-12 {
		return math.Max(gain, 0)
	}
	z := gain / sigma
	return gain*distuv.UnitNormal.CDF(z) + sigma*distuv.UnitNormal.Prob(z)
}
