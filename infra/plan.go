package infra

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Resource kinds a config declares, in the order they must be created.
const (
	// KindWorkspace is the ML workspace every other resource belongs to.
	KindWorkspace = "workspace"
	// KindDatastore is where the workspace keeps data assets.
	KindDatastore = "datastore"
	// KindSecretStore replaces the template's Azure Key Vault.
	KindSecretStore = "secret_store"
	// KindMonitoringStore replaces the template's Application Insights.
	KindMonitoringStore = "monitoring_store"
	// KindCompute is a training or batch-scoring cluster.
	KindCompute = "compute"
)

// kindOrder ranks kinds by dependency so plans apply parents first; kinds
// not listed sort after these, alphabetically.
var kindOrder = []string{KindWorkspace, KindDatastore, KindSecretStore, KindMonitoringStore, KindCompute}

// Resource is one object of the desired or current state. Properties are
// flat strings so desired and server-reported state compare without type
// coercion surprises.
type Resource struct {
	Kind       string
	Name       string
	Properties map[string]string
}

// Cluster defaults from the MLOps v2 template's compute definitions.
const (
	defaultClusterSize   = "Standard_DS3_v2"
	defaultCPUMax        = 4
	defaultBatchMax      = 5
	defaultDatastore     = "workspaceblobstore"
	clusterCPU           = "cpu-cluster"
	clusterBatch         = "batch-cluster"
	defaultClusterTier   = "dedicated"
	defaultComputeType   = "amlcompute"
	defaultDatastoreType = "local"
)

// Desired lists the resources the config declares, in dependency order
// (workspace first).
func (c *Config) Desired() []Resource {
	monitoring := ""
	if c.EnableMonitoring {
		monitoring = c.MonitoringStore()
	}
	out := []Resource{
		{Kind: KindWorkspace, Name: c.WorkspaceName(), Properties: map[string]string{
			"resource_group":   c.ResourceGroup(),
			"location":         c.Location,
			"key_vault":        c.KeyVault(),
			"monitoring_store": monitoring,
			"environment":      c.Environment,
		}},
		{Kind: KindDatastore, Name: defaultDatastore, Properties: c.datastoreProperties()},
		{Kind: KindSecretStore, Name: c.KeyVault(), Properties: map[string]string{}},
	}
	if c.EnableMonitoring {
		out = append(out, Resource{Kind: KindMonitoringStore, Name: monitoring, Properties: map[string]string{}})
	}
	if c.EnableComputeCluster {
		out = append(out,
			c.cluster(clusterBatch, clusterVars[1].size, clusterVars[1].max, defaultBatchMax),
			c.cluster(clusterCPU, clusterVars[0].size, clusterVars[0].max, defaultCPUMax),
		)
	}
	sortResources(out, func(r Resource) Resource { return r })
	return out
}

// datastoreProperties declares the default datastore: local, or the Blob
// container or S3 bucket the datastore_* variables name.
func (c *Config) datastoreProperties() map[string]string {
	typ := c.DatastoreType
	if typ == "" {
		typ = defaultDatastoreType
	}
	p := map[string]string{"type": typ, "default": "true"}
	switch typ {
	case "azure_blob":
		p["account_name"] = c.StorageAccount()
		p["container_name"] = cmp.Or(c.Vars["datastore_container"], "azureml-blobstore")
		p["endpoint"] = c.Vars["datastore_endpoint"]
		p["protocol"] = c.Vars["datastore_protocol"]
	case "s3":
		p["bucket"] = c.Vars["datastore_bucket"]
		p["endpoint"] = c.Vars["datastore_endpoint"]
		p["region"] = c.Vars["datastore_region"]
		p["path_style"] = strconv.FormatBool(strings.EqualFold(strings.TrimSpace(c.Vars["datastore_path_style"]), "true"))
	}
	return p
}

func (c *Config) cluster(name, sizeVar, maxVar string, defMax int) Resource {
	size := c.Vars[sizeVar]
	if size == "" {
		size = defaultClusterSize
	}
	maxN := defMax
	// Load has validated the value; a hand-built Config with a bad one
	// falls back to the default rather than declaring garbage.
	if n, err := strconv.Atoi(c.Vars[maxVar]); err == nil && n >= 0 {
		maxN = n
	}
	return Resource{Kind: KindCompute, Name: name, Properties: map[string]string{
		"type":          defaultComputeType,
		"size":          size,
		"min_instances": "0",
		"max_instances": strconv.Itoa(maxN),
		"tier":          defaultClusterTier,
	}}
}

// Action is what applying a Change does.
type Action int

// Actions of a plan. Delete exists for completeness of the model; Diff never
// produces it because apply must not destroy anything.
const (
	// NoOp: the resource exists and matches.
	NoOp Action = iota
	// Create: the resource does not exist yet.
	Create
	// Update: the resource exists but some declared properties differ.
	Update
	// Delete: the resource would be removed (never produced by Diff).
	Delete
)

// String names the action for logs and JSON output.
func (a Action) String() string {
	switch a {
	case NoOp:
		return "no-op"
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Change is one step of a plan. Resource is the desired state (for Delete,
// the current one); Old is the current properties for Update and NoOp.
type Change struct {
	Action   Action
	Resource Resource
	Old      map[string]string
}

// ChangedKeys lists, sorted, the properties an Update changes. A property
// missing from Old counts as empty, as servers often omit empty fields.
func (c Change) ChangedKeys() []string {
	var keys []string
	for k, v := range c.Resource.Properties {
		if c.Old[k] != v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Plan is the ordered list of changes that brings current to desired.
type Plan []Change

// Diff compares desired with current resources (matched by kind and name).
// Only properties present in desired are compared, so extra server-side
// fields never cause drift. Resources that exist only in current are left
// out: apply never deletes. The plan is in dependency order, then by name.
func Diff(desired, current []Resource) Plan {
	have := make(map[[2]string]Resource, len(current))
	for _, r := range current {
		k := [2]string{r.Kind, r.Name}
		if _, dup := have[k]; !dup {
			have[k] = r
		}
	}
	seen := map[[2]string]bool{}
	var plan Plan
	for _, want := range desired {
		k := [2]string{want.Kind, want.Name}
		if seen[k] {
			continue
		}
		seen[k] = true
		cur, ok := have[k]
		if !ok {
			plan = append(plan, Change{Action: Create, Resource: want})
			continue
		}
		ch := Change{Action: NoOp, Resource: want, Old: maps.Clone(cur.Properties)}
		if ch.Old == nil {
			ch.Old = map[string]string{}
		}
		if len(ch.ChangedKeys()) > 0 {
			ch.Action = Update
		}
		plan = append(plan, ch)
	}
	sortResources(plan, func(c Change) Resource { return c.Resource })
	return plan
}

func sortResources[T any](items []T, res func(T) Resource) {
	rank := func(kind string) int {
		if i := slices.Index(kindOrder, kind); i >= 0 {
			return i
		}
		return len(kindOrder)
	}
	slices.SortStableFunc(items, func(a, b T) int {
		ra, rb := res(a), res(b)
		if d := rank(ra.Kind) - rank(rb.Kind); d != 0 {
			return d
		}
		if d := strings.Compare(ra.Kind, rb.Kind); d != 0 {
			return d
		}
		return strings.Compare(ra.Name, rb.Name)
	})
}

// Empty reports whether applying the plan would change nothing.
func (p Plan) Empty() bool {
	for _, c := range p {
		if c.Action != NoOp {
			return false
		}
	}
	return true
}

// Render writes a human-readable diff in plan order with sorted property
// keys, so output is stable across runs and reviewable in CI logs:
//
//   - workspace mlw-mlopsv2-0659prod
//
//   - key_vault = kv-mlopsv2-0659prod
//     ~ compute cpu-cluster
//     ~ max_instances: 4 -> 5
//
//     Plan: 1 to create, 1 to update, 3 unchanged.
//
// An empty plan renders as "no changes".
func (p Plan) Render(w io.Writer) error {
	var b strings.Builder
	if p.Empty() {
		b.WriteString("no changes\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	var created, updated, deleted, same int
	for _, c := range p {
		switch c.Action {
		case Create:
			created++
			fmt.Fprintf(&b, "+ %s %s\n", c.Resource.Kind, c.Resource.Name)
			for _, k := range slices.Sorted(maps.Keys(c.Resource.Properties)) {
				fmt.Fprintf(&b, "    + %s = %s\n", k, show(c.Resource.Properties[k]))
			}
		case Update:
			updated++
			fmt.Fprintf(&b, "~ %s %s\n", c.Resource.Kind, c.Resource.Name)
			for _, k := range c.ChangedKeys() {
				fmt.Fprintf(&b, "    ~ %s: %s -> %s\n", k, show(c.Old[k]), show(c.Resource.Properties[k]))
			}
		case Delete:
			deleted++
			fmt.Fprintf(&b, "- %s %s\n", c.Resource.Kind, c.Resource.Name)
		default:
			same++
		}
	}
	parts := []string{fmt.Sprintf("%d to create", created), fmt.Sprintf("%d to update", updated)}
	if deleted > 0 {
		parts = append(parts, fmt.Sprintf("%d to delete", deleted))
	}
	parts = append(parts, fmt.Sprintf("%d unchanged", same))
	fmt.Fprintf(&b, "\nPlan: %s.\n", strings.Join(parts, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// show quotes values that would otherwise be invisible or ambiguous in
// the diff (empty, spaces, control characters).
func show(v string) string {
	if v == "" || strings.IndexFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"'
	}) >= 0 {
		return strconv.Quote(v)
	}
	return v
}
