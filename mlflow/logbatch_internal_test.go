package mlflow

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// logBatchBodies are runs/log-batch bodies the fast decoder must read
// (common: true) or may leave to the general parser.
var logBatchBodies = []struct {
	name   string
	body   string
	common bool
}{
	{"client", `{"run_id":"r1","metrics":[{"key":"loss","value":0.5,"timestamp":1700000000000,"step":3},{"key":"loss","value":0.25,"timestamp":1700000000001,"step":4}],"params":[{"key":"lr","value":"0.1"}],"tags":[{"key":"mlflow.runName","value":"n"}]}`, true},
	{"run_uuid only", `{"run_uuid":"r2","metrics":[{"key":"m","value":1,"timestamp":2}]}`, true},
	{"run_id wins", `{"run_id":"r3","run_uuid":"other","metrics":[{"key":"m","value":1,"timestamp":2}]}`, true},
	{"empty run_id", `{"run_id":"","run_uuid":"r4","params":[{"key":"p","value":""}]}`, true},
	{"whitespace", " \n{ \"run_id\" : \"r5\" , \"metrics\" : [ { \"key\" : \"m\" , \"value\" : -1.5e-3 , \"timestamp\" : 10 } ] }\n", true},
	{"integral float timestamp", `{"run_id":"r6","metrics":[{"key":"m","value":1,"timestamp":5.0,"step":1e2}]}`, true},
	{"huge value", `{"run_id":"r7","metrics":[{"key":"m","value":1e400,"timestamp":1},{"key":"m","value":-1e400,"timestamp":2},{"key":"m","value":1e-400,"timestamp":3}]}`, true},
	{"model and dataset", `{"run_id":"r8","metrics":[{"key":"m","value":1,"timestamp":1,"model_id":"m-1","dataset_name":"d","dataset_digest":"x"}]}`, true},
	{"escaped strings", `{"run_id":"r9","params":[{"key":"p\u00e9","value":"a\"b\\c\n"}],"tags":[{"key":"t","value":"\ud83d\ude00"}],"metrics":[{"key":"m\/1","value":1,"timestamp":1}]}`, true},
	{"repeated param same value", `{"run_id":"r10","params":[{"key":"p","value":"1"},{"key":"p","value":"1"}]}`, true},
	{"repeated tag last wins", `{"run_id":"r11","tags":[{"key":"t","value":"1"},{"key":"t","value":"2"}]}`, true},
	{"nothing", `{"run_id":"r12","metrics":[],"params":[],"tags":[]}`, true},
	{"limit keys", `{"run_id":"r13","params":[{"key":"` + strings.Repeat("k", 250) + `","value":"` + strings.Repeat("v", 6000) + `"}],"tags":[{"key":"t","value":"` + strings.Repeat("v", 8000) + `"}]}`, true},

	// Left to the general parser, which reads or refuses them.
	{"NaN token", `{"run_id":"r","metrics":[{"key":"m","value":NaN,"timestamp":1}]}`, false},
	{"value as string", `{"run_id":"r","metrics":[{"key":"m","value":"Infinity","timestamp":1}]}`, false},
	{"timestamp as string", `{"run_id":"r","metrics":[{"key":"m","value":1,"timestamp":"12"}]}`, false},
	{"null step", `{"run_id":"r","metrics":[{"key":"m","value":1,"timestamp":1,"step":null}]}`, false},
	{"unknown field", `{"run_id":"r","experiment_id":"0","metrics":[{"key":"m","value":1,"timestamp":1}]}`, false},
	{"unknown metric field", `{"run_id":"r","metrics":[{"key":"m","value":1,"timestamp":1,"run_id":"r"}]}`, false},
	{"double encoded", `"{\"run_id\":\"r\"}"`, false},
	{"missing timestamp", `{"run_id":"r","metrics":[{"key":"m","value":1}]}`, false},
	{"missing value", `{"run_id":"r","metrics":[{"key":"m","timestamp":1}]}`, false},
	{"empty key", `{"run_id":"r","metrics":[{"key":"","value":1,"timestamp":1}]}`, false},
	{"long key", `{"run_id":"r","metrics":[{"key":"` + strings.Repeat("k", 251) + `","value":1,"timestamp":1}]}`, false},
	{"long param value", `{"run_id":"r","params":[{"key":"p","value":"` + strings.Repeat("v", 6001) + `"}]}`, false},
	{"long tag value", `{"run_id":"r","tags":[{"key":"t","value":"` + strings.Repeat("v", 8001) + `"}]}`, false},
	{"param without value", `{"run_id":"r","params":[{"key":"p"}]}`, false},
	{"param changed in batch", `{"run_id":"r","params":[{"key":"p","value":"1"},{"key":"p","value":"2"}]}`, false},
	{"fractional step", `{"run_id":"r","metrics":[{"key":"m","value":1,"timestamp":1,"step":1.5}]}`, false},
	{"duplicate member", `{"run_id":"r","run_id":"s"}`, false},
	{"no run", `{"metrics":[{"key":"m","value":1,"timestamp":1}]}`, false},
	{"trailing value", `{"run_id":"r"} {}`, false},
	{"truncated", `{"run_id":"r","metrics":[{"key":"m"`, false},
	{"empty body", ``, false},
	{"metrics not a list", `{"run_id":"r","metrics":{}}`, false},
	{"invalid UTF-8", "{\"run_id\":\"r\",\"tags\":[{\"key\":\"t\",\"value\":\"\xff\"}]}", false},
	{"too many tags", `{"run_id":"r","tags":[` + strings.Repeat(`{"key":"t","value":"v"},`, 100) + `{"key":"t","value":"v"}]}`, false},
}

// TestDecodeLogBatch checks that the fast decoder reads the bodies
// clients send, and that whatever it reads, the general parser reads the
// same way.
func TestDecodeLogBatch(t *testing.T) {
	for _, tc := range logBatchBodies {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeLogBatch([]byte(tc.body))
			if ok != tc.common {
				t.Fatalf("decoded %v, want %v", ok, tc.common)
			}
			checkSameAsGeneral(t, []byte(tc.body), got, ok)
		})
	}
}

// TestDecodeLogBatchLimits checks the fast decoder at and over MLflow's
// limits on the number of entries.
func TestDecodeLogBatchLimits(t *testing.T) {
	body := func(metrics, params int) []byte {
		var b strings.Builder
		b.WriteString(`{"run_id":"r","metrics":[`)
		for i := range metrics {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"key":"m","value":1,"timestamp":1,"step":` + strconv.Itoa(i) + `}`)
		}
		b.WriteString(`],"params":[`)
		for i := range params {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"key":"p` + strconv.Itoa(i) + `","value":"v"}`)
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	for _, tc := range []struct {
		metrics, params int
		ok              bool
	}{{1000, 0, true}, {1001, 0, false}, {0, 100, true}, {0, 101, false}, {950, 50, true}, {951, 50, false}} {
		b := body(tc.metrics, tc.params)
		got, ok := decodeLogBatch(b)
		if ok != tc.ok {
			t.Fatalf("%d metrics and %d params: decoded %v, want %v", tc.metrics, tc.params, ok, tc.ok)
		}
		checkSameAsGeneral(t, b, got, ok)
	}
}

// FuzzDecodeLogBatch checks, for any body, that the fast decoder either
// leaves it to the general parser or reads exactly what that parser reads.
func FuzzDecodeLogBatch(f *testing.F) {
	for _, tc := range logBatchBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeLogBatch(body)
		checkSameAsGeneral(t, body, got, ok)
	})
}

// checkSameAsGeneral fails t unless the general parser accepts body and
// reads what the fast decoder read, where it read anything.
func checkSameAsGeneral(t *testing.T, body []byte, fast *logBatchBody, ok bool) {
	t.Helper()
	if !ok {
		return
	}
	a, err := argsFromBody(body)
	if err != nil {
		t.Fatalf("the fast decoder read a body the general parser refuses: %v", err)
	}
	general, err := readLogBatch(a)
	if err != nil {
		t.Fatalf("the fast decoder read a batch the general parser refuses: %v", err)
	}
	if fast.runID != general.runID {
		t.Fatalf("run %q, general parser %q", fast.runID, general.runID)
	}
	if len(fast.metrics) != len(general.metrics) {
		t.Fatalf("%d metrics, general parser %d", len(fast.metrics), len(general.metrics))
	}
	for i, m := range fast.metrics {
		if !sameMetric(m, general.metrics[i]) {
			t.Fatalf("metric %d: %+v, general parser %+v", i, *m, *general.metrics[i])
		}
	}
	if len(fast.params) != len(general.params) {
		t.Fatalf("%d params, general parser %d", len(fast.params), len(general.params))
	}
	for i, p := range fast.params {
		if *p != *general.params[i] {
			t.Fatalf("param %d: %+v, general parser %+v", i, *p, *general.params[i])
		}
	}
	if len(fast.tags) != len(general.tags) || (fast.tags == nil) != (general.tags == nil) {
		t.Fatalf("tags %v, general parser %v", fast.tags, general.tags)
	}
	for k, v := range fast.tags {
		if gv, ok := general.tags[k]; !ok || gv != v {
			t.Fatalf("tag %q = %q, general parser %q", k, v, gv)
		}
	}
}

func sameMetric(a, b *wharf.Metric) bool {
	av, bv := a.Value, b.Value
	a2, b2 := *a, *b
	a2.Value, b2.Value = 0, 0
	return a2 == b2 && (av == bv && math.Signbit(av) == math.Signbit(bv) || math.IsNaN(av) && math.IsNaN(bv))
}
