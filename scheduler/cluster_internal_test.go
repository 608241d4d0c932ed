package scheduler

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// TestDistributeOnClusterReservesABundlePerInstance: a pytorch step of 2
// instances x 2 processes with 2 GPUs per instance is a placement group of
// two bundles of 2 CPUs and 2 GPUs, each process a task with a GPU in its
// instance's bundle, with the variables of local compute except the one
// the step sets itself.
func TestDistributeOnClusterReservesABundlePerInstance(t *testing.T) {
	gpus := 2
	spec := &StepSpec{Distribution: &DistributionSpec{Type: "pytorch", InstanceCount: 2, ProcessCountPerInstance: 2},
		GPUsPerInstance: &gpus, EnvVars: map[string]string{"MASTER_PORT": "29500"}}
	a := &wharf.ClusterAssignment{Options: wharf.ClusterTaskOptions{NumCPUs: 1, NumGPUs: 2}}
	if err := distributeOnCluster(a, spec, &wharf.Compute{Name: "ray-cluster"}); err != nil {
		t.Fatal(err)
	}
	want := &wharf.ClusterPlacementGroup{Strategy: "PACK", Bundles: []map[string]float64{{"CPU": 2, "GPU": 2}, {"CPU": 2, "GPU": 2}}}
	if !reflect.DeepEqual(a.Options.PlacementGroup, want) {
		t.Errorf("placement group %+v, want %+v", a.Options.PlacementGroup, want)
	}
	if a.Options.NumGPUs != 1 || a.Options.NumCPUs != 1 {
		t.Errorf("each process asks for %v CPUs and %v GPUs, want 1 and 1", a.Options.NumCPUs, a.Options.NumGPUs)
	}
	if len(a.Ranks) != 4 {
		t.Fatalf("%d ranks, want 4", len(a.Ranks))
	}
	for i, r := range a.Ranks {
		if r.Bundle != i/2 || r.Label != "rank "+itoa(i) || r.Env["RANK"] != itoa(i) || r.Env["LOCAL_RANK"] != itoa(i%2) ||
			r.Env["WORLD_SIZE"] != "4" || r.Env["MASTER_ADDR"] == "" {
			t.Errorf("rank %d: %+v", i, r)
		}
		if _, set := r.Env["MASTER_PORT"]; set {
			t.Errorf("rank %d sets MASTER_PORT, which the step's environment_variables set", i)
		}
	}
}

// TestDistributeOnClusterLaysOutMPI: an mpi step of 2 instances x 3
// processes with a GPU per instance on a Ray-backed cluster is a placement
// group of two bundles of 3 CPUs and a GPU (each its daemon's, which asks
// for them all) and mpirun's command line for 6 processes, each running the
// command the driver gives its daemon; the variables of local compute's
// mpirun are set except the one the step sets itself, and no process is a
// task of its own.
func TestDistributeOnClusterLaysOutMPI(t *testing.T) {
	gpus := 1
	spec := &StepSpec{Distribution: &DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 3},
		GPUsPerInstance: &gpus, EnvVars: map[string]string{"AZUREML_NODE_COUNT": "7"}}
	a := &wharf.ClusterAssignment{Options: wharf.ClusterTaskOptions{NumCPUs: 1, NumGPUs: 1}, Env: map[string]string{"AZUREML_NODE_COUNT": "7"}}
	if err := distributeOnCluster(a, spec, &wharf.Compute{Name: "ray-cluster"}); err != nil {
		t.Fatal(err)
	}
	want := &wharf.ClusterPlacementGroup{Strategy: "PACK", Bundles: []map[string]float64{{"CPU": 3, "GPU": 1}, {"CPU": 3, "GPU": 1}}}
	if !reflect.DeepEqual(a.Options.PlacementGroup, want) {
		t.Errorf("placement group %+v, want %+v", a.Options.PlacementGroup, want)
	}
	if len(a.Ranks) != 0 {
		t.Errorf("an mpi step's processes are tasks of their own: %+v", a.Ranks)
	}
	if a.MPI == nil || a.MPI.Slots != 3 {
		t.Fatalf("MPI %+v, want 3 slots", a.MPI)
	}
	argv := strings.Join(a.MPI.Argv, " ")
	if a.MPI.Argv[0] != "mpirun" || !strings.Contains(argv, "-np 6 ") || !strings.Contains(argv, "--tag-output") ||
		!strings.HasSuffix(argv, mpiRankCommand) {
		t.Errorf("mpirun's command line: %q", a.MPI.Argv)
	}
	if a.Env["AZUREML_NODE_COUNT"] != "7" || a.Env["AZ_BATCHAI_MPI_MASTER_NODE"] == "" || a.Env["HWLOC_HIDE_ERRORS"] != "2" {
		t.Errorf("variables: %v", a.Env)
	}
}
