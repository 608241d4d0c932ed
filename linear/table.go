package linear

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/wharfml/wharf/tabular"
)

// Solvers of TrainOptions.Solver.
const (
	SolverAuto     = "auto"     // Cholesky on moments, QR when too collinear or rank-deficient
	SolverCholesky = "cholesky" // moments only; fails on collinear data
	SolverQR       = "qr"       // streaming QR
)

// TrainOptions configure Train.
type TrainOptions struct {
	Target string
	// Features are the columns to fit on; empty means every numeric
	// column but the target, less unnamed (index) and constant ones.
	Features []string
	Alpha    float64 // ridge penalty; 0 is ordinary least squares
	Solver   string
	// Workers accumulate batches in parallel (default: the CPU count).
	Workers int
}

// TrainReport tells how a model was fitted.
type TrainReport struct {
	Rows    int64    `json:"rows"`
	Solver  string   `json:"solver"`
	Dropped []string `json:"dropped_constant_columns,omitempty"`
	Fitted  Fitted   `json:"fitted"`
}

// Train fits a model on a table read once (twice when the automatic
// solver finds the data too collinear for the normal equations and falls
// back to QR). open is called for each pass. Without a ridge penalty, a
// rank-deficient design (a constant feature, one that copies or combines
// others, no more rows than features) gets the minimum-norm least-squares
// coefficients, as scikit-learn's LinearRegression does: its predictions
// are the least-squares ones, and equal features share a coefficient.
func Train(open func() (tabular.Reader, error), opt TrainOptions) (*Model, *TrainReport, error) {
	if opt.Solver == "" {
		opt.Solver = SolverAuto
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	switch opt.Solver {
	case SolverAuto, SolverCholesky, SolverQR:
	default:
		return nil, nil, fmt.Errorf("solver %q is not one of auto, cholesky, qr", opt.Solver)
	}
	if opt.Solver == SolverQR && opt.Alpha != 0 {
		return nil, nil, errors.New("the qr solver fits without a ridge penalty; use auto or cholesky with alpha")
	}
	r, err := open()
	if err != nil {
		return nil, nil, err
	}
	features, auto, err := pickFeatures(r.Columns(), opt)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	first, err := r.Next()
	if err != nil && err != io.EOF {
		r.Close()
		return nil, nil, err
	}
	if first != nil {
		r = &peeked{Reader: r, first: first}
	}
	if auto && first != nil {
		// Text columns are not features; the first batch tells which
		// columns are text.
		features = slices.DeleteFunc(features, func(c string) bool { return first.Num[first.Index(c)] == nil })
		if len(features) == 0 {
			r.Close()
			return nil, nil, fmt.Errorf("no numeric feature column besides %q", opt.Target)
		}
	}
	if opt.Solver == SolverAuto && opt.Alpha == 0 && first != nil && sampleIllConditioned(first, features, opt.Target) {
		// The first batch already shows the data too collinear for the
		// normal equations: one QR pass instead of a wasted moments pass.
		opt.Solver = SolverQR
	}
	report := &TrainReport{Solver: opt.Solver}
	all := features
	if opt.Solver != SolverQR {
		mom, err := accumulate(r, features, opt, func() adder { return NewMoments(len(features)) })
		r.Close()
		if err != nil {
			return nil, nil, err
		}
		m := mom.(*Moments)
		if m.Rows() == 0 {
			return nil, nil, errors.New("the data has no rows")
		}
		if auto {
			var keep []int
			for j, c := range features {
				if !m.varies[j] {
					report.Dropped = append(report.Dropped, c)
				} else {
					keep = append(keep, j)
				}
			}
			if len(report.Dropped) > 0 {
				m = m.subset(keep)
				features = pick(features, keep)
			}
		}
		model, fitted, err := m.Solve(features, opt.Alpha)
		report.Rows, report.Fitted = m.Rows(), fitted
		if err == nil {
			report.Solver = SolverCholesky
			return widen(model, all), report, nil
		}
		if !errors.Is(err, ErrIllConditioned) || opt.Solver == SolverCholesky {
			return nil, nil, err
		}
		if opt.Alpha != 0 {
			return nil, nil, fmt.Errorf("%w even with alpha %g", err, opt.Alpha)
		}
		if r, err = open(); err != nil {
			return nil, nil, err
		}
	}
	q, err := accumulate(r, features, opt, func() adder { return NewQRAccumulator(len(features)) })
	r.Close()
	if err != nil {
		return nil, nil, err
	}
	qa := q.(*QRAccumulator)
	if auto {
		// Constant columns are still here when QR was the first pass.
		for j, c := range features {
			if !qa.varies[j] {
				report.Dropped = append(report.Dropped, c)
			}
		}
	}
	model, err := qa.Solve(features)
	if err != nil {
		return nil, nil, err
	}
	report.Solver, report.Rows, report.Fitted = SolverQR, qa.n, qa.Fitted()
	return widen(model, all), report, nil
}

// widen gives the model every column of cols, in that order, a column it
// was not fitted on (a constant one) with coefficient 0, as
// scikit-learn's least squares leaves it: the model then takes the same
// rows as the data it was trained on.
func widen(m *Model, cols []string) *Model {
	if len(cols) == len(m.Columns) {
		return m
	}
	coef := map[string]float64{}
	for j, c := range m.Columns {
		coef[c] = m.Coef[j]
	}
	out := &Model{Columns: append([]string(nil), cols...), Coef: make([]float64, len(cols)), Intercept: m.Intercept}
	for j, c := range cols {
		out.Coef[j] = coef[c]
	}
	return out
}

// pickFeatures returns the feature columns and whether they were chosen
// automatically.
func pickFeatures(cols []string, opt TrainOptions) ([]string, bool, error) {
	if !slices.Contains(cols, opt.Target) {
		return nil, false, fmt.Errorf("target column %q is not in the data (columns: %s)", opt.Target, strings.Join(cols, ", "))
	}
	if len(opt.Features) > 0 {
		var missing []string
		for _, f := range opt.Features {
			if !slices.Contains(cols, f) {
				missing = append(missing, f)
			}
			if f == opt.Target {
				return nil, false, fmt.Errorf("the target %q cannot also be a feature", f)
			}
		}
		if len(missing) > 0 {
			return nil, false, &tabular.ColumnsError{Missing: missing, Have: cols}
		}
		return opt.Features, false, nil
	}
	var out []string
	for _, c := range cols {
		if c != opt.Target && c != "" && !strings.HasPrefix(c, "Unnamed: ") {
			out = append(out, c)
		}
	}
	return out, true, nil
}

// sampleIllConditioned tells whether the moments of one batch are too
// ill-conditioned to solve, when none of its columns is constant (a
// constant column needs the full pass to be told apart).
func sampleIllConditioned(f *tabular.Frame, features []string, target string) bool {
	x := make([][]float64, len(features))
	for j, c := range features {
		col, err := f.Numeric(f.Index(c))
		if err != nil {
			return false
		}
		x[j] = col
	}
	y, err := f.Numeric(f.Index(target))
	if err != nil {
		return false
	}
	m := NewMoments(len(features))
	if m.Add(x, y) != nil || m.n <= float64(len(features))*10 {
		return false
	}
	for j := range features {
		if !m.varies[j] {
			return false
		}
	}
	_, _, err = m.Solve(features, 0)
	return errors.Is(err, ErrIllConditioned)
}

// peeked gives back a batch already read before the rest.
type peeked struct {
	tabular.Reader
	first *tabular.Frame
}

func (p *peeked) Next() (*tabular.Frame, error) {
	if f := p.first; f != nil {
		p.first = nil
		return f, nil
	}
	return p.Reader.Next()
}

// adder is what accumulate feeds batches to.
type adder interface {
	Add(x [][]float64, y []float64) error
}

// accumulate reads every batch and adds it to per-worker accumulators,
// merged at the end. In automatic feature mode a text column is dropped
// by the first batch; a text value in a chosen column is an error.
//
// Batch i goes to worker i mod Workers, and the accumulators are merged in
// worker order, so the floating-point sums are the same on every run over
// the same batches: the same data gives the same model to the last bit,
// however the goroutines happen to be scheduled.
func accumulate(r tabular.Reader, features []string, opt TrainOptions, fresh func() adder) (adder, error) {
	type job struct {
		x [][]float64
		y []float64
	}
	jobs := make([]chan job, opt.Workers)
	accs := make([]adder, opt.Workers)
	errs := make([]error, opt.Workers)
	var wg sync.WaitGroup
	for w := range accs {
		accs[w] = fresh()
		jobs[w] = make(chan job, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs[w] {
				if errs[w] == nil {
					errs[w] = accs[w].Add(j.x, j.y)
				}
			}
		}()
	}
	var readErr error
	for batch := 0; ; batch++ {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		x := make([][]float64, len(features))
		for j, c := range features {
			i := f.Index(c)
			if i < 0 {
				readErr = &tabular.ColumnsError{Missing: []string{c}, Have: f.Columns}
				break
			}
			if x[j], err = f.Numeric(i); err != nil {
				readErr = err
				break
			}
		}
		if readErr != nil {
			break
		}
		y, err := f.Numeric(f.Index(opt.Target))
		if err != nil {
			readErr = err
			break
		}
		jobs[batch%len(jobs)] <- job{x, y}
	}
	for _, ch := range jobs {
		close(ch)
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	for _, err := range errs {
		var ve *ValueError
		if errors.As(err, &ve) {
			name := opt.Target
			if ve.Column < len(features) {
				name = features[ve.Column]
			}
			return nil, fmt.Errorf("column %s holds %v (a missing value?); fill or drop such rows before training", name, ve.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, o := range accs[1:] {
		switch acc := accs[0].(type) {
		case *Moments:
			acc.Merge(o.(*Moments))
		case *QRAccumulator:
			acc.Merge(o.(*QRAccumulator))
		}
	}
	return accs[0], nil
}

// subset keeps the features at idx (and the target).
func (m *Moments) subset(idx []int) *Moments {
	p := m.k + 1
	all := append(append([]int(nil), idx...), m.k)
	s := NewMoments(len(idx))
	s.n = m.n
	q := s.k + 1
	for a, i := range all {
		s.mean[a] = m.mean[i]
		s.first[a], s.varies[a] = m.first[i], m.varies[i]
		for b, j := range all {
			if a <= b {
				lo, hi := min(i, j), max(i, j)
				s.c[a*q+b] = m.c[lo*p+hi]
			}
		}
	}
	return s
}

func pick(names []string, idx []int) []string {
	out := make([]string, len(idx))
	for a, i := range idx {
		out[a] = names[i]
	}
	return out
}

// Scores are a model's metrics on labelled data, as scikit-learn's
// r2_score, mean_squared_error and mean_absolute_error compute them.
type Scores struct {
	Rows int64   `json:"rows"`
	R2   float64 `json:"r2"`
	MSE  float64 `json:"mse"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
}

// Scorer accumulates Scores over batches of predictions.
type Scorer struct {
	n, mean, m2, sse, abs float64
}

// Add scores predictions against targets.
func (s *Scorer) Add(pred, y []float64) {
	for i, v := range y {
		s.n++
		d := v - s.mean
		s.mean += d / s.n
		s.m2 += d * (v - s.mean)
		e := pred[i] - v
		s.sse += e * e
		s.abs += math.Abs(e)
	}
}

// Scores returns the metrics so far.
func (s *Scorer) Scores() Scores {
	if s.n == 0 {
		return Scores{}
	}
	out := Scores{Rows: int64(s.n), MSE: s.sse / s.n, MAE: s.abs / s.n, R2: 1}
	out.RMSE = math.Sqrt(out.MSE)
	if s.m2 > 0 {
		out.R2 = 1 - s.sse/s.m2
	} else if s.sse > 0 {
		out.R2 = 0
	}
	return out
}

// PredictFrame scores every row of a frame; the model's columns are
// looked up by name.
func (m *Model) PredictFrame(f *tabular.Frame) ([]float64, error) {
	out := make([]float64, f.Len)
	for i := range out {
		out[i] = m.Intercept
	}
	for j, c := range m.Columns {
		i := f.Index(c)
		if i < 0 {
			return nil, &tabular.ColumnsError{Missing: missingColumns(m.Columns, f), Have: f.Columns}
		}
		col, err := f.Numeric(i)
		if err != nil {
			return nil, err
		}
		w := m.Coef[j]
		for r, v := range col {
			out[r] += w * v
		}
	}
	return out, nil
}

func missingColumns(want []string, f *tabular.Frame) []string {
	var out []string
	for _, c := range want {
		if f.Index(c) < 0 {
			out = append(out, c)
		}
	}
	return out
}
