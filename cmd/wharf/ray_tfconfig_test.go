package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRayTensorflowConfigNamesWhereTheProcessesAre: a tensorflow step of
// two workers on Ray gets a TF_CONFIG whose cluster is what the driver
// found on each bundle's node (its address and a port free there) before
// the processes started, the same in every process, each naming its own
// task.
func TestRayTensorflowConfigNamesWhereTheProcessesAre(t *testing.T) {
	e, _ := rayEnvWith(t)
	dir := t.TempDir()
	writeFile(t, dir, "tf.py", `import json, os
c = json.loads(os.environ["TF_CONFIG"])
open(os.path.join(os.environ["OUT"], "tf-%s-%d.json" % (c["task"]["type"], c["task"]["index"])), "w").write(os.environ["TF_CONFIG"])
`)
	job := writeFile(t, dir, "job.yml", `code: .
command: OUT=${{outputs.out}} python tf.py
environment: {image: python:3.11}
compute: azureml:ray-cluster
outputs:
  out: {type: uri_folder}
resources:
  instance_count: 2
distribution:
  type: tensorflow
  worker_count: 2
`)
	out := e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "dev")
	const prefix = "[ray] TF_CONFIG cluster: "
	i := strings.Index(out, prefix)
	if i < 0 {
		t.Fatalf("the stream does not show the TF_CONFIG cluster found on the nodes:\n%s", out)
	}
	line, _, _ := strings.Cut(out[i+len(prefix):], "\n")
	var found map[string][]string
	if err := json.Unmarshal([]byte(line), &found); err != nil {
		t.Fatalf("the cluster the driver found: %v: %s", err, line)
	}
	if w := found["worker"]; len(w) != 2 || w[0] == w[1] || w[0] == "" || w[1] == "" {
		t.Fatalf("the workers found: %v, want two places", w)
	}
	name := lastLine(e.ok("ml", "job", "list", "-w", "dev", "--query", "[0].name", "-o", "tsv"))
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--all", "--download-path", dl, "-w", "dev")
	for index := range 2 {
		b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "tf-worker-"+itoa(index)+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Cluster map[string][]string `json:"cluster"`
			Task    struct {
				Type  string `json:"type"`
				Index int    `json:"index"`
			} `json:"task"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("worker %d's TF_CONFIG: %v: %s", index, err, b)
		}
		if !reflect.DeepEqual(c.Cluster, found) || c.Task.Type != "worker" || c.Task.Index != index {
			t.Errorf("worker %d's TF_CONFIG is %s, want the cluster %v and its own task", index, b, found)
		}
	}
}
