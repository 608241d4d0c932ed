package drift

import (
	"context"
	"math"
	"strconv"
	"strings"
)

// quality computes data_quality: the share of production rows that are
// null, of the wrong type for the reference's column, or out of the
// reference's bounds ([min, max] for numbers, the set of values seen for
// categories).
func quality(ctx context.Context, features []Column, ref, prod Dataset, num, cat []chosen) ([]Result, error) {
	rows := float64(prod.Rows())
	results := make([][]Result, len(features))
	idx := make([]int, len(features))
	for i := range idx {
		idx[i] = i
	}
	err := parallel(ctx, idx, func(i int) error {
		col := features[i]
		var nulls, bad, out int64
		var err error
		if col.Kind == Numerical {
			lo, hi := math.Inf(1), math.Inf(-1)
			err = ref.ScanFloat(ctx, col.Name, func(b Floats) error {
				for _, v := range b.Values {
					if v == v {
						lo, hi = min(lo, v), max(hi, v)
					}
				}
				return nil
			})
			if err == nil {
				err = prod.ScanFloat(ctx, col.Name, func(b Floats) error {
					for j, v := range b.Values {
						switch {
						case b.Invalid != nil && b.Invalid[j]:
							bad++
						case v != v:
							nulls++
						default:
							if col.Type == TypeInteger && v != math.Trunc(v) {
								bad++
							}
							if v < lo || v > hi {
								out++
							}
						}
					}
					return nil
				})
			}
		} else {
			seen := map[string]struct{}{}
			err = ref.ScanString(ctx, col.Name, func(b Strings) error {
				for j, v := range b.Values {
					if b.Null != nil && b.Null[j] {
						continue
					}
					if _, ok := seen[v]; !ok {
						seen[strings.Clone(v)] = struct{}{}
					}
				}
				return nil
			})
			if err == nil {
				err = prod.ScanString(ctx, col.Name, func(b Strings) error {
					for j, v := range b.Values {
						if b.Null != nil && b.Null[j] {
							nulls++
							continue
						}
						if !ofType(v, col.Type) {
							bad++
						}
						if _, ok := seen[v]; !ok {
							out++
						}
					}
					return nil
				})
			}
		}
		if err != nil {
			return err
		}
		metrics, dt := num, "numerical"
		if col.Kind == Categorical {
			metrics, dt = cat, "categorical"
		}
		for _, m := range metrics {
			var n int64
			switch m.name {
			case NullValueRate:
				n = nulls
			case DataTypeErrorRate:
				n = bad
			case OutOfBoundsRate:
				n = out
			}
			results[i] = append(results[i], result(col.Name, dt, m, float64(n)/rows, ""))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var all []Result
	for _, r := range results {
		all = append(all, r...)
	}
	return all, nil
}

// ofType tells whether a category's text is a value of the column's
// storage type.
func ofType(v, typ string) bool {
	switch typ {
	case TypeInteger:
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case TypeDouble:
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	case TypeBoolean:
		_, err := strconv.ParseBool(v)
		return err == nil
	}
	return true
}
