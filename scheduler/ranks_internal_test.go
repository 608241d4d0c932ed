package scheduler

import (
	"encoding/json"
	"testing"
)

func countingPorts() func() (int, error) {
	next := 40000
	return func() (int, error) { next++; return next, nil }
}

func TestPlanRanksPytorchGivesEveryProcessItsPlace(t *testing.T) {
	ranks, err := planRanks(&DistributionSpec{Type: "pytorch", InstanceCount: 2, ProcessCountPerInstance: 3}, countingPorts())
	if err != nil {
		t.Fatal(err)
	}
	if len(ranks) != 6 {
		t.Fatalf("%d ranks, want 6", len(ranks))
	}
	for i, r := range ranks {
		want := map[string]string{"RANK": itoa(i), "LOCAL_RANK": itoa(i % 3), "NODE_RANK": itoa(i / 3), "WORLD_SIZE": "6",
			"LOCAL_WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "40001",
			"AZ_BATCH_MASTER_NODE": "127.0.0.1:40001", "AZ_BATCHAI_MPI_MASTER_NODE": "127.0.0.1", "AZUREML_NODE_COUNT": "2"}
		for k, v := range want {
			if r.Env[k] != v {
				t.Errorf("rank %d: %s=%q, want %q", i, k, r.Env[k], v)
			}
		}
		if r.Node != i/3 || r.Label != "rank "+itoa(i) {
			t.Errorf("rank %d: node %d label %q", i, r.Node, r.Label)
		}
		if _, ok := r.Env["OMPI_COMM_WORLD_RANK"]; ok {
			t.Errorf("rank %d of a pytorch job has MPI variables", i)
		}
	}
}

func TestPlanRanksMPISetsOpenMPIAndPMIVariables(t *testing.T) {
	ranks, err := planRanks(&DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 2}, countingPorts())
	if err != nil {
		t.Fatal(err)
	}
	if len(ranks) != 4 {
		t.Fatalf("%d ranks, want 4", len(ranks))
	}
	r := ranks[3]
	for k, v := range map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
		"OMPI_COMM_WORLD_LOCAL_SIZE": "2", "OMPI_COMM_WORLD_NODE_RANK": "1", "PMI_RANK": "3", "PMI_SIZE": "4",
		"AZ_BATCH_MASTER_NODE": "127.0.0.1:40001"} {
		if r.Env[k] != v {
			t.Errorf("%s=%q, want %q", k, r.Env[k], v)
		}
	}
}

func TestPlanRanksTensorflowDescribesTheClusterInTFConfig(t *testing.T) {
	ranks, err := planRanks(&DistributionSpec{Type: "tensorflow", InstanceCount: 2, WorkerCount: 2, ParameterServerCount: 1}, countingPorts())
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{"worker 0", "worker 1", "ps 0"}
	if len(ranks) != len(labels) {
		t.Fatalf("%d processes, want %d", len(ranks), len(labels))
	}
	var first []string
	for i, r := range ranks {
		if r.Label != labels[i] {
			t.Errorf("process %d is %q, want %q", i, r.Label, labels[i])
		}
		var c struct {
			Cluster map[string][]string `json:"cluster"`
			Task    struct {
				Type  string `json:"type"`
				Index int    `json:"index"`
			} `json:"task"`
		}
		if err := json.Unmarshal([]byte(r.Env["TF_CONFIG"]), &c); err != nil {
			t.Fatalf("%s: TF_CONFIG %q: %v", r.Label, r.Env["TF_CONFIG"], err)
		}
		if len(c.Cluster["worker"]) != 2 || len(c.Cluster["ps"]) != 1 || c.Task.Type+" "+itoa(c.Task.Index) != r.Label {
			t.Errorf("%s: TF_CONFIG %s", r.Label, r.Env["TF_CONFIG"])
		}
		all := append(append([]string{}, c.Cluster["worker"]...), c.Cluster["ps"]...)
		if first == nil {
			first = all
		} else if len(all) != len(first) || all[0] != first[0] || all[2] != first[2] {
			t.Errorf("%s sees the cluster %v, worker 0 sees %v", r.Label, all, first)
		}
	}
	if first[0] == first[1] || first[1] == first[2] {
		t.Errorf("tasks share an address: %v", first)
	}
}

func TestPlanRanksRefusesOtherTypes(t *testing.T) {
	if _, err := planRanks(&DistributionSpec{Type: "ray", InstanceCount: 2}, countingPorts()); err == nil {
		t.Error("ray distribution planned as local processes")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
