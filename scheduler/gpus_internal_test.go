package scheduler

import (
	"testing"

	"github.com/wharfml/wharf"
)

func TestGPUsPerInstanceComeFromOverrideThenInstanceTypeThenComputeSize(t *testing.T) {
	two := 2
	cluster := &wharf.Compute{Name: "gpu-cluster", Size: "Standard_ND96asr_v4"}
	for _, c := range []struct {
		spec StepSpec
		want int
		from string
	}{
		{StepSpec{}, 8, "compute gpu-cluster's size Standard_ND96asr_v4"},
		{StepSpec{InstanceType: "standard_nc24ads_a100_v4"}, 1, "resources.instance_type standard_nc24ads_a100_v4"},
		{StepSpec{InstanceType: "Standard_DS3_v2"}, 0, "resources.instance_type Standard_DS3_v2"},
		{StepSpec{InstanceType: "Standard_NC6s_v3", GPUsPerInstance: &two}, 2, "resources.gpus_per_instance"},
	} {
		n, from := gpusPerInstance(&c.spec, cluster)
		if n != c.want || from != c.from {
			t.Errorf("%+v: %d from %q, want %d from %q", c.spec, n, from, c.want, c.from)
		}
	}
}
