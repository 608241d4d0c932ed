package main

import (
	"strings"
	"testing"
)

// TestComputeRayCreateAndAttach: a Ray-backed cluster is created from a
// YAML file or attached by address, shows its address and type, and a
// bad address is refused naming the field, as is a bad
// sandbox_read_only_paths.
func TestComputeRayCreateAndAttach(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	file := writeFile(t, dir, "ray-cluster.yml", `$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
name: ray-cluster
type: ray
address: http://ray-head:8265
max_instances: 50
description: the lab's Ray cluster
sandbox_read_only_paths: [/mnt/datasets/, /opt/tools]
`)
	e.ok("ml", "compute", "create", "--file", file, "-w", "dev")
	if got := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "ray-cluster", "-w", "dev", "--query", "[type, address, max_instances]", "-o", "tsv")); got != "ray\nhttp://ray-head:8265\n50" {
		t.Errorf("created: %q", got)
	}
	if got := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "ray-cluster", "-w", "dev", "--query", "sandbox_read_only_paths", "-o", "tsv")); got != "/mnt/datasets\n/opt/tools" {
		t.Errorf("created with sandbox_read_only_paths: %q", got)
	}
	bad := writeFile(t, dir, "bad.yml", "name: bad\ntype: ray\naddress: http://ray-head:8265\nsandbox_read_only_paths: [datasets]\n")
	if _, out, code := e.wharf("ml", "compute", "create", "--file", bad, "-w", "dev"); code == 0 || !strings.Contains(out, bad+":4:") || !strings.Contains(out, "sandbox_read_only_paths[0]") ||
		!strings.Contains(out, "not an absolute path") {
		t.Errorf("relative sandbox_read_only_paths: %s", out)
	}
	e.ok("ml", "compute", "attach", "--type", "Ray", "--address", "http://10.0.0.5:8265/", "-n", "lab-ray", "-w", "dev")
	if got := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "lab-ray", "-w", "dev", "--query", "[type, address, max_instances]", "-o", "tsv")); got != "ray\nhttp://10.0.0.5:8265\n256" {
		t.Errorf("attached: %q", got)
	}
	if _, out, code := e.wharf("ml", "compute", "attach", "--type", "ray", "--address", "ray-head:8265", "-n", "bad", "-w", "dev"); code == 0 || !strings.Contains(out, "address") || !strings.Contains(out, "http://") {
		t.Errorf("bad address: %s", out)
	}
	if _, out, code := e.wharf("ml", "compute", "attach", "--type", "kubernetes", "--address", "http://x:1", "-n", "bad", "-w", "dev"); code == 0 || !strings.Contains(out, "ray") {
		t.Errorf("kubernetes attach: %s", out)
	}
}
