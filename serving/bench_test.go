package serving

import (
	"testing"

	"github.com/wharfml/wharf/scoring"
)

// BenchmarkPyfuncRequestPath measures the Go side of a one-row pyfunc
// request as bench/serving.sh sends it: decode, check against the
// signature, write the worker's table; and merging eight such tables.
func BenchmarkPyfuncRequestPath(b *testing.B) {
	body := []byte(`{"input_data": {"columns": ["distance", "hour"], "index": [0], "data": [[3.0, 10.0]]}}`)
	sig, err := scoring.ParseMLflowSignature(`[{"type": "double", "name": "distance", "required": true}, {"type": "double", "name": "hour", "required": true}]`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := decodeFor(body, ProtocolScore, sig)
		if err != nil {
			b.Fatal(err)
		}
		t, err := newTable(f)
		if err != nil {
			b.Fatal(err)
		}
		mergeTables([]*table{t, t, t, t, t, t, t, t})
	}
}
