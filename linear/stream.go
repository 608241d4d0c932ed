package linear

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Moments accumulates, a batch of rows at a time, the means and centred
// cross-products of the features and the target. A fit from them needs
// one pass over the data and memory that does not grow with the row
// count. Batches are merged with the pairwise update of Chan, Golub and
// LeVeque, which keeps the centring exact instead of subtracting large
// raw sums (the classic loss of precision of the normal equations).
type Moments struct {
	k    int       // features; the target is column k
	n    float64   // rows so far
	mean []float64 // k+1 means
	c    []float64 // (k+1)² centred cross-products, row-major, upper triangle kept
	consts
	buf []float64
}

// NewMoments returns empty moments for k features.
func NewMoments(k int) *Moments {
	return &Moments{k: k, mean: make([]float64, k+1), c: make([]float64, (k+1)*(k+1)), consts: newConsts(k + 1)}
}

// consts tells which columns hold one value in every row. The centred sum
// of squares cannot tell: a batch's mean of a constant such as 0.1 may be
// a bit off the value, leaving residues of 1e-17 whose "variation" a
// solver on the correlation scale would fit.
type consts struct {
	first  []float64 // each column's first value
	varies []bool    // a value differs from first
}

func newConsts(n int) consts {
	return consts{first: make([]float64, n), varies: make([]bool, n)}
}

// observe notes column j's values, the first ones seen when fresh. It
// stops at the first value that differs, so a varying column costs a
// compare or two per batch.
func (c consts) observe(j int, vals []float64, fresh bool) {
	if len(vals) == 0 {
		return
	}
	if fresh {
		c.first[j], c.varies[j] = vals[0], false
	}
	if c.varies[j] {
		return
	}
	for _, v := range vals {
		if v != c.first[j] {
			c.varies[j] = true
			return
		}
	}
}

// merge folds o's columns into c's; fresh when c has seen no rows.
func (c consts) merge(o consts, fresh bool) {
	for j := range c.first {
		if fresh {
			c.first[j], c.varies[j] = o.first[j], o.varies[j]
		} else {
			c.varies[j] = c.varies[j] || o.varies[j] || o.first[j] != c.first[j]
		}
	}
}

// Rows is how many rows were added.
func (m *Moments) Rows() int64 { return int64(m.n) }

// Add accumulates a batch given by columns: x[j] holds feature j's
// values, y the targets; every slice has the same length. A NaN or
// infinite value is an error naming its column and row in the batch.
func (m *Moments) Add(x [][]float64, y []float64) error {
	p := m.k + 1
	if len(x) != m.k {
		return fmt.Errorf("linear: %d feature columns, want %d", len(x), m.k)
	}
	nb := len(y)
	if nb == 0 {
		return nil
	}
	cols := append(append(make([][]float64, 0, p), x...), y)
	mean := make([]float64, p)
	batch := newConsts(p)
	for j, col := range cols {
		if len(col) != nb {
			return fmt.Errorf("linear: column %d has %d values, the target %d", j, len(col), nb)
		}
		var s float64
		for r, v := range col {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return &ValueError{Column: j, Row: r, Value: v}
			}
			s += v
		}
		mean[j] = s / float64(nb)
		batch.observe(j, col, true)
	}
	// The batch, centred on its own means, row-major for the rank-k
	// update below.
	if cap(m.buf) < nb*p {
		m.buf = make([]float64, nb*p)
	}
	a := m.buf[:nb*p]
	for j, col := range cols {
		mu := mean[j]
		for r, v := range col {
			a[r*p+j] = v - mu
		}
	}
	cb := make([]float64, p*p)
	blas64.Syrk(blas.Trans, 1, blas64.General{Rows: nb, Cols: p, Stride: p, Data: a}, 0,
		blas64.Symmetric{Uplo: blas.Upper, N: p, Stride: p, Data: cb})
	m.merge(float64(nb), mean, cb, batch)
	return nil
}

// Merge adds the rows accumulated by o, so batches can be accumulated in
// parallel.
func (m *Moments) Merge(o *Moments) {
	if o.n > 0 {
		m.merge(o.n, o.mean, o.c, o.consts)
	}
}

func (m *Moments) merge(nb float64, mean, c []float64, cs consts) {
	p := m.k + 1
	m.consts.merge(cs, m.n == 0)
	if m.n == 0 {
		m.n = nb
		copy(m.mean, mean)
		copy(m.c, c)
		return
	}
	n := m.n + nb
	f := m.n * nb / n
	delta := make([]float64, p)
	for j := range delta {
		delta[j] = mean[j] - m.mean[j]
	}
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			m.c[i*p+j] += c[i*p+j] + f*delta[i]*delta[j]
		}
	}
	for j := range m.mean {
		m.mean[j] += delta[j] * nb / n
	}
	m.n = n
}

// ValueError is a value a least-squares fit cannot use.
type ValueError struct {
	Column, Row int
	Value       float64
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("linear: column %d row %d is %v", e.Column, e.Row, e.Value)
}

// ErrIllConditioned is returned by Solve when the features are so nearly
// collinear that the normal equations would lose the precision a QR fit
// keeps, or exactly collinear (a feature a copy or a combination of
// others, or no more rows than coefficients), where the least-squares
// coefficients are many and the normal equations cannot pick the
// minimum-norm ones; the caller should fit with a QRAccumulator instead.
var ErrIllConditioned = errors.New("linear: the features are nearly collinear")

// underdetermined is ErrIllConditioned for too few rows, saying so.
type underdetermined struct {
	rows int64
	k    int
}

func (e *underdetermined) Error() string {
	return fmt.Sprintf("linear: %d rows cannot determine %d coefficients and an intercept", e.rows, e.k)
}

func (e *underdetermined) Unwrap() error { return ErrIllConditioned }

// maxCond is the largest condition number of the features' correlation
// matrix Solve accepts. The solution's relative error grows with the
// condition number times the machine epsilon (2.2e-16) times a modest
// factor: on the real taxi sample (condition 1.1e5, from the nearly equal
// pickup and dropoff day columns) it was 4e-9. Below 1e4 the error stays
// under about 1e-10, which is what the solver promises; above, QR.
const maxCond = 1e4

// Solve returns the least-squares (alpha = 0) or ridge (alpha > 0)
// model: minimise |y - b - Xw|² + alpha·|w|², the intercept b
// unpenalised, as scikit-learn's LinearRegression and Ridge do. It
// solves on the correlation scale by Cholesky and checks the condition
// number first; see ErrIllConditioned. A constant feature gets
// coefficient 0: centred, its column is zero, so 0 is the minimum-norm
// least-squares coefficient, as scikit-learn's, and the ridge one.
func (m *Moments) Solve(columns []string, alpha float64) (*Model, Fitted, error) {
	k, p := m.k, m.k+1
	switch {
	case len(columns) != k:
		return nil, Fitted{}, fmt.Errorf("linear: %d column names for %d features", len(columns), k)
	case m.n == 0:
		return nil, Fitted{}, errors.New("linear: no rows to fit")
	}
	var keep []int
	for j := range k {
		if m.varies[j] && m.c[j*p+j] > 0 {
			keep = append(keep, j)
		}
	}
	if alpha == 0 && m.n <= float64(len(keep)) {
		return nil, Fitted{}, &underdetermined{rows: int64(m.n), k: len(keep)}
	}
	model := &Model{Columns: append([]string(nil), columns...), Coef: make([]float64, k), Intercept: m.mean[k]}
	if len(keep) == 0 {
		return model, m.fitted(model), nil
	}
	q := len(keep)
	d := make([]float64, q)
	for a, j := range keep {
		d[a] = math.Sqrt(m.c[j*p+j])
	}
	s := mat.NewSymDense(q, nil)
	rhs := mat.NewVecDense(q, nil)
	for a, i := range keep {
		for b := a; b < q; b++ {
			j := keep[b]
			v := m.c[i*p+j] / (d[a] * d[b])
			if a == b {
				v += alpha / (d[a] * d[a])
			}
			s.SetSym(a, b, v)
		}
		rhs.SetVec(a, m.c[i*p+k]/d[a])
	}
	var ch mat.Cholesky
	if !ch.Factorize(s) || (alpha == 0 && ch.Cond() > maxCond) {
		return nil, Fitted{}, ErrIllConditioned
	}
	var g mat.VecDense
	if err := ch.SolveVecTo(&g, rhs); err != nil {
		return nil, Fitted{}, ErrIllConditioned
	}
	for a, j := range keep {
		model.Coef[j] = g.AtVec(a) / d[a]
		model.Intercept -= model.Coef[j] * m.mean[j]
	}
	return model, m.fitted(model), nil
}

// Fitted are a model's scores on its training rows, computed from the
// moments without another pass: SSE = Syy - 2w·Sxy + w·Sxx·w.
type Fitted struct {
	R2   float64
	RMSE float64
	Rows int64
}

func (m *Moments) fitted(model *Model) Fitted {
	k, p := m.k, m.k+1
	sym := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return m.c[i*p+j]
	}
	sse := sym(k, k)
	for i, wi := range model.Coef {
		sse -= 2 * wi * sym(i, k)
		for j, wj := range model.Coef {
			sse += wi * wj * sym(i, j)
		}
	}
	sse = math.Max(sse, 0)
	f := Fitted{Rows: int64(m.n), RMSE: math.Sqrt(sse / m.n), R2: 1}
	if syy := sym(k, k); syy > 0 {
		f.R2 = 1 - sse/syy
	}
	return f
}

// QRAccumulator fits by a QR decomposition updated a batch at a time,
// for data too collinear for Moments.Solve, and is as accurate as an
// in-memory QR. Each block of rows is annihilated into the running R
// factor by Householder reflections that only touch R's diagonal row and
// the block (the structured update of a triangle stacked on a dense
// block), so R's zeros cost nothing. The block is held column by column
// and sized to stay in cache, which turns every reflection into
// contiguous dot products and axpys.
type QRAccumulator struct {
	k int
	r []float64 // (k+2)² row-major: the R factor of [1 X y], upper triangle
	n int64
	consts
	block []float64 // qrBlockRows×(k+2), column-major scratch
}

// qrBlockRows keeps a block of the taxi data's 22 columns within a
// core's L2 cache (22 × 2048 × 8 bytes ≈ 360 KB).
const qrBlockRows = 2048

// NewQRAccumulator returns an empty accumulator for k features.
func NewQRAccumulator(k int) *QRAccumulator {
	return &QRAccumulator{k: k, r: make([]float64, (k+2)*(k+2)), consts: newConsts(k)}
}

// Add factorises a batch, given by columns as for Moments.Add, into the R
// factor.
func (q *QRAccumulator) Add(x [][]float64, y []float64) error {
	p := q.k + 2
	if len(x) != q.k {
		return fmt.Errorf("linear: %d feature columns, want %d", len(x), q.k)
	}
	nb := len(y)
	for j, col := range x {
		if len(col) != nb {
			return fmt.Errorf("linear: column %d has %d values, the target %d", j, len(col), nb)
		}
	}
	if cap(q.block) < qrBlockRows*p {
		q.block = make([]float64, qrBlockRows*p)
	}
	for lo := 0; lo < nb; lo += qrBlockRows {
		hi := min(lo+qrBlockRows, nb)
		m := hi - lo
		cols := make([][]float64, p)
		for j := range cols {
			cols[j] = q.block[j*m : (j+1)*m]
		}
		for i := range cols[0] {
			cols[0][i] = 1
		}
		for j := 0; j <= q.k; j++ {
			src := y[lo:hi]
			if j < q.k {
				src = x[j][lo:hi]
			}
			copy(cols[j+1], src)
			for r, v := range src {
				if v-v != 0 { // NaN or ±Inf
					return &ValueError{Column: j, Row: lo + r, Value: v}
				}
			}
			if j < q.k {
				q.observe(j, src, q.n == 0)
			}
		}
		q.annihilate(cols)
		q.n += int64(m)
	}
	return nil
}

// annihilate applies to [R; B] the p Householder reflections that zero the
// block B (given column by column, overwritten), leaving the R factor of
// both in q.r. Reflection j acts on R's row j and all of B; its vector is
// (1, B[:,j] scaled).
func (q *QRAccumulator) annihilate(b [][]float64) {
	p := q.k + 2
	r := q.r
	for j := 0; j < p; j++ {
		v := b[j]
		alpha := r[j*p+j]
		norm := math.Sqrt(blas64.Dot(vec(v), vec(v)))
		if math.IsInf(norm, 0) { // the squares overflowed; rescale
			norm = blas64.Nrm2(vec(v))
		}
		if norm == 0 {
			continue // nothing below the diagonal to zero
		}
		beta := -math.Copysign(math.Hypot(alpha, norm), alpha)
		tau := (beta - alpha) / beta
		blas64.Scal(1/(alpha-beta), vec(v))
		r[j*p+j] = beta
		for c := j + 1; c < p; c++ {
			w := tau * (r[j*p+c] + blas64.Dot(vec(v), vec(b[c])))
			r[j*p+c] -= w
			blas64.Axpy(-w, vec(v), vec(b[c]))
		}
	}
}

func vec(v []float64) blas64.Vector { return blas64.Vector{N: len(v), Inc: 1, Data: v} }

// Merge folds the rows accumulated by o into q: the two R factors
// stacked have the same R factor as all their rows.
func (q *QRAccumulator) Merge(o *QRAccumulator) {
	if o.n == 0 {
		return
	}
	p := q.k + 2
	cols := make([][]float64, p)
	for j := range cols {
		cols[j] = make([]float64, p)
		for i := range p {
			cols[j][i] = o.r[i*p+j]
		}
	}
	q.annihilate(cols)
	q.consts.merge(o.consts, q.n == 0)
	q.n += o.n
}

// at is R[i,j].
func (q *QRAccumulator) at(i, j int) float64 { return q.r[i*(q.k+2)+j] }

// Fitted returns the training scores from the R factor of [1 X y]: the
// residual sum of squares is its last diagonal entry squared when the
// design has full rank, and the target's centred sum of squares the rest
// of its last column below the intercept row. A rank-deficient design's
// residual also has a part in the directions its columns do not span,
// which the fit's coefficients give.
func (q *QRAccumulator) Fitted() Fitted {
	p := q.k + 2
	f := Fitted{Rows: q.n, R2: 1}
	if q.n == 0 {
		return f
	}
	sse := q.at(p-1, p-1) * q.at(p-1, p-1)
	if b, w, full, err := q.solve(); err == nil && !full {
		sse = 0
		for i := range p {
			e := q.at(i, 0)*b - q.at(i, p-1)
			for j, wj := range w {
				e += q.at(i, j+1) * wj
			}
			sse += e * e
		}
	}
	var sst float64
	for i := 1; i < p; i++ {
		sst += q.at(i, p-1) * q.at(i, p-1)
	}
	f.RMSE = math.Sqrt(sse / float64(q.n))
	if sst > 0 {
		f.R2 = 1 - sse/sst
	}
	return f
}

// Solve returns the least-squares model. When the centred design has full
// rank that is the one solution of R[:k+1,:k+1]·β = R[:k+1,k+1]; when it
// has not (a constant feature, a copy of one, a combination of others,
// fewer rows than coefficients) the coefficients are the minimum-norm
// ones, as scikit-learn's LinearRegression finds them: see solve.
func (q *QRAccumulator) Solve(columns []string) (*Model, error) {
	if len(columns) != q.k {
		return nil, fmt.Errorf("linear: %d column names for %d features", len(columns), q.k)
	}
	b, w, _, err := q.solve()
	if err != nil {
		return nil, err
	}
	return &Model{Columns: append([]string(nil), columns...), Intercept: b, Coef: w}, nil
}

// solve returns the intercept and coefficients of the least-squares fit,
// and whether the centred design has full rank.
//
// Below the intercept row, R's rows and columns 1..k are an R factor of
// the centred features, R22, and R[1:k+1,k+1] = r the centred target's
// part in their span, so min |Xc·w - yc| = min |R22·w - r| and the
// minimum-norm w is the same for both. That is scikit-learn's problem:
// LinearRegression centres X and y and hands them to scipy's lstsq,
// whose SVD solver takes the minimum-norm solution among singular values
// above a cutoff. Here the SVD is of R22, k×k whatever the row count. A
// constant feature's column is left out (its coefficient is 0: centred,
// it is zero, but in R it holds rounding). Singular values up to
// max(n, k)·ε times the largest count as zero, numpy's lstsq cutoff:
// rounding in R stays far below it, even after millions of rows, while a
// column that is independent by more than that is kept, as scikit-learn
// before 1.9 keeps it (1.9's default tol of 1e-6 also drops features
// whose scale is a millionth of another's). The intercept is then the
// target's mean less the features' means times w, from R's first row.
func (q *QRAccumulator) solve() (float64, []float64, bool, error) {
	k := q.k
	if q.n == 0 {
		return 0, nil, false, errors.New("linear: no rows to fit")
	}
	var keep []int
	for j := range k {
		if q.varies[j] {
			keep = append(keep, j)
		}
	}
	w := make([]float64, k)
	rank := 0
	var svd mat.SVD
	if len(keep) > 0 {
		s := mat.NewDense(k, len(keep), nil)
		for i := range k {
			for a, j := range keep {
				s.Set(i, a, q.at(i+1, j+1))
			}
		}
		if !svd.Factorize(s, mat.SVDThin) {
			return 0, nil, false, errors.New("linear: the singular value decomposition of the features did not converge")
		}
		sv := svd.Values(nil)
		cut := float64(max(q.n, int64(k))) * eps * sv[0]
		for _, v := range sv {
			if v > cut {
				rank++
			}
		}
	}
	r := make([]float64, k)
	for i := range k {
		r[i] = q.at(i+1, k+1)
	}
	full := rank == k
	switch {
	case full && k > 0:
		// The one solution, by back substitution on R22: its condition
		// number is below 1/(max(n, k)·ε), so gonum's warning about
		// condition numbers over 1e16 cannot concern it.
		r22 := mat.NewTriDense(k, mat.Upper, nil)
		for i := range k {
			for j := i; j < k; j++ {
				r22.SetTri(i, j, q.at(i+1, j+1))
			}
		}
		var sol mat.VecDense
		var cond mat.Condition
		if err := sol.SolveVec(r22, mat.NewVecDense(k, r)); err != nil && !errors.As(err, &cond) {
			return 0, nil, false, fmt.Errorf("linear: %w", err)
		}
		for j := range w {
			w[j] = sol.AtVec(j)
		}
	case rank > 0:
		var u, v mat.Dense
		svd.UTo(&u)
		svd.VTo(&v)
		sv := svd.Values(nil)
		for c := range rank {
			var z float64
			for i := range k {
				z += u.At(i, c) * r[i]
			}
			z /= sv[c]
			for a, j := range keep {
				w[j] += v.At(a, c) * z
			}
		}
	}
	b := q.at(0, k+1)
	for j, wj := range w {
		b -= q.at(0, j+1) * wj
	}
	b /= q.at(0, 0)
	if math.IsNaN(b) || math.IsInf(b, 0) || slices.ContainsFunc(w, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }) {
		return 0, nil, false, errors.New("linear: the least-squares coefficients overflow")
	}
	return b, w, full, nil
}

// eps is the float64 machine epsilon, 2⁻⁵².
const eps = 0x1p-52
