package sweep

import (
	"math"
	"math/rand/v2"
	"strconv"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distmv"
	"gonum.org/v1/gonum/stat/distuv"
	"gonum.org/v1/gonum/stat/samplemv"
)

// Assignment is one trial's hyperparameter values, by name.
type Assignment map[string]Literal

// Observation is an earlier trial: its values and, once it reported one,
// the last value of its primary metric.
type Observation struct {
	Params Assignment
	Value  float64
	// HasValue is false for a trial that has not reported the metric yet
	// (it is running, or failed before it did).
	HasValue bool
}

// GridSize is how many trials grid sampling has, or -1 when the search
// space has a parameter other than choice.
func (c *Config) GridSize() int {
	n := 1
	for _, p := range c.SearchSpace {
		if p.Type != Choice {
			return -1
		}
		n *= len(p.Values)
	}
	return n
}

// Next returns the values of trial number n (counted from 0), given the
// trials before it; ok is false when the algorithm has nothing left to
// propose (grid sampling past its last combination). Random and grid
// trials depend only on n and the seed, and a Bayesian one on the earlier
// trials too: the same stored trials always give the same next one.
func (c *Config) Next(n int, history []Observation) (a Assignment, ok bool) {
	switch c.Sampling.Type {
	case Grid:
		return c.gridPoint(n)
	case Bayesian:
		return c.bayesian(n, history), true
	}
	if c.Sampling.Rule == RuleSobol {
		return c.fromUnit(c.lowDiscrepancy(n)), true
	}
	return c.fromUnit(c.unitPoint(n)), true
}

// gridPoint is the n-th combination, counting with the last parameter
// (in name order) changing fastest.
func (c *Config) gridPoint(n int) (Assignment, bool) {
	size := c.GridSize()
	if size < 0 || n >= size {
		return nil, false
	}
	a := Assignment{}
	for i := len(c.SearchSpace) - 1; i >= 0; i-- {
		p := c.SearchSpace[i]
		k := len(p.Values)
		a[p.Name] = p.Values[n%k]
		n /= k
	}
	return a, true
}

// rng is the random source of trial n: the seed and the trial's number
// decide it, so that no other trial's draws shift it.
func (c *Config) rng(n int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(c.Sampling.Seed), uint64(n)+1))
}

// unitPoint draws a point of the unit cube for trial n.
func (c *Config) unitPoint(n int) []float64 {
	r := c.rng(n)
	u := make([]float64, len(c.SearchSpace))
	for i := range u {
		u[i] = r.Float64()
	}
	return u
}

// lowDiscrepancy is point n of a scrambled Halton sequence (Owen's
// randomisation, seeded), which covers the cube more evenly than
// independent draws.
func (c *Config) lowDiscrepancy(n int) []float64 {
	d := len(c.SearchSpace)
	if d == 0 {
		return nil
	}
	batch := mat.NewDense(n+1, d, nil)
	samplemv.Halton{Kind: samplemv.Owen, Q: distmv.NewUnitUniform(d, nil),
		Src: rand.NewPCG(uint64(c.Sampling.Seed), 0)}.Sample(batch)
	return batch.RawRowView(n)
}

// fromUnit maps a point of the unit cube onto the search space.
func (c *Config) fromUnit(u []float64) Assignment {
	a := Assignment{}
	for i, p := range c.SearchSpace {
		a[p.Name] = p.FromUnit(u[i])
	}
	return a
}

// FromUnit maps u in [0, 1) onto the distribution: its quantile.
func (d Distribution) FromUnit(u float64) Literal {
	u = math.Min(math.Max(u, 0), math.Nextafter(1, 0))
	span := func() float64 { return d.MinValue + u*(d.MaxValue-d.MinValue) }
	normal := func() float64 {
		return d.Mu + d.Sigma*distuv.UnitNormal.Quantile(math.Min(math.Max(u, 1e-12), 1-1e-12))
	}
	switch d.Type {
	case Choice:
		return d.Values[min(int(u*float64(len(d.Values))), len(d.Values)-1)]
	case Randint:
		return IntLiteral(int64(min(int(u*float64(d.Upper)), d.Upper-1)))
	case Uniform:
		return FloatLiteral(span())
	case LogUniform:
		return FloatLiteral(math.Exp(span()))
	case QUniform:
		return d.quantise(span())
	case QLogUniform:
		return d.quantise(math.Exp(span()))
	case Normal:
		return FloatLiteral(normal())
	case LogNormal:
		return FloatLiteral(math.Exp(normal()))
	case QNormal:
		return d.quantise(normal())
	case QLogNormal:
		return d.quantise(math.Exp(normal()))
	}
	return Literal{}
}

// quantise rounds x to a multiple of q, as round(x / q) * q. With a whole
// q the result is an integer and is written as one, so that a script can
// read it with int(); otherwise it is a float, with the noise of binary
// arithmetic (0.30000000000000004) rounded away.
func (d Distribution) quantise(x float64) Literal {
	v := math.Round(x/d.Q) * d.Q
	if d.Q == math.Trunc(d.Q) && math.Abs(v) < 1<<53 {
		return IntLiteral(int64(v))
	}
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return FloatLiteral(v)
}
