package sqlstore

import "testing"

// TraceRunSearch has f called with the page query of each run search
// (see traceRunSearch) until the test ends.
func TraceRunSearch(t testing.TB, f func(query string, args []any)) {
	traceRunSearch = f
	t.Cleanup(func() { traceRunSearch = nil })
}
