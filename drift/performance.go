package drift

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// performance computes model_performance over the production rows that
// have both a ground truth and a prediction, as scikit-learn computes
// the metrics: classification accuracy, precision, recall and F1
// (binary for two labels, with "1", "true" or "yes" as the positive label
// when present, else the last label in order; macro averages over more
// labels, 0 for a label never predicted), regression mae, mse and rmse.
func performance(ctx context.Context, s Signal, prod Dataset, metrics []chosen) ([]Result, error) {
	has := map[string]bool{}
	for _, c := range prod.Columns() {
		has[c.Name] = true
	}
	for _, col := range [][2]string{{"target", s.Target}, {"prediction", s.Prediction}} {
		if col[1] == "" || !has[col[1]] {
			return nil, errNoColumn(s.Type, col[0], col[1], prod)
		}
	}
	var skipped int64
	values := map[string]float64{}
	if s.MLTask == "classification" {
		confusion := map[[2]string]int64{}
		err := pairScan(ctx, prod, s.Target, s.Prediction, func(truth, pred string, ok bool) {
			if ok {
				confusion[[2]string{truth, pred}]++
			} else {
				skipped++
			}
		})
		if err != nil {
			return nil, err
		}
		if len(confusion) == 0 {
			return nil, fmt.Errorf("%s: %w (no row has both %s and %s)", s.Type, ErrEmptyWindow, s.Target, s.Prediction)
		}
		values = classification(confusion)
	} else {
		var n, bad int64
		var abs, sq kahan
		err := pairScan(ctx, prod, s.Target, s.Prediction, func(truth, pred string, ok bool) {
			if !ok {
				skipped++
				return
			}
			y, err1 := strconv.ParseFloat(truth, 64)
			p, err2 := strconv.ParseFloat(pred, 64)
			if err1 != nil || err2 != nil {
				bad++
				return
			}
			d := p - y
			abs.add(math.Abs(d))
			sq.add(d * d)
			n++
		})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: %w (no row has a numeric %s and %s)", s.Type, ErrEmptyWindow, s.Target, s.Prediction)
		}
		skipped += bad
		mse := sq.total() / float64(n)
		values[MAE], values[MSE], values[RMSE] = abs.total()/float64(n), mse, math.Sqrt(mse)
	}
	detail := ""
	if skipped > 0 {
		detail = fmt.Sprintf("%d rows without a usable %s and %s left out", skipped, s.Target, s.Prediction)
	}
	var out []Result
	for _, m := range metrics {
		out = append(out, result("", "", m, values[m.name], detail))
	}
	return out, nil
}

// kahan is a compensated (Neumaier) sum.
type kahan struct{ sum, c float64 }

func (k *kahan) add(x float64) {
	t := k.sum + x
	if math.Abs(k.sum) >= math.Abs(x) {
		k.c += (k.sum - t) + x
	} else {
		k.c += (x - t) + k.sum
	}
	k.sum = t
}

func (k *kahan) total() float64 { return k.sum + k.c }

// classification computes the classification metrics from a confusion
// count of (truth, prediction) pairs.
func classification(confusion map[[2]string]int64) map[string]float64 {
	labelSet := map[string]bool{}
	var n, correct float64
	tp, predicted, actual := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for k, c := range confusion {
		labelSet[k[0]], labelSet[k[1]] = true, true
		f := float64(c)
		n += f
		actual[k[0]] += f
		predicted[k[1]] += f
		if k[0] == k[1] {
			correct += f
			tp[k[0]] += f
		}
	}
	labels := make([]string, 0, len(labelSet))
	for l := range labelSet {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	f1 := func(p, r float64) float64 { return ratio(2*p*r, p+r) }
	out := map[string]float64{Accuracy: correct / n}
	if len(labels) <= 2 {
		pos := positiveLabel(labels)
		p, r := ratio(tp[pos], predicted[pos]), ratio(tp[pos], actual[pos])
		out[Precision], out[Recall], out[F1Score] = p, r, f1(p, r)
		return out
	}
	for _, l := range labels {
		p, r := ratio(tp[l], predicted[l]), ratio(tp[l], actual[l])
		out[Precision] += p / float64(len(labels))
		out[Recall] += r / float64(len(labels))
		out[F1Score] += f1(p, r) / float64(len(labels))
	}
	return out
}

// positiveLabel picks the positive class of a binary problem.
func positiveLabel(labels []string) string {
	for _, l := range labels {
		switch strings.ToLower(l) {
		case "1", "true", "yes":
			return l
		}
	}
	return labels[len(labels)-1]
}

// pairScan reads two columns of a dataset side by side, as text; ok is
// false when either value is missing. The second column is read by a
// goroutine and handed over a batch at a time.
func pairScan(ctx context.Context, d Dataset, a, b string, fn func(x, y string, ok bool)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		v    []string
		null []bool
	}
	ch := make(chan batch, 4)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- d.ScanString(ctx, b, func(s Strings) error {
			c := batch{v: make([]string, len(s.Values))}
			for i, v := range s.Values {
				c.v[i] = strings.Clone(v)
			}
			if s.Null != nil {
				c.null = append([]bool(nil), s.Null...)
			}
			select {
			case ch <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var cur batch
	pos := 0
	short := errors.New("the two columns have different lengths")
	err := d.ScanString(ctx, a, func(s Strings) error {
		for i, x := range s.Values {
			if pos == len(cur.v) {
				var more bool
				if cur, more = <-ch; !more {
					return short
				}
				pos = 0
			}
			ok := (s.Null == nil || !s.Null[i]) && (cur.null == nil || !cur.null[pos])
			fn(x, cur.v[pos], ok)
			pos++
		}
		return nil
	})
	cancel()
	for range ch {
	}
	if berr := <-errc; err == nil && berr != nil && !errors.Is(berr, context.Canceled) {
		err = berr
	}
	return err
}

// attribution computes feature_attribution_drift: scikit-learn's
// ndcg_score of the production importances ranked against the reference
// (training) importances, over the features both give (or the selected
// ones), ties in the production ranking averaged.
func attribution(s Signal, metrics []chosen) ([]Result, error) {
	if len(s.Importance) == 0 || len(s.ProductionImportance) == 0 {
		return nil, fmt.Errorf("%s: needs the feature importances of both the reference and the production data", s.Type)
	}
	var names []string
	if len(s.Features) > 0 {
		names = s.Features
	} else {
		for f := range s.Importance {
			if _, ok := s.ProductionImportance[f]; ok {
				names = append(names, f)
			}
		}
		sort.Strings(names)
	}
	truth := make([]float64, len(names))
	score := make([]float64, len(names))
	for i, f := range names {
		var ok1, ok2 bool
		truth[i], ok1 = s.Importance[f]
		score[i], ok2 = s.ProductionImportance[f]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: feature %s has no importance in the reference or the production data", s.Type, f)
		}
		if truth[i] < 0 {
			return nil, fmt.Errorf("%s: feature %s: importance %g is negative", s.Type, f, truth[i])
		}
	}
	if len(names) < 2 {
		return nil, fmt.Errorf("%s: NDCG needs at least 2 features with importances, got %d", s.Type, len(names))
	}
	v := ndcg(truth, score)
	var out []Result
	for _, m := range metrics {
		out = append(out, result("", "", m, v, ""))
	}
	return out, nil
}

// ndcg is sklearn.metrics.ndcg_score([truth], [score]).
func ndcg(truth, score []float64) float64 {
	n := len(truth)
	discount := make([]float64, n)
	cum := make([]float64, n)
	for i := range discount {
		discount[i] = 1 / math.Log2(float64(i)+2)
		cum[i] = discount[i]
		if i > 0 {
			cum[i] += cum[i-1]
		}
	}
	// DCG of the production ranking, ties sharing their positions'
	// discounts evenly.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	var dcg float64
	prevEnd := -1
	for i := 0; i < n; {
		j := i
		var gain float64
		for j < n && score[order[j]] == score[order[i]] {
			gain += truth[order[j]]
			j++
		}
		disc := cum[j-1]
		if prevEnd >= 0 {
			disc -= cum[prevEnd]
		}
		dcg += gain / float64(j-i) * disc
		prevEnd = j - 1
		i = j
	}
	ideal := append([]float64(nil), truth...)
	sort.Sort(sort.Reverse(sort.Float64Slice(ideal)))
	var best float64
	for i, g := range ideal {
		best += discount[i] * g
	}
	if best == 0 {
		return 0
	}
	return dcg / best
}
