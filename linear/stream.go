package linear

import (
	"errors"
	"fmt"
	"math"

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
	buf  []float64
}

// NewMoments returns empty moments for k features.
func NewMoments(k int) *Moments {
	return &Moments{k: k, mean: make([]float64, k+1), c: make([]float64, (k+1)*(k+1))}
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
	m.merge(float64(nb), mean, cb)
	return nil
}

// Merge adds the rows accumulated by o, so batches can be accumulated in
// parallel.
func (m *Moments) Merge(o *Moments) {
	if o.n > 0 {
		m.merge(o.n, o.mean, o.c)
	}
}

func (m *Moments) merge(nb float64, mean, c []float64) {
	p := m.k + 1
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
// keeps; the caller should fit with a QRAccumulator instead.
var ErrIllConditioned = errors.New("linear: the features are nearly collinear")

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
// number first; see ErrIllConditioned.
func (m *Moments) Solve(columns []string, alpha float64) (*Model, Fitted, error) {
	k, p := m.k, m.k+1
	switch {
	case len(columns) != k:
		return nil, Fitted{}, fmt.Errorf("linear: %d column names for %d features", len(columns), k)
	case m.n == 0:
		return nil, Fitted{}, errors.New("linear: no rows to fit")
	case alpha == 0 && m.n <= float64(k):
		return nil, Fitted{}, fmt.Errorf("linear: %d rows cannot determine %d coefficients and an intercept", int64(m.n), k)
	}
	d := make([]float64, k)
	for j := range d {
		d[j] = math.Sqrt(m.c[j*p+j])
		if d[j] == 0 {
			return nil, Fitted{}, fmt.Errorf("linear: feature %s is constant, so its coefficient is undetermined; leave it out", columns[j])
		}
	}
	s := mat.NewSymDense(k, nil)
	rhs := mat.NewVecDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			v := m.c[i*p+j] / (d[i] * d[j])
			if i == j {
				v += alpha / (d[i] * d[i])
			}
			s.SetSym(i, j, v)
		}
		rhs.SetVec(i, m.c[i*p+k]/d[i])
	}
	var ch mat.Cholesky
	if !ch.Factorize(s) || (alpha == 0 && ch.Cond() > maxCond) {
		return nil, Fitted{}, ErrIllConditioned
	}
	var g mat.VecDense
	if err := ch.SolveVecTo(&g, rhs); err != nil {
		return nil, Fitted{}, ErrIllConditioned
	}
	model := &Model{Columns: append([]string(nil), columns...), Coef: make([]float64, k), Intercept: m.mean[k]}
	for j := range model.Coef {
		model.Coef[j] = g.AtVec(j) / d[j]
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
	k     int
	r     []float64 // (k+2)² row-major: the R factor of [1 X y], upper triangle
	n     int64
	block []float64 // qrBlockRows×(k+2), column-major scratch
}

// qrBlockRows keeps a block of the taxi data's 22 columns within a
// core's L2 cache (22 × 2048 × 8 bytes ≈ 360 KB).
const qrBlockRows = 2048

// NewQRAccumulator returns an empty accumulator for k features.
func NewQRAccumulator(k int) *QRAccumulator {
	return &QRAccumulator{k: k, r: make([]float64, (k+2)*(k+2))}
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
	q.n += o.n
}

// at is R[i,j].
func (q *QRAccumulator) at(i, j int) float64 { return q.r[i*(q.k+2)+j] }

// Fitted returns the training scores from the R factor of [1 X y]: the
// residual sum of squares is its last diagonal entry squared, and the
// target's centred sum of squares the rest of its last column below the
// intercept row.
func (q *QRAccumulator) Fitted() Fitted {
	p := q.k + 2
	f := Fitted{Rows: q.n, R2: 1}
	if q.n == 0 {
		return f
	}
	sse := q.at(p-1, p-1) * q.at(p-1, p-1)
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

// Solve returns the least-squares model: R[:k+1,:k+1]·β = R[:k+1,k+1].
func (q *QRAccumulator) Solve(columns []string) (*Model, error) {
	k := q.k
	if q.n <= int64(k) {
		return nil, fmt.Errorf("linear: %d rows cannot determine %d coefficients and an intercept", q.n, k)
	}
	// A column that the columns before it (the intercept first) explain
	// to within rounding leaves a diagonal entry of R that is tiny next
	// to the column's own norm: its coefficient would be noise.
	for j := 1; j <= k; j++ {
		var norm float64
		for i := 0; i <= j; i++ {
			norm += q.at(i, j) * q.at(i, j)
		}
		if math.Abs(q.at(j, j)) <= 1e-10*math.Sqrt(norm) {
			what := "is constant"
			if j > 1 {
				what = "is a linear combination of the intercept and the features before it (a copy of one?)"
			}
			return nil, fmt.Errorf("linear: feature %s %s, so the fit is singular; leave it out", columns[j-1], what)
		}
	}
	r := mat.NewTriDense(k+1, mat.Upper, nil)
	b := mat.NewVecDense(k+1, nil)
	for i := 0; i <= k; i++ {
		for j := i; j <= k; j++ {
			r.SetTri(i, j, q.at(i, j))
		}
		b.SetVec(i, q.at(i, k+1))
	}
	var beta mat.VecDense
	if err := beta.SolveVec(r, b); err != nil {
		return nil, fmt.Errorf("linear: %w (are two columns the same, or one constant?)", err)
	}
	for i := 0; i <= k; i++ {
		if math.IsNaN(beta.AtVec(i)) || math.IsInf(beta.AtVec(i), 0) {
			return nil, errors.New("linear: the features are linearly dependent (are two columns the same, or one constant?)")
		}
	}
	m := &Model{Columns: append([]string(nil), columns...), Intercept: beta.AtVec(0), Coef: make([]float64, k)}
	for j := range m.Coef {
		m.Coef[j] = beta.AtVec(j + 1)
	}
	return m, nil
}
