package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMonitorComputeDataDrift runs `wharf monitor compute` on two CSV
// files: one drifted column fails its threshold, the other passes, and a
// bad threshold is refused.
func TestMonitorComputeDataDrift(t *testing.T) {
	t.Setenv("WHARF_CONFIG_DIR", t.TempDir())
	dir := t.TempDir()
	var ref, prod strings.Builder
	ref.WriteString("x,color\n")
	prod.WriteString("x,color\n")
	for i := 0; i < 400; i++ {
		c := []string{"red", "blue"}[i%2]
		ref.WriteString(strings.Join([]string{itoa(i % 100), c}, ",") + "\n")
		prod.WriteString(strings.Join([]string{itoa(i%100 + 60), c}, ",") + "\n")
	}
	refPath, prodPath := filepath.Join(dir, "ref.csv"), filepath.Join(dir, "prod.csv")
	os.WriteFile(refPath, []byte(ref.String()), 0o644)
	os.WriteFile(prodPath, []byte(prod.String()), 0o644)
	out, errs, code := wharfRun(t, "monitor", "compute", "--reference", refPath, "--production", prodPath, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	var res []struct {
		Feature, Metric string
		Value           float64
		Passed          bool
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res) != 2 || res[0].Feature != "x" || res[0].Metric != "normalized_wasserstein_distance" || res[0].Passed ||
		res[1].Feature != "color" || res[1].Metric != "jensen_shannon_distance" || !res[1].Passed || res[1].Value != 0 {
		t.Errorf("results: %+v", res)
	}
	_, errs, code = wharfRun(t, "monitor", "compute", "--reference", refPath, "--production", prodPath, "--threshold", "numerical.psi=1")
	if code == 0 || !strings.Contains(errs, "unknown metric numerical.psi") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
