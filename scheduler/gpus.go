package scheduler

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sandbox"
)

// gpusPerInstance is how many GPUs each instance of a step gets, and
// where that number comes from: resources.gpus_per_instance, else the
// GPUs of resources.instance_type, else those of the compute's size.
func gpusPerInstance(spec *StepSpec, compute *wharf.Compute) (int, string) {
	if spec.GPUsPerInstance != nil {
		return *spec.GPUsPerInstance, "resources.gpus_per_instance"
	}
	if spec.InstanceType != "" {
		n, _ := wharf.GPUsOfSize(spec.InstanceType)
		return n, "resources.instance_type " + spec.InstanceType
	}
	n, _ := wharf.GPUsOfSize(compute.Size)
	return n, "compute " + compute.Name + "'s size " + compute.Size
}

// instances is how many instances a step runs on.
func instances(spec *StepSpec) int {
	if spec.Distribution == nil {
		return 1
	}
	return max(spec.Distribution.InstanceCount, 1)
}

// tooFewGPUs says why a step that asks for need GPUs can never run here,
// or is "" when the host has enough.
func (s *Scheduler) tooFewGPUs(spec *StepSpec, compute *wharf.Compute) string {
	per, source := gpusPerInstance(spec, compute)
	need := per * instances(spec)
	if need == 0 {
		return ""
	}
	host, none := s.GPUs.Host()
	if need <= len(host) {
		return ""
	}
	if none == "" {
		none = fmt.Sprintf("this host has %d", len(host))
	}
	return fmt.Sprintf("the step asks for %s (%d per instance from %s, %s), more than exist: %s",
		count(need, "GPU"), per, source, count(instances(spec), "instance"), none)
}

// count is n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// visibleGPUs is CUDA_VISIBLE_DEVICES for the processes of instance node
// of a step given ids, or "" when the host has no GPU to hide: each
// instance sees its own share, and a step that asked for none sees none.
func (s *Scheduler) visibleGPUs(ids []string, spec *StepSpec, node int) (string, bool) {
	if host, _ := s.GPUs.Host(); len(host) == 0 {
		return "", false
	}
	per := len(ids) / instances(spec)
	return strings.Join(ids[node*per:(node+1)*per], ","), true
}

// failQueued fails a step before it gets an attempt, for a reason no
// retry would change.
func (s *Scheduler) failQueued(ctx context.Context, st *wharf.Job, at *attemptRec, reason string, log io.Writer) error {
	fmt.Fprintf(log, "[wharf] not run: %s\n", reason)
	now := s.Now().UTC()
	done, err := s.update(context.WithoutCancel(ctx), st.Workspace, st.Name, func(j *wharf.Job) error {
		if at.fields != nil {
			at.fields(j)
		}
		keepRun(j, st)
		j.Status, j.Error, j.EndedAt = wharf.JobFailed, reason, &now
		return nil
	})
	if err != nil {
		return err
	}
	at.fields = nil
	s.endRun(ctx, done)
	return nil
}

// gpuDevices are the device files a sandboxed step needs to reach the
// host's NVIDIA GPUs. All of them: CUDA_VISIBLE_DEVICES, not the device
// files, says which GPUs are the step's.
func gpuDevices() []sandbox.Mount {
	paths, _ := filepath.Glob("/dev/nvidia*")
	mounts := make([]sandbox.Mount, 0, len(paths))
	for _, p := range paths {
		mounts = append(mounts, sandbox.Mount{Path: p, Writable: true, Device: true})
	}
	return mounts
}
