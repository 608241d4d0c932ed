// Package infra reads the infrastructure config of the Azure MLOps v2
// template (config-infra-prod.yml / config-infra-dev.yml) so that
// `wharf infra apply` can stand up the equivalent self-hosted resources from
// the very file users already keep in their repository, and computes the
// plan that brings the current state to the declared one.
package infra

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wharfml/wharf/yamlfile"
	"go.yaml.in/yaml/v3"
)

// Config is the resolved infrastructure config.
type Config struct {
	// File is the config file the values came from, for messages.
	File string

	Namespace   string
	Postfix     string // kept as written, so "0659" keeps its leading zero
	Location    string // "local" when the file does not set it
	Environment string

	// EnableComputeCluster declares the cpu-cluster and batch-cluster
	// compute targets (template variable enable_aml_computecluster;
	// default true).
	EnableComputeCluster bool
	// EnableMonitoring declares a monitoring store for the workspace
	// (template variable enable_monitoring; default false).
	EnableMonitoring bool
	// DatastoreType is the default datastore's type (variable
	// datastore_type: local, the default, azure_blob or s3). An azure_blob
	// one is the container datastore_container (default
	// azureml-blobstore) of storage_account; an s3 one is the bucket
	// datastore_bucket. datastore_endpoint, datastore_protocol,
	// datastore_region and datastore_path_style place them; credentials
	// come from the environment of `infra apply`, never the file.
	DatastoreType string

	// Vars holds every variable of the file with $(name) references
	// expanded. Keys are lower-cased because Azure Pipelines variable names
	// are case-insensitive.
	Vars map[string]string
}

// Variables the template defines that have a meaning here.
const (
	varNamespace      = "namespace"
	varPostfix        = "postfix"
	varEnvironment    = "environment"
	varLocation       = "location"
	varEnableCompute  = "enable_aml_computecluster"
	varEnableMonitor  = "enable_monitoring"
	varWorkspace      = "aml_workspace"
	varResourceGroup  = "resource_group"
	varKeyVault       = "key_vault"
	varMonitoring     = "application_insights"
	varStorageAccount = "storage_account"
	varDatastoreType  = "datastore_type"
	varDatastoreBkt   = "datastore_bucket"

	// DefaultLocation is used when the file has no location variable; a
	// self-hosted install has no Azure region.
	DefaultLocation = "local"
)

// clusterVars are optional overrides for the two compute clusters.
var clusterVars = []struct{ size, max string }{
	{"cpu_cluster_size", "cpu_cluster_max_instances"},
	{"batch_cluster_size", "batch_cluster_max_instances"},
}

// Load reads and resolves the config file at path. Problems are returned as
// a *yamlfile.ErrorList naming file, line and variable.
func Load(path string) (*Config, error) {
	doc, err := yamlfile.Load(path)
	if err != nil {
		return nil, err
	}
	return FromDocument(doc)
}

// FromDocument resolves an already parsed config, so a caller can apply
// --set overrides (e.g. variables.postfix=0660) before resolving.
func FromDocument(doc *yamlfile.Document) (*Config, error) {
	var file struct {
		Variables variables `yaml:"variables"`
	}
	if err := yamlfile.Decode(doc, &file); err != nil {
		return nil, err
	}
	r := &resolver{doc: doc}
	if !file.Variables.present {
		r.add(&yamlfile.Error{File: doc.File, Field: "variables",
			Msg: "missing section: the config must define its variables under \"variables:\""})
		return nil, &r.errs
	}
	return r.resolve(file.Variables.list, sectionLine(doc))
}

// sectionLine is the line of the "variables:" key, used for errors about
// variables that are missing altogether.
func sectionLine(doc *yamlfile.Document) int {
	for i := 0; i+1 < len(doc.Root.Content); i += 2 {
		if doc.Root.Content[i].Value == "variables" {
			return doc.Root.Content[i].Line
		}
	}
	return 0
}

// variable is one entry of the variables section before expansion.
type variable struct {
	name  string // as written
	value string // raw scalar text
	field string // dotted path for errors
	node  *yaml.Node
}

// variables accepts both shapes Azure Pipelines allows: a mapping of
// name: value, and a list of {name, value} entries.
type variables struct {
	present bool
	list    []variable
}

// UnmarshalYAMLNode implements yamlfile.NodeUnmarshaler.
func (vs *variables) UnmarshalYAMLNode(n *yaml.Node) error {
	vs.present = true
	var errs yamlfile.ErrorList
	fail := func(node *yaml.Node, field, format string, args ...any) {
		errs.Errors = append(errs.Errors, yamlfile.NodeError(nil, node, field, format, args...))
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				fail(k, "", "variable names must be plain text")
				continue
			}
			value, ok := scalarText(v)
			if !ok {
				fail(v, k.Value, "expected a plain value, got a %s", shape(v))
				continue
			}
			vs.list = append(vs.list, variable{name: k.Value, value: value, field: "variables." + k.Value, node: v})
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			at := fmt.Sprintf("[%d]", i)
			var entry struct {
				Name     *string    `yaml:"name"`
				Value    *yaml.Node `yaml:"value"`
				Readonly bool       `yaml:"readonly"`
				Group    string     `yaml:"group"`
				Template string     `yaml:"template"`
			}
			if err := yamlfile.DecodeNode(nil, item, at, &entry); err != nil {
				errs.Errors = append(errs.Errors, yamlfile.AsList(err)...)
				continue
			}
			switch {
			case entry.Group != "":
				fail(item, at+".group", "variable groups live in Azure DevOps and cannot be read here; list the variables directly")
				continue
			case entry.Template != "":
				fail(item, at+".template", "variable templates are not supported; list the variables directly")
				continue
			case entry.Name == nil || *entry.Name == "":
				fail(item, at, "variable entry needs a name")
				continue
			}
			value, node := "", item
			if entry.Value != nil {
				var ok bool
				if value, ok = scalarText(entry.Value); !ok {
					fail(entry.Value, at+".value", "expected a plain value, got a %s", shape(entry.Value))
					continue
				}
				node = entry.Value
			}
			vs.list = append(vs.list, variable{name: *entry.Name, value: value, field: "variables" + at + ".value", node: node})
		}
	default:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		fail(n, "", "expected a mapping of name: value or a list of {name, value} entries, got a %s", shape(n))
	}
	if len(errs.Errors) > 0 {
		return &errs
	}
	return nil
}

// scalarText returns the raw text of a scalar (null as ""), resolving
// aliases; ok is false for mappings and lists.
func scalarText(n *yaml.Node) (string, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// resolver expands and validates variables, collecting every problem.
type resolver struct {
	doc  *yamlfile.Document
	errs yamlfile.ErrorList

	byName   map[string]*variable // lower-cased name -> entry
	state    map[string]int       // expansion state: 1 in progress, 2 done
	expanded map[string]string
	failed   map[string]bool // expansion already reported an error
}

func (r *resolver) add(e *yamlfile.Error) { r.errs.Errors = append(r.errs.Errors, e) }

func (r *resolver) fail(v *variable, format string, args ...any) {
	r.add(yamlfile.NodeError(r.doc, v.node, v.field, format, args...))
}

// refPattern matches Azure Pipelines macro syntax $(name).
var refPattern = regexp.MustCompile(`\$\(([A-Za-z0-9_.\-]+)\)`)

var (
	alnum      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	envPattern = regexp.MustCompile(`^[a-z0-9]{1,10}$`)
	vmSize     = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// resourceName is the common subset of Azure naming rules, so a name
	// that works here also works if the file is used with Azure again.
	resourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
)

func (r *resolver) resolve(list []variable, line int) (*Config, error) {
	r.byName = map[string]*variable{}
	r.state = map[string]int{}
	r.expanded = map[string]string{}
	r.failed = map[string]bool{}
	for i := range list {
		v := &list[i]
		key := strings.ToLower(v.name)
		if first, ok := r.byName[key]; ok {
			r.fail(v, "variable %q is defined more than once (first at line %d)", v.name, first.node.Line)
			continue
		}
		r.byName[key] = v
	}
	if loc, ok := r.byName[varLocation]; !ok || strings.TrimSpace(loc.value) == "" {
		r.byName[varLocation] = &variable{name: varLocation, value: DefaultLocation, field: "variables." + varLocation}
	}
	for i := range list {
		r.expand(&list[i], nil)
	}

	c := &Config{File: r.doc.File, Vars: make(map[string]string, len(r.expanded))}
	for k, v := range r.expanded {
		c.Vars[k] = v
	}
	c.Vars[varLocation] = r.value(varLocation)
	c.Location = c.Vars[varLocation]

	required := func(name string, valid *regexp.Regexp, rule string) string {
		v, ok := r.byName[name]
		if !ok {
			r.add(&yamlfile.Error{File: r.doc.File, Line: line, Field: "variables." + name, Msg: "required variable is missing"})
			return ""
		}
		val := r.value(name)
		switch {
		case r.failed[name]:
		case val == "":
			r.fail(v, "required variable is empty")
		case !valid.MatchString(val):
			r.fail(v, "%s %q %s", name, val, rule)
		}
		return val
	}
	const nameRule = "may contain only letters and digits, because it becomes part of resource names"
	c.Namespace = required(varNamespace, alnum, nameRule)
	c.Postfix = required(varPostfix, alnum, nameRule)
	c.Environment = required(varEnvironment, envPattern, "must be a short lowercase word of letters and digits (at most 10), such as dev or prod")

	c.EnableComputeCluster = r.boolean(varEnableCompute, true)
	c.EnableMonitoring = r.boolean(varEnableMonitor, false)
	c.DatastoreType = defaultDatastoreType
	if v, ok := r.byName[varDatastoreType]; ok && !r.failed[varDatastoreType] {
		switch c.DatastoreType = strings.TrimSpace(r.value(varDatastoreType)); c.DatastoreType {
		case "local", "azure_blob":
		case "s3":
			if _, ok := r.byName[varDatastoreBkt]; !ok || strings.TrimSpace(r.value(varDatastoreBkt)) == "" {
				r.fail(v, "an s3 datastore needs the variable %s", varDatastoreBkt)
			}
		default:
			r.fail(v, "expected local, azure_blob or s3, got %q", c.DatastoreType)
		}
	}
	r.boolean("datastore_path_style", false)

	for _, cv := range clusterVars {
		if v, ok := r.byName[cv.size]; ok && !r.failed[cv.size] && !vmSize.MatchString(r.value(cv.size)) {
			r.fail(v, "expected a VM size such as Standard_DS3_v2, got %q", r.value(cv.size))
		}
		if v, ok := r.byName[cv.max]; ok && !r.failed[cv.max] {
			if n, err := strconv.Atoi(r.value(cv.max)); err != nil || n < 0 {
				r.fail(v, "expected a non-negative integer, got %q", r.value(cv.max))
			}
		}
	}

	if len(r.errs.Errors) == 0 {
		names := []struct {
			what, variable, name string
		}{
			{"workspace", varWorkspace, c.WorkspaceName()},
			{"resource group", varResourceGroup, c.ResourceGroup()},
			{"key vault", varKeyVault, c.KeyVault()},
			{"monitoring store", varMonitoring, c.MonitoringStore()},
		}
		for _, n := range names {
			if resourceName.MatchString(n.name) {
				continue
			}
			v, ok := r.byName[n.variable]
			if !ok {
				v = r.byName[varNamespace]
			}
			r.fail(v, "%s name %q is not a valid resource name (letters, digits, - and _, starting with a letter or digit, at most 63 characters)", n.what, n.name)
		}
	}
	if len(r.errs.Errors) > 0 {
		// Checks run by kind, not by position; report in file order.
		slices.SortStableFunc(r.errs.Errors, func(a, b *yamlfile.Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, &r.errs
	}
	return c, nil
}

// value is the expanded value of a known variable.
func (r *resolver) value(name string) string {
	if v, ok := r.expanded[name]; ok {
		return v
	}
	if v, ok := r.byName[name]; ok {
		return v.value
	}
	return ""
}

// expand resolves $(name) references depth first. stack holds the chain
// being expanded, so a reference back into it is reported as a cycle.
func (r *resolver) expand(v *variable, stack []*variable) (string, bool) {
	key := strings.ToLower(v.name)
	if r.byName[key] != v {
		return v.value, false // a duplicate, already reported
	}
	switch r.state[key] {
	case 2:
		return r.expanded[key], !r.failed[key]
	case 1:
		start := 0
		for i, s := range stack {
			if s == v {
				start = i
			}
		}
		chain := make([]string, 0, len(stack)-start+1)
		for _, s := range stack[start:] {
			chain = append(chain, s.name)
		}
		chain = append(chain, v.name)
		r.fail(v, "variable reference cycle: %s", strings.Join(chain, " -> "))
		return "", false
	}
	r.state[key] = 1
	stack = append(stack, v)
	ok := true
	out := refPattern.ReplaceAllStringFunc(v.value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		target, found := r.byName[strings.ToLower(name)]
		if !found {
			r.fail(v, "unknown variable %q referenced as %s", name, ref)
			ok = false
			return ref
		}
		val, good := r.expand(target, stack)
		ok = ok && good
		return val
	})
	r.state[key] = 2
	r.expanded[key] = out
	r.failed[key] = !ok
	return out, ok
}

// boolean reads an enable_* flag. Azure Pipelines compares these as text,
// so only true and false (in any case) are meaningful.
func (r *resolver) boolean(name string, def bool) bool {
	v, ok := r.byName[name]
	if !ok {
		return def
	}
	val := strings.TrimSpace(r.value(name))
	switch {
	case r.failed[name]:
		return def
	case strings.EqualFold(val, "true"):
		return true
	case strings.EqualFold(val, "false"):
		return false
	}
	r.fail(v, "expected true or false, got %q", val)
	return def
}

// pick returns the explicit variable if set, else the template formula.
func (c *Config) pick(variable, prefix, sep string) string {
	if v := c.Vars[variable]; v != "" {
		return v
	}
	return prefix + sep + c.Namespace + sep + c.Postfix + c.Environment
}

// WorkspaceName is aml_workspace, or mlw-<namespace>-<postfix><environment>
// as the template derives it.
func (c *Config) WorkspaceName() string { return c.pick(varWorkspace, "mlw", "-") }

// ResourceGroup is resource_group, or rg-<namespace>-<postfix><environment>.
func (c *Config) ResourceGroup() string { return c.pick(varResourceGroup, "rg", "-") }

// KeyVault is key_vault, or kv-<namespace>-<postfix><environment>.
func (c *Config) KeyVault() string { return c.pick(varKeyVault, "kv", "-") }

// MonitoringStore is application_insights, or the workspace-style
// mlw-<namespace>-<postfix><environment> the template uses for it.
func (c *Config) MonitoringStore() string { return c.pick(varMonitoring, "mlw", "-") }

// StorageAccount is storage_account, or st<namespace><postfix><environment>
// (no separators: Azure storage account names allow none).
func (c *Config) StorageAccount() string { return c.pick(varStorageAccount, "st", "") }
