package main

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// The request bodies are written by hand into a reused buffer: encoding/json
// over 1,000 structs would cost the load generator, which shares the CPUs
// with the server under test, more than it needs to.

// metricKeys names the ingest scenario's metrics, as a training loop logs
// them; past the list, keys are numbered.
var metricKeys = []string{
	"train/loss", "train/accuracy", "val/loss", "val/accuracy", "learning_rate",
	"grad_norm", "train/f1", "val/f1", "throughput_samples_per_s", "gpu_memory_gb",
}

func metricKey(k int) string {
	if k < len(metricKeys) {
		return metricKeys[k]
	}
	return "metric_" + strconv.Itoa(k)
}

// mix64 is SplitMix64's finaliser: a cheap, well-spread hash, so every
// value is a pure function of its indices and every server gets the same
// data.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps a hash into [0, 1).
func unit(x uint64) float64 { return float64(mix64(x)>>11) / (1 << 53) }

// metricValue is a plausible value of key k at step: a decaying curve with
// noise, full float64 precision, as a real run logs it.
func metricValue(k, step int) float64 {
	noise := unit(uint64(k)<<40 ^ uint64(step))
	return (1+float64(k)*0.1)*math.Exp(-float64(step)/5000) + 0.05*noise
}

// appendMetricBatch writes the seq-th log-batch request of a run: keys keys
// times batch/keys steps, steps seq*steps .. seq*steps+steps-1, so no two
// requests log the same (key, step).
func appendMetricBatch(b []byte, runID string, keys, batch, seq int, startMS int64) []byte {
	steps := batch / keys
	b = append(b, `{"run_id":"`...)
	b = append(b, runID...)
	b = append(b, `","metrics":[`...)
	first := true
	for s := range steps {
		step := seq*steps + s
		ts := startMS + int64(step)*10
		for k := range keys {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"key":"`...)
			b = append(b, metricKey(k)...)
			b = append(b, `","value":`...)
			b = strconv.AppendFloat(b, metricValue(k, step), 'g', -1, 64)
			b = append(b, `,"timestamp":`...)
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, `,"step":`...)
			b = strconv.AppendInt(b, int64(step), 10)
			b = append(b, '}')
		}
	}
	return append(b, `],"params":[],"tags":[]}`...)
}

// appendLogMetric writes one runs/log-metric request. Like the Python
// client, it sends both run_id and run_uuid.
func appendLogMetric(b []byte, runID, key string, value float64, ts int64, step int) []byte {
	b = append(b, `{"run_id":"`...)
	b = append(b, runID...)
	b = append(b, `","run_uuid":"`...)
	b = append(b, runID...)
	b = append(b, `","key":"`...)
	b = append(b, key...)
	b = append(b, `","value":`...)
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, int64(step), 10)
	return append(b, '}')
}

// appendCreateRun writes a runs/create request. Names contain only
// [a-z0-9-], so they need no escaping.
func appendCreateRun(b []byte, expID, name string, startMS int64) []byte {
	b = append(b, `{"experiment_id":"`...)
	b = append(b, expID...)
	b = append(b, `","run_name":"`...)
	b = append(b, name...)
	b = append(b, `","start_time":`...)
	b = strconv.AppendInt(b, startMS, 10)
	return append(b, `,"tags":[{"key":"mlflow.runName","value":"`+name+`"}]}`...)
}

// The search data set: run i has param alpha = alphas[i%len(alphas)] and
// metric rmse = rmse(i), uniform in [0, 1). The filter
// `metrics.rmse < 0.5 and params.alpha = '0.1'` matches about one run in 20.
var alphas = []string{"0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"}

func alpha(i int) string { return alphas[i%len(alphas)] }

// rmse is rounded to 6 digits, as a typical logged score, so that equal
// values stay equal through every server's float handling.
func rmse(i int) float64 {
	return math.Round(unit(1<<62|uint64(i))*1e6) / 1e6
}

func matches(i int) bool { return rmse(i) < 0.5 && alpha(i) == "0.1" }

// appendSeedBatch writes the log-batch that gives seeded run i its param
// and metric.
func appendSeedBatch(b []byte, runID string, i int, ts int64) []byte {
	b = append(b, `{"run_id":"`...)
	b = append(b, runID...)
	b = append(b, `","params":[{"key":"alpha","value":"`...)
	b = append(b, alpha(i)...)
	b = append(b, `"}],"metrics":[{"key":"rmse","value":`...)
	b = strconv.AppendFloat(b, rmse(i), 'g', -1, 64)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, `,"step":0}],"tags":[]}`...)
}

// countMatching counts the seeded runs the search filter matches.
func countMatching(seeded map[string]int) int {
	n := 0
	for _, i := range seeded {
		if matches(i) {
			n++
		}
	}
	return n
}

// expectedSearch returns the indices of the first limit matching runs in
// rmse order: the answer the search must give.
func expectedSearch(seeded map[string]int, limit int) []int {
	var m []int
	for _, i := range seeded {
		if matches(i) {
			m = append(m, i)
		}
	}
	slices.SortFunc(m, func(a, b int) int {
		if c := compareFloat(rmse(a), rmse(b)); c != 0 {
			return c
		}
		return a - b
	})
	if len(m) > limit {
		m = m[:limit]
	}
	return m
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
