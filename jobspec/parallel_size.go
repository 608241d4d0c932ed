package jobspec

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseMiniBatchSize reads a parallel job's mini_batch_size: a number of
// files ("10"), or an approximate size of tabular data with a unit ("10kb",
// "1 MB"; b, kb, mb or gb, in powers of 1024). Exactly one of files and
// bytes is set.
func ParseMiniBatchSize(s string) (files int, bytes int64, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	digits := strings.TrimRight(t, "abcdefghijklmnopqrstuvwxyz ")
	unit := strings.TrimSpace(t[len(digits):])
	n, perr := strconv.ParseInt(strings.TrimSpace(digits), 10, 64)
	bad := fmt.Errorf("mini_batch_size %q is neither a number of files (10) nor a size with a unit (10kb, 1mb)", s)
	if perr != nil {
		return 0, 0, bad
	}
	if n <= 0 {
		return 0, 0, fmt.Errorf("mini_batch_size must be positive, got %q", s)
	}
	mult := map[string]int64{"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}
	switch m, ok := mult[unit]; {
	case unit == "":
		if n > 1<<31-1 {
			return 0, 0, bad
		}
		return int(n), 0, nil
	case !ok:
		return 0, 0, fmt.Errorf("mini_batch_size %q has an unknown unit %q (b, kb, mb or gb)", s, unit)
	case n > (1<<62)/m:
		return 0, 0, fmt.Errorf("mini_batch_size %q is too large", s)
	default:
		return 0, n * m, nil
	}
}
