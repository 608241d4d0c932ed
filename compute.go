package wharf

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// Compute types and tiers. Azure ML's CLI accepts them in any case
// (`AmlCompute`, `Dedicated`); Wharf stores the lower-case form.
const (
	ComputeTypeAML = "amlcompute"
	// ComputeTypeRay is a cluster backed by a Ray cluster, reached at the
	// Ray dashboard's address (its Jobs API): steps run there as Ray
	// tasks, not on the server's machine.
	ComputeTypeRay     = "ray"
	TierDedicated      = "dedicated"
	TierLowPriority    = "low_priority"
	DefaultComputeSize = "Standard_DS3_v2"
	// DefaultRaySteps is how many steps a Ray-backed cluster is handed
	// at once when max_instances is not given: Ray itself queues tasks
	// on the cluster's resources, so Wharf's limit only bounds what is
	// in flight.
	DefaultRaySteps = 256
)

// Compute is a compute cluster: a pool of up to MaxInstances nodes on which
// job steps run.
type Compute struct {
	Workspace    string `json:"-"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	Size         string `json:"size"`
	MinInstances int    `json:"min_instances"`
	MaxInstances int    `json:"max_instances"`
	Tier         string `json:"tier"`
	// IdleTimeBeforeScaleDown is in seconds, as in the Azure ML schema.
	IdleTimeBeforeScaleDown int               `json:"idle_time_before_scale_down"`
	Location                string            `json:"location"`
	Description             string            `json:"description"`
	Tags                    map[string]string `json:"tags"`
	// Address is a Ray-backed cluster's Ray dashboard URL
	// (http://head:8265), where its Jobs API answers; empty for others.
	Address string `json:"address,omitempty"`
	// Sandbox says whether a Ray-backed cluster's steps run sandboxed on
	// its nodes, as local steps do (true, the default), or as the Ray
	// worker's user; nil for other clusters, which follow the server's
	// own setting.
	Sandbox *bool `json:"sandbox,omitempty"`
	// SandboxReadOnlyPaths are folders of a Ray-backed cluster's nodes
	// (datasets on a shared file system, say) that its sandboxed steps
	// see read-only, at the same path; the node's other files stay out
	// of their sight.
	SandboxReadOnlyPaths []string  `json:"sandbox_read_only_paths,omitempty"`
	ProvisioningState    string    `json:"provisioning_state"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// Validate normalises case-insensitive fields, fills the Azure ML defaults and
// checks ranges.
func (c *Compute) Validate() error {
	if err := ValidateName("name", c.Name); err != nil {
		return err
	}
	c.Type = strings.ToLower(c.Type)
	if c.Type == "" {
		c.Type = ComputeTypeAML
	}
	switch c.Type {
	case ComputeTypeAML:
		if c.Address != "" {
			return Errorf(EINVALID, "address is for type ray only; an amlcompute cluster runs on the server's machine").WithField("address")
		}
		if c.Sandbox != nil && !*c.Sandbox {
			return Errorf(EINVALID, "sandbox: false is for type ray only; steps on the server's machine are sandboxed by the server's own setting").WithField("sandbox")
		}
		if len(c.SandboxReadOnlyPaths) > 0 {
			return Errorf(EINVALID, "sandbox_read_only_paths is for type ray only; the server's --step-ro-path gives steps on its own machine extra read-only paths").
				WithField("sandbox_read_only_paths")
		}
		c.Sandbox = nil
	case ComputeTypeRay:
		if err := validateRayAddress(c.Address); err != nil {
			return err
		}
		c.Address = strings.TrimRight(c.Address, "/")
		if c.Sandbox == nil {
			sandboxed := true
			c.Sandbox = &sandboxed
		}
		paths, err := readOnlyPaths(c.SandboxReadOnlyPaths, *c.Sandbox)
		if err != nil {
			return err
		}
		c.SandboxReadOnlyPaths = paths
		if c.MaxInstances == 0 {
			c.MaxInstances = DefaultRaySteps
		}
	default:
		return Errorf(EINVALID, "type %q is not supported (allowed: amlcompute, ray)", c.Type).WithField("type")
	}
	c.Tier = strings.ToLower(strings.ReplaceAll(c.Tier, "-", "_"))
	switch c.Tier {
	case "":
		c.Tier = TierDedicated
	case "lowpriority":
		c.Tier = TierLowPriority
	case TierDedicated, TierLowPriority:
	default:
		return Errorf(EINVALID, "tier %q is not supported (allowed: dedicated, low_priority)", c.Tier).WithField("tier")
	}
	if c.Size == "" {
		c.Size = DefaultComputeSize
	}
	if c.MinInstances < 0 {
		return Errorf(EINVALID, "min_instances must be 0 or more, got %d", c.MinInstances).WithField("min_instances")
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = 1
	}
	if c.MaxInstances < 1 {
		return Errorf(EINVALID, "max_instances must be 1 or more, got %d", c.MaxInstances).WithField("max_instances")
	}
	if c.MinInstances > c.MaxInstances {
		return Errorf(EINVALID, "min_instances (%d) is greater than max_instances (%d)", c.MinInstances, c.MaxInstances).WithField("min_instances")
	}
	if c.IdleTimeBeforeScaleDown == 0 {
		c.IdleTimeBeforeScaleDown = 120
	}
	if c.IdleTimeBeforeScaleDown < 0 {
		return Errorf(EINVALID, "idle_time_before_scale_down must be positive").WithField("idle_time_before_scale_down")
	}
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	c.ProvisioningState = "Succeeded"
	return nil
}

// validateRayAddress checks a Ray dashboard address: an http or https URL
// with a host and nothing after the path.
func validateRayAddress(addr string) error {
	if addr == "" {
		return Errorf(EINVALID, "a ray cluster needs address: its Ray dashboard URL, e.g. http://head:8265").WithField("address")
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return Errorf(EINVALID, "address %q is not a URL: %v", addr, err).WithField("address")
	case u.Scheme != "http" && u.Scheme != "https":
		return Errorf(EINVALID, "address %q must start with http:// or https://", addr).WithField("address")
	case u.Host == "":
		return Errorf(EINVALID, "address %q names no host", addr).WithField("address")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return Errorf(EINVALID, "address %q must be the dashboard's URL alone, without credentials, query or fragment", addr).WithField("address")
	}
	return nil
}

// ComputeService manages compute clusters.
type ComputeService interface {
	FindCompute(ctx context.Context, workspace, name string) (*Compute, error)
	ListComputes(ctx context.Context, workspace string) ([]*Compute, error)
	// PutCompute creates or updates a cluster (create-or-update, as
	// `az ml compute create` behaves). ENOTFOUND if the workspace is missing.
	PutCompute(ctx context.Context, c *Compute) (created bool, err error)
	DeleteCompute(ctx context.Context, workspace, name string) error
}

// readOnlyPaths checks a Ray-backed compute's sandbox_read_only_paths and
// returns them cleaned: absolute folders other than the root, each once,
// on a compute whose steps are sandboxed (unsandboxed steps see the whole
// node already).
func readOnlyPaths(paths []string, sandboxed bool) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	field := "sandbox_read_only_paths"
	if !sandboxed {
		return nil, Errorf(EINVALID, "sandbox_read_only_paths is for sandboxed steps; with sandbox: false they run as the Ray worker's user "+
			"and see every file it sees").WithField(field)
	}
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		clean, at := path.Clean(p), fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !path.IsAbs(p):
			return nil, Errorf(EINVALID, "%s %q is not an absolute path", at, p).WithField(at)
		case clean == "/":
			return nil, Errorf(EINVALID, "%s is the root folder, which would show steps the whole node; name the shared folders", at).WithField(at)
		case slices.Contains(out, clean):
			return nil, Errorf(EINVALID, "%s %q is named twice", at, p).WithField(at)
		}
		out = append(out, clean)
	}
	return out, nil
}
