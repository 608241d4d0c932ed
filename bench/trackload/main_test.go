package main

import (
	"encoding/json"
	"fmt"
	"testing"
)

// No test measures speed: these pin down the arithmetic and the request
// bodies the benchmark's figures rest on.

type metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// A log-batch body is valid JSON with exactly batch metrics, and no (key,
// step) repeats within a request or between consecutive requests.
func TestMetricBatch(t *testing.T) {
	seen := map[string]bool{}
	var buf []byte
	for seq := range 3 {
		buf = appendMetricBatch(buf[:0], "abc", 10, 1000, seq, 1700000000000)
		var req struct {
			RunID   string   `json:"run_id"`
			Metrics []metric `json:"metrics"`
		}
		if err := json.Unmarshal(buf, &req); err != nil {
			t.Fatalf("seq %d: %v\n%s", seq, err, buf[:200])
		}
		if req.RunID != "abc" || len(req.Metrics) != 1000 {
			t.Fatalf("seq %d: run %q, %d metrics", seq, req.RunID, len(req.Metrics))
		}
		keys := map[string]bool{}
		for _, m := range req.Metrics {
			k := fmt.Sprintf("%s@%d", m.Key, m.Step)
			if seen[k] {
				t.Fatalf("seq %d: %s logged twice", seq, k)
			}
			seen[k] = true
			keys[m.Key] = true
			if m.Value != metricValue(keyIndex(m.Key), int(m.Step)) {
				t.Fatalf("value of %s did not survive JSON", k)
			}
		}
		if len(keys) != 10 {
			t.Fatalf("seq %d: %d distinct keys, want 10", seq, len(keys))
		}
	}
	if len(buf) > 1<<20 {
		t.Errorf("a 1000-metric body is %d bytes, over MLflow's 1 MB limit", len(buf))
	}
}

func keyIndex(key string) int {
	for i := range 100 {
		if metricKey(i) == key {
			return i
		}
	}
	return -1
}

func TestSmallBodies(t *testing.T) {
	for name, b := range map[string][]byte{
		"log-metric": appendLogMetric(nil, "r1", "loss", 0.25, 5, 3),
		"create-run": appendCreateRun(nil, "7", "seed-12", 99),
		"seed-batch": appendSeedBatch(nil, "r1", 12, 99),
	} {
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v: %s", name, err, b)
		}
	}
}

// The filter matches about one run in 20, and the expected answer is the
// matching runs in ascending rmse, capped at the limit.
func TestSearchData(t *testing.T) {
	seeded := map[string]int{}
	for i := range 100000 {
		seeded[fmt.Sprint("run", i)] = i
	}
	n := countMatching(seeded)
	if n < 4500 || n > 5500 {
		t.Errorf("%d of 100000 runs match, want about 5000", n)
	}
	want := expectedSearch(seeded, 100)
	if len(want) != 100 {
		t.Fatalf("expected answer has %d runs", len(want))
	}
	for k, i := range want {
		if !matches(i) {
			t.Fatalf("position %d: run %d does not match", k, i)
		}
		if k > 0 && rmse(want[k-1]) > rmse(i) {
			t.Fatalf("position %d: not in ascending rmse", k)
		}
	}

	// checkSearch accepts the right answer and rejects a short or
	// misordered one.
	ids := map[int]string{}
	for id, i := range seeded {
		ids[i] = id
	}
	answer := func(idx []int) *searchAnswer {
		a := &searchAnswer{}
		for _, i := range idx {
			var r struct {
				Info struct {
					RunID   string `json:"run_id"`
					RunUUID string `json:"run_uuid"`
				} `json:"info"`
			}
			r.Info.RunID = ids[i]
			a.Runs = append(a.Runs, r)
		}
		return a
	}
	if o := checkSearch(answer(want), seeded, want); o.err != nil {
		t.Errorf("right answer rejected: %v", o.err)
	}
	if o := checkSearch(answer(want[:99]), seeded, want); o.err == nil {
		t.Error("short answer accepted")
	}
	swapped := append([]int(nil), want...)
	swapped[0], swapped[50] = swapped[50], swapped[0]
	if o := checkSearch(answer(swapped), seeded, want); o.err == nil {
		t.Error("misordered answer accepted")
	}
}
