package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/mlflow"
)

// BenchmarkLogBatch sends runs/log-batch requests of 1,000 metrics (10 keys
// x 100 steps, new steps every request), the body bench/trackload's ingest
// scenario sends, through the whole server: loopback HTTP, authentication,
// authorization, parsing, the SQLite store and the audit record. Its
// allocations per batch, and its CPU profile, do not depend on the load of
// the machine as its time does.
func BenchmarkLogBatch(b *testing.B) {
	srv := servertest.New(b)
	srv.Workspace("bench")
	token := srv.Principal("owner", [2]string{wharf.RoleOwner, "/"})
	base := mlflow.TrackingURI(srv.HTTP.URL, "bench") + "/api/2.0/mlflow/"
	hc := &http.Client{}
	post := func(path string, body []byte) []byte {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %s %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	var created struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.Unmarshal(post("runs/create", []byte(`{"experiment_id":"0","start_time":1}`)), &created); err != nil {
		b.Fatal(err)
	}
	runID := created.Run.Info.RunID
	const keys, steps = 10, 100
	var body []byte
	b.ReportAllocs()
	b.ResetTimer()
	for seq := 0; b.Loop(); seq++ {
		body = appendBenchBatch(body[:0], runID, keys, steps, seq)
		post("runs/log-batch", body)
	}
	b.StopTimer()
	b.ReportMetric(float64(keys*steps)*float64(b.N)/b.Elapsed().Seconds(), "metrics/s")
	// Every batch was stored: the last step of the last batch is the
	// latest value of each key.
	run, err := srv.DB.FindRun(context.Background(), "bench", runID)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range run.Metrics {
		if want := int64(b.N*steps - 1); m.Step != want {
			b.Fatalf("latest %s at step %d, want %d", m.Key, m.Step, want)
		}
	}
	if len(run.Metrics) != keys {
		b.Fatalf("%d latest metrics, want %d", len(run.Metrics), keys)
	}
}

// appendBenchBatch writes the seq-th batch of a run: keys x steps metrics
// with full-precision values, as a training loop logs them.
func appendBenchBatch(buf []byte, runID string, keys, steps, seq int) []byte {
	buf = append(buf, `{"run_id":"`...)
	buf = append(buf, runID...)
	buf = append(buf, `","metrics":[`...)
	for s := range steps {
		step := seq*steps + s
		for k := range keys {
			if s > 0 || k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"key":"metric_`...)
			buf = strconv.AppendInt(buf, int64(k), 10)
			buf = append(buf, `","value":`...)
			buf = strconv.AppendFloat(buf, (1+float64(k)/10)*math.Exp(-float64(step)/5000)+float64(step%7)/97, 'g', -1, 64)
			buf = append(buf, `,"timestamp":`...)
			buf = strconv.AppendInt(buf, 1700000000000+int64(step)*10, 10)
			buf = append(buf, `,"step":`...)
			buf = strconv.AppendInt(buf, int64(step), 10)
			buf = append(buf, '}')
		}
	}
	return append(buf, `],"params":[],"tags":[]}`...)
}
