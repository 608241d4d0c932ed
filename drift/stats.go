package drift

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// numericComparison is what one merge of two sorted columns yields.
type numericComparison struct {
	nRef, nProd int64
	edges       []float64
	refBins     []int64
	prodBins    []int64
	wasserstein float64
	ksD         float64
}

// sturgesBins is Azure's bin count: ceil(log2(n) + 1), n being the row
// count of the smaller dataset.
func sturgesBins(n int64) int {
	if n < 1 {
		return 1
	}
	return int(math.Ceil(math.Log2(float64(n)) + 1))
}

// binEdges are k equal-width bins over [lo, hi] as numpy.linspace makes
// them; one bin [lo, lo*1.01] when lo == hi.
func binEdges(lo, hi float64, k int) []float64 {
	if lo == hi {
		return []float64{lo, lo * 1.01}
	}
	e := make([]float64, k+1)
	step := (hi - lo) / float64(k)
	for i := 0; i < k; i++ {
		e[i] = float64(float64(i)*step) + lo
	}
	e[k] = hi
	return e
}

// compareSorted merges two sorted columns once: the shared histogram,
// scipy's wasserstein_distance (the integral of |F - G|) and the KS
// statistic (the largest |F - G| at a data point).
func compareSorted(ref, prod stream, nRef, nProd int64, lo, hi float64) (*numericComparison, error) {
	k := sturgesBins(min(nRef, nProd))
	c := &numericComparison{nRef: nRef, nProd: nProd, edges: binEdges(lo, hi, k)}
	nb := len(c.edges) - 1
	c.refBins = make([]int64, nb)
	c.prodBins = make([]int64, nb)
	a, okA, err := ref.next()
	if err != nil {
		return nil, err
	}
	b, okB, err := prod.next()
	if err != nil {
		return nil, err
	}
	var cu, cv int64 // values of each column at or below the last one taken
	var sum, comp float64
	var maxS, minS float64 // largest F-G and largest G-F
	fu, fv := float64(nRef), float64(nProd)
	bin := 0
	prev := math.NaN()
	for okA || okB {
		fromRef := okA && (!okB || a <= b)
		x := b
		if fromRef {
			x = a
		}
		if prev == prev && x != prev {
			// The step from prev to x, with every value <= prev counted.
			diff := float64(cu)/fu - float64(cv)/fv
			term := math.Abs(diff) * (x - prev)
			y := term - comp
			t := sum + y
			comp = (t - sum) - y
			sum = t
			if diff > maxS {
				maxS = diff
			}
			if -diff > minS {
				minS = -diff
			}
		}
		for bin < nb-1 && x >= c.edges[bin+1] {
			bin++
		}
		if fromRef {
			cu++
			c.refBins[bin]++
			if a, okA, err = ref.next(); err != nil {
				return nil, err
			}
		} else {
			cv++
			c.prodBins[bin]++
			if b, okB, err = prod.next(); err != nil {
				return nil, err
			}
		}
		prev = x
	}
	// At the last value both CDFs are 1.
	c.wasserstein = sum
	c.ksD = maxS
	if minS > maxS {
		c.ksD = minS
	}
	return c, nil
}

// jensenShannon is scipy.spatial.distance.jensenshannon(p, q, base=2) of
// two count vectors.
func jensenShannon(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	var js float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		js += relEntr(pi, m) + relEntr(qi, m)
	}
	js /= math.Ln2
	if js < 0 {
		return 0
	}
	return math.Sqrt(js / 2)
}

// relEntr is scipy.special.rel_entr.
func relEntr(x, y float64) float64 {
	switch {
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	}
	return math.Inf(1)
}

// psi is Azure's population stability index: every count + 1, divided by
// the dataset's row count.
func psi(ref, prod []float64, nRef, nProd float64) float64 {
	var s float64
	for i := range ref {
		pb := (ref[i] + 1) / nRef
		pp := (prod[i] + 1) / nProd
		s += (pp - pb) * math.Log(pp/pb)
	}
	return s
}

// chiSquaredP is the p-value of scipy.stats.chisquare(observed, expected)
// with observed the production counts and expected the reference
// proportions times the production row count.
func chiSquaredP(ref, prod []float64, nRef, nProd float64) float64 {
	k := len(ref)
	if k < 2 {
		return math.NaN()
	}
	var stat float64
	for i := range ref {
		exp := ref[i] / nRef * nProd
		d := prod[i] - exp
		stat += d * d / exp
	}
	if math.IsInf(stat, 1) || math.IsNaN(stat) {
		return 0
	}
	return distuv.ChiSquared{K: float64(k - 1)}.Survival(stat)
}

func toFloats(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// categoryCounts aligns two category count maps on the union of their
// categories, in sorted order.
func categoryCounts(ref, prod map[string]int64) (names []string, r, p []float64) {
	seen := make(map[string]bool, len(ref)+len(prod))
	for k := range ref {
		seen[k] = true
	}
	for k := range prod {
		seen[k] = true
	}
	names = make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	r = make([]float64, len(names))
	p = make([]float64, len(names))
	for i, k := range names {
		r[i] = float64(ref[k])
		p[i] = float64(prod[k])
	}
	return names, r, p
}

// ksTwoSampleP is the exact two-sided p-value scipy.stats.ks_2samp gives
// (its default method for samples of at most 10,000 values) for the
// statistic d of samples of sizes n1 and n2.
func ksTwoSampleP(d float64, n1, n2 int64) float64 {
	g := gcd(n1, n2)
	lcm := (n1 / g) * n2
	h := int64(math.Round(d * float64(lcm)))
	if h == 0 {
		return 1
	}
	var p float64
	if n1 == n2 {
		p = ksOutsideSquare(n1, h)
	} else {
		p = ksOutsideBand(n1, n2, g, h)
	}
	return math.Max(0, math.Min(1, p))
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksOutsideSquare is P(D(n,n) >= h/n): twice the alternating sum of
// binom(2n, n-jh)/binom(2n, n), evaluated from the innermost term out so
// that no term is subtracted from a much larger one.
func ksOutsideSquare(n, h int64) float64 {
	p := 0.0
	for k := n / h; k >= 0; k-- {
		// a = binom(2n, n-kh)/binom(2n, n-(k-1)h), a product of h ratios.
		a := 1.0
		for j := int64(0); j < h; j++ {
			a = float64(n-k*h-j) * a / float64(n+k*h+j+1)
		}
		p = a * (1 - p)
	}
	return 2 * p
}

// ksOutsideBand is the share of lattice paths from (0,0) to (m,n) that
// leave the band |x/m - y/n| < h/lcm(m,n), computed as 1 minus the share
// that stays inside, one column at a time over a sliding window of the
// band, each entry normalized by its binomial coefficient (Hodges;
// Viehmann 2021).
func ksOutsideBand(m, n, g, h int64) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	ceilDiv := func(a, b int64) int64 { return int64(math.Ceil(float64(a) / float64(b))) }
	floorDiv := func(a, b int64) int64 { return int64(math.Floor(float64(a) / float64(b))) }
	lo, hi := int64(0), min(ceilDiv(h, mg), n+1)
	width := hi - lo
	size := min(2*hi+2, n+1)
	col := make([]float64, size)
	for j := range col {
		col[j] = 1
	}
	for j := lo; j < hi; j++ {
		col[j] = 0
	}
	for i := int64(1); i <= m; i++ {
		lastLo, lastWidth := lo, width
		lo = max(floorDiv(ng*i-h, mg)+1, 0)
		lo = min(lo, n)
		hi = min(ceilDiv(ng*i+h, mg), n+1)
		if hi <= lo {
			return 1
		}
		v := 1.0
		if lo == 0 {
			v = 0
		}
		fi := float64(i)
		for jj := int64(0); jj < hi-lo; jj++ {
			j := jj + lo
			v = (col[jj+lo-lastLo]*fi + v*float64(j)) / (fi + float64(j))
			col[jj] = v
		}
		width = hi - lo
		for k := width; k < lastWidth && k < int64(len(col)); k++ {
			col[k] = 1 // carried over from a wider window
		}
	}
	return col[hi-lo-1]
}
