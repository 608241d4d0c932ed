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

// TestDistributeOnClusterRefusesMPI: an mpi step on a Ray-backed cluster
// is refused, saying why and what to do, rather than started without an
// MPI runtime.
func TestDistributeOnClusterRefusesMPI(t *testing.T) {
	spec := &StepSpec{Distribution: &DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 1}}
	a := &wharf.ClusterAssignment{Options: wharf.ClusterTaskOptions{NumCPUs: 1}}
	err := distributeOnCluster(a, spec, &wharf.Compute{Name: "ray-cluster"})
	if err == nil {
		t.Fatalf("an mpi step was laid out on Ray: %+v", a.Ranks)
	}
	for _, want := range []string{"mpi", "ray-cluster", "local compute"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(a.Ranks) != 0 || a.Options.PlacementGroup != nil {
		t.Errorf("the refused step was laid out anyway: %+v", a)
	}
}
