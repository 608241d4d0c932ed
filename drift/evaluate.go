package drift

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// ksRowLimit is Azure's limit: the KS test runs only when both datasets
// have fewer rows.
const ksRowLimit = 10000

// Evaluate computes a signal's metrics of production against reference,
// one Result per feature and metric. Production data without rows gives
// an error wrapping ErrEmptyWindow.
func Evaluate(ctx context.Context, s Signal, reference, production Dataset) ([]Result, error) {
	num, cat, err := chooseMetrics(s)
	if err != nil {
		return nil, err
	}
	if production == nil || production.Rows() == 0 {
		return nil, fmt.Errorf("%s: %w", s.Type, ErrEmptyWindow)
	}
	switch s.Type {
	case ModelPerformance:
		return performance(ctx, s, production, num)
	case FeatureAttributionDrift:
		return attribution(s, num)
	}
	if reference == nil || reference.Rows() == 0 {
		return nil, fmt.Errorf("%s: the reference data holds no rows", s.Type)
	}
	features, err := selectFeatures(s, reference, production)
	if err != nil {
		return nil, err
	}
	if s.Type == DataQuality {
		return quality(ctx, features, reference, production, num, cat)
	}
	return driftMetrics(ctx, features, reference, production, num, cat)
}

// rowMask marks the rows dropped for holding a null in some feature; its
// bits are allocated at the first such row.
type rowMask struct {
	rows int64
	once sync.Once
	bits []uint64
}

func (m *rowMask) set(r int64) {
	m.once.Do(func() { m.bits = make([]uint64, (m.rows+63)/64) })
	atomic.OrUint64(&m.bits[r>>6], 1<<(r&63))
}

func (m *rowMask) has(r int64) bool {
	return m.bits != nil && m.bits[r>>6]&(1<<(r&63)) != 0
}

func (m *rowMask) count() int64 {
	var n int
	for _, w := range m.bits {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// side is one dataset of a comparison with its dropped rows.
type side struct {
	d    Dataset
	mask *rowMask
}

// featureStats is what a feature's metrics are computed from.
type featureStats struct {
	col        Column
	missing    [2]int64 // the feature's own missing rows, reference and production
	cmp        *numericComparison
	refStd     float64
	refCounts  map[string]int64
	prodCounts map[string]int64
	nRef       int64
	nProd      int64
}

// driftMetrics computes data and prediction drift. Each feature is read
// once assuming only its own nulls drop rows; the features whose nulls
// are fewer than the rows dropped across all features are read again
// with every dropped row left out.
func driftMetrics(ctx context.Context, features []Column, ref, prod Dataset, num, cat []chosen) ([]Result, error) {
	tmp, err := os.MkdirTemp("", "wharf-drift-sort-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sides := [2]side{{ref, &rowMask{rows: ref.Rows()}}, {prod, &rowMask{rows: prod.Rows()}}}
	stats := make([]*featureStats, len(features))
	run := func(idx []int, masked bool) error {
		return parallel(ctx, idx, func(i int) error {
			st, err := computeFeature(ctx, tmp, features[i], sides, masked)
			if err != nil {
				return fmt.Errorf("feature %s: %w", features[i].Name, err)
			}
			stats[i] = st
			return nil
		})
	}
	all := make([]int, len(features))
	for i := range all {
		all[i] = i
	}
	if err := run(all, false); err != nil {
		return nil, err
	}
	dropped := [2]int64{sides[0].mask.count(), sides[1].mask.count()}
	var again []int
	for i, st := range stats {
		if st.missing[0] < dropped[0] || st.missing[1] < dropped[1] {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		if err := run(again, true); err != nil {
			return nil, err
		}
	}
	var out []Result
	for _, st := range stats {
		if st.col.Kind == Numerical {
			out = append(out, numericalResults(st, num)...)
		} else {
			out = append(out, categoricalResults(st, cat)...)
		}
	}
	return out, nil
}

// parallel runs fn for each index on up to GOMAXPROCS workers, stopping
// at the first error.
func parallel(ctx context.Context, idx []int, fn func(int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	workers := min(runtime.GOMAXPROCS(0), len(idx))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for _, i := range idx {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func computeFeature(ctx context.Context, tmp string, col Column, sides [2]side, masked bool) (*featureStats, error) {
	st := &featureStats{col: col}
	if col.Kind == Categorical {
		for k, sd := range sides {
			counts := map[string]int64{}
			var row int64
			var n int64
			err := sd.d.ScanString(ctx, col.Name, func(b Strings) error {
				for i, v := range b.Values {
					r := row + int64(i)
					if b.Null != nil && b.Null[i] {
						st.missing[k]++
						sd.mask.set(r)
						continue
					}
					if masked && sd.mask.has(r) {
						continue
					}
					if c, ok := counts[v]; ok {
						counts[v] = c + 1
					} else {
						counts[strings.Clone(v)] = 1
					}
					n++
				}
				row += int64(len(b.Values))
				return nil
			})
			if err != nil {
				return nil, err
			}
			if k == 0 {
				st.refCounts, st.nRef = counts, n
			} else {
				st.prodCounts, st.nProd = counts, n
			}
		}
		return st, nil
	}
	var sorters [2]*sorter
	defer func() {
		for _, s := range sorters {
			if s != nil {
				s.close()
			}
		}
	}()
	for k, sd := range sides {
		s := newSorter(tmp)
		sorters[k] = s
		var row int64
		err := sd.d.ScanFloat(ctx, col.Name, func(b Floats) error {
			for i, v := range b.Values {
				r := row + int64(i)
				if v != v {
					st.missing[k]++
					sd.mask.set(r)
					continue
				}
				if masked && sd.mask.has(r) {
					continue
				}
				if err := s.add(v); err != nil {
					return err
				}
			}
			row += int64(len(b.Values))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	st.nRef, st.nProd = sorters[0].n, sorters[1].n
	st.refStd = sorters[0].stddev()
	if st.nRef == 0 || st.nProd == 0 {
		return st, nil
	}
	lo, hi := min(sorters[0].min, sorters[1].min), max(sorters[0].max, sorters[1].max)
	a, err := sorters[0].stream()
	if err != nil {
		return nil, err
	}
	defer a.close()
	b, err := sorters[1].stream()
	if err != nil {
		return nil, err
	}
	defer b.close()
	st.cmp, err = compareSorted(a, b, st.nRef, st.nProd, lo, hi)
	return st, err
}

// emptyDetail is the Detail of a feature with no rows left to compare.
func emptyDetail(st *featureStats) string {
	if st.nRef == 0 {
		return "no reference row without a null to compare"
	}
	return "no production row without a null to compare"
}

func numericalResults(st *featureStats, metrics []chosen) []Result {
	const dt = "numerical"
	var out []Result
	name := st.col.Name
	for _, m := range metrics {
		if st.cmp == nil {
			out = append(out, notComputed(name, dt, m, emptyDetail(st)))
			continue
		}
		c := st.cmp
		switch m.name {
		case JensenShannonDistance:
			out = append(out, result(name, dt, m, jensenShannon(toFloats(c.refBins), toFloats(c.prodBins)), ""))
		case PopulationStabilityIndex:
			out = append(out, result(name, dt, m, psi(toFloats(c.refBins), toFloats(c.prodBins), float64(c.nRef), float64(c.nProd)), ""))
		case NormalizedWassersteinDistance:
			std := st.refStd
			if !(std > 0.001) {
				std = 0.001
			}
			out = append(out, result(name, dt, m, c.wasserstein/std, ""))
		case TwoSampleKolmogorovSmirnov:
			if c.nRef >= ksRowLimit || c.nProd >= ksRowLimit {
				out = append(out, notComputed(name, dt, m, fmt.Sprintf(
					"not computed: the two-sample Kolmogorov-Smirnov test runs only on datasets of fewer than %d rows (reference %d, production %d), as in Azure",
					ksRowLimit, c.nRef, c.nProd)))
				continue
			}
			out = append(out, result(name, dt, m, ksTwoSampleP(c.ksD, c.nRef, c.nProd), ""))
		}
	}
	return out
}

func categoricalResults(st *featureStats, metrics []chosen) []Result {
	const dt = "categorical"
	var out []Result
	name := st.col.Name
	if st.nRef == 0 || st.nProd == 0 {
		for _, m := range metrics {
			out = append(out, notComputed(name, dt, m, emptyDetail(st)))
		}
		return out
	}
	cats, r, p := categoryCounts(st.refCounts, st.prodCounts)
	for _, m := range metrics {
		switch m.name {
		case JensenShannonDistance:
			out = append(out, result(name, dt, m, jensenShannon(r, p), ""))
		case PopulationStabilityIndex:
			out = append(out, result(name, dt, m, psi(r, p, float64(st.nRef), float64(st.nProd)), ""))
		case PearsonsChiSquaredTest:
			var unseen []string
			for i, c := range cats {
				if r[i] == 0 {
					unseen = append(unseen, c)
				}
			}
			detail := ""
			if len(cats) < 2 {
				detail = "only one category: the chi-squared test needs two"
			} else if len(unseen) > 0 {
				sort.Strings(unseen)
				more := ""
				if len(unseen) > 5 {
					more = fmt.Sprintf(" and %d more", len(unseen)-5)
					unseen = unseen[:5]
				}
				detail = fmt.Sprintf("production categories absent from the reference (%s%s) make the expected count 0: p-value 0", strings.Join(unseen, ", "), more)
			}
			out = append(out, result(name, dt, m, chiSquaredP(r, p, float64(st.nRef), float64(st.nProd)), detail))
		}
	}
	return out
}

// errNoColumn reports a column a signal needs that the data lacks.
func errNoColumn(signal, role, name string, d Dataset) error {
	var names []string
	for _, c := range d.Columns() {
		names = append(names, c.Name)
	}
	if name == "" {
		return fmt.Errorf("%s: no %s column named", signal, role)
	}
	return fmt.Errorf("%s: %s column %s is not in the production data (it has %s)", signal, role, name, strings.Join(names, ", "))
}
