package jobspec

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// ComponentSpec is a command component (commandComponent.schema.json), or
// a parallel one (parallelComponent.schema.json, Parallel set). An inline
// step of a pipeline becomes an anonymous ComponentSpec (empty Name) that
// is deterministic.
type ComponentSpec struct {
	// Type is "pipeline" for a pipeline component
	// (pipelineComponent.schema.json), empty for a command component.
	Type        string `json:",omitempty"`
	Name        string
	Version     string
	DisplayName string
	Description string
	Tags        map[string]string
	// IsDeterministic allows reuse of earlier results; default true.
	IsDeterministic bool
	Command         string
	// Code is the absolute local code folder (or file); empty when CodeRef
	// is set or there is no code.
	Code string
	// CodeRef is a registered code asset.
	CodeRef *AssetRef
	// CodeURI is code stored at a datastore path: content the client
	// uploaded before sending a job document, or a folder on a datastore.
	CodeURI *DatastoreURI
	// AdditionalIncludes are absolute local files and folders that join
	// the code folder at its top, each under its own name, as Azure
	// builds a component's snapshot; the client merges them before it
	// uploads the code.
	AdditionalIncludes []string
	Environment        EnvironmentRef
	Distribution       *Distribution
	Resources          Resources
	Inputs             map[string]*InputSpec
	Outputs            map[string]*OutputSpec
	// Jobs are a pipeline component's steps; nil for a command component.
	Jobs *PipelineJobs `json:",omitempty"`
	// Parallel is set for a parallel component, whose Command runs its
	// task's entry script over mini-batches.
	Parallel *ParallelSpec `json:",omitempty"`
	Pos      Position
}

// IsPipeline reports whether c is a pipeline component.
func (c *ComponentSpec) IsPipeline() bool { return c.Type == KindPipelineComponent }

// KindPipelineComponent is the type of a pipeline component.
const KindPipelineComponent = "pipeline"

// Clone returns a deep copy, so a step can override fields of a shared
// registered component.
func (c *ComponentSpec) Clone() *ComponentSpec {
	if c == nil {
		return nil
	}
	out := *c
	out.Tags = maps.Clone(c.Tags)
	if c.CodeRef != nil {
		r := *c.CodeRef
		out.CodeRef = &r
	}
	if c.CodeURI != nil {
		u := *c.CodeURI
		out.CodeURI = &u
	}
	out.AdditionalIncludes = slices.Clone(c.AdditionalIncludes)
	if c.Jobs != nil {
		j := *c.Jobs
		out.Jobs = &j
	}
	if c.Distribution != nil {
		d := *c.Distribution
		out.Distribution = &d
	}
	if c.Parallel != nil {
		p := *c.Parallel
		out.Parallel = &p
	}
	out.Resources.Locations = append([]string(nil), c.Resources.Locations...)
	if g := c.Resources.GPUsPerInstance; g != nil {
		n := *g
		out.Resources.GPUsPerInstance = &n
	}
	out.Inputs = make(map[string]*InputSpec, len(c.Inputs))
	for k, v := range c.Inputs {
		in := *v
		in.Enum = append([]string(nil), v.Enum...)
		out.Inputs[k] = &in
	}
	out.Outputs = make(map[string]*OutputSpec, len(c.Outputs))
	for k, v := range c.Outputs {
		o := *v
		out.Outputs[k] = &o
	}
	return &out
}

// EnvironmentRef is either a registered environment or an inline one.
type EnvironmentRef struct {
	Ref    *AssetRef
	Inline *EnvironmentSpec
}

// IsZero reports whether no environment is set.
func (e EnvironmentRef) IsZero() bool { return e.Ref == nil && e.Inline == nil }

// InputSpec declares a component input.
type InputSpec struct {
	Name        string
	Type        string
	Description string
	Optional    bool
	// Default is the value used when nothing is bound (literal types only).
	Default *Value
	// Min and Max bound integer and number inputs.
	Min, Max *float64
	// Enum lists the allowed values of a string input.
	Enum []string
	// Mode is the default mode of a data input.
	Mode string
}

// OutputSpec declares a component output.
type OutputSpec struct {
	Name        string
	Type        string
	Description string
	Mode        string
}

// Resources are the compute resources a job asks for.
type Resources struct {
	InstanceCount    int               `yaml:"instance_count"`
	InstanceType     string            `yaml:"instance_type"`
	ShmSize          string            `yaml:"shm_size"`
	DockerArgs       string            `yaml:"docker_args"`
	MaxInstanceCount int               `yaml:"max_instance_count"`
	Locations        []string          `yaml:"locations"`
	Properties       map[string]string `yaml:"properties"`
	// GPUsPerInstance, when set, is how many GPUs each instance gets,
	// whatever instance_type or the compute's size would give: a Wharf
	// field, for hosts whose GPUs no Azure size describes.
	GPUsPerInstance *int `yaml:"gpus_per_instance"`
}

// Distribution configures a distributed run; defaults are filled in as
// Azure ML does (pytorch: one process per instance; tensorflow: one worker
// per instance, no parameter servers).
type Distribution struct {
	// Type is mpi, pytorch, tensorflow or ray.
	Type                    string
	ProcessCountPerInstance int
	WorkerCount             int
	ParameterServerCount    int
	// Ray settings.
	Port                     int
	Address                  string
	IncludeDashboard         bool
	DashboardPort            int
	HeadNodeAdditionalArgs   string
	WorkerNodeAdditionalArgs string
}

type rawDistribution struct {
	Type                     string `yaml:"type"`
	ProcessCountPerInstance  *int   `yaml:"process_count_per_instance"`
	WorkerCount              *int   `yaml:"worker_count"`
	ParameterServerCount     *int   `yaml:"parameter_server_count"`
	Port                     int    `yaml:"port"`
	Address                  string `yaml:"address"`
	IncludeDashboard         bool   `yaml:"include_dashboard"`
	DashboardPort            int    `yaml:"dashboard_port"`
	HeadNodeAdditionalArgs   string `yaml:"head_node_additional_args"`
	WorkerNodeAdditionalArgs string `yaml:"worker_node_additional_args"`
}

type rawComponent struct {
	Type            string            `yaml:"type"`
	Name            string            `yaml:"name"`
	Version         string            `yaml:"version"`
	DisplayName     string            `yaml:"display_name"`
	Description     string            `yaml:"description"`
	Tags            map[string]string `yaml:"tags"`
	IsDeterministic *bool             `yaml:"is_deterministic"`
	Command         *yaml.Node        `yaml:"command"`
	Code            *yaml.Node        `yaml:"code"`
	Environment     *yaml.Node        `yaml:"environment"`
	Distribution    *yaml.Node        `yaml:"distribution"`
	Resources       *yaml.Node        `yaml:"resources"`
	Inputs          *yaml.Node        `yaml:"inputs"`
	Outputs         *yaml.Node        `yaml:"outputs"`
	// AdditionalIncludes are files and folders put beside the code.
	AdditionalIncludes *yaml.Node `yaml:"additional_includes"`
}

type rawInputDef struct {
	Type        string       `yaml:"type"`
	Description string       `yaml:"description"`
	Default     *yaml.Node   `yaml:"default"`
	Optional    bool         `yaml:"optional"`
	Min         *yaml.Node   `yaml:"min"`
	Max         *yaml.Node   `yaml:"max"`
	Enum        []*yaml.Node `yaml:"enum"`
	Mode        string       `yaml:"mode"`
}

// rawPipelineComponent is a pipeline component mapping: its steps are
// read where it is used, with what that use binds.
type rawPipelineComponent struct {
	Type        string            `yaml:"type"`
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	DisplayName string            `yaml:"display_name"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
	Inputs      *yaml.Node        `yaml:"inputs"`
	Outputs     *yaml.Node        `yaml:"outputs"`
	Jobs        *yaml.Node        `yaml:"jobs"`
}

type rawOutputDef struct {
	Type        string `yaml:"type"`
	Description string `yaml:"description"`
	Mode        string `yaml:"mode"`
}

var (
	componentNameRe = regexp.MustCompile(`^[a-z0-9_]{1,255}$`)
	portNameRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)
)

// reservedPortNames collide with environment variables Azure ML sets from
// input and output names.
var reservedPortNames = map[string]bool{
	"path": true, "ld_library_path": true, "user": true, "logname": true, "home": true, "pwd": true, "shell": true,
}

// LoadComponent reads a command or parallel component YAML file, applying --set
// overrides. r checks the environment and code references; nil means no
// registered assets exist.
func LoadComponent(path string, sets []string, r Resolver) (*ComponentSpec, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return ComponentFromDocument(doc, r)
}

// ComponentFromDocument reads a command component from an already parsed
// (and overridden) document.
func ComponentFromDocument(doc *yamlfile.Document, r Resolver) (*ComponentSpec, error) {
	return componentFrom(doc, r, &problems{})
}

// ParseComponentDocument validates a component received over the API
// (a pipeline component, as a job document holds one): JSON or YAML, no
// local paths.
func ParseComponentDocument(data []byte, r Resolver) (*ComponentSpec, error) {
	doc, err := yamlfile.Parse("", data)
	if err != nil {
		return nil, err
	}
	return componentFrom(doc, r, &problems{remote: true})
}

// componentFrom reads a component on its own; a pipeline component's
// steps are checked with its inputs not yet given.
func componentFrom(doc *yamlfile.Document, r Resolver, errs *problems) (*ComponentSpec, error) {
	s := scope{doc, errs}
	r = resolverOrEmpty(r)
	c := s.component(doc.Root, "", r, true)
	if c.IsPipeline() && errs.err() == nil {
		s.checkPipelineComponent(c, r)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// component reads a component mapping. Named components (files and
// registrations) need a name; components written inline in a step do not.
func (s scope) component(n *yaml.Node, field string, r Resolver, named bool) *ComponentSpec {
	if t := deref(valueOf(n, "type")); t != n && t.Kind == yaml.ScalarNode && t.Value == KindPipelineComponent {
		return s.pipelineComponent(n, field, named)
	}
	var raw rawComponent
	var par *rawParallelComponent
	if isParallel(n) {
		par = &rawParallelComponent{}
		s.decode(n, field, par)
		raw = par.rawComponent
	} else {
		s.decode(n, field, &raw)
	}
	c := &ComponentSpec{
		Name: raw.Name, Version: raw.Version, DisplayName: raw.DisplayName, Description: raw.Description,
		Tags: raw.Tags, IsDeterministic: true, Resources: Resources{InstanceCount: 1},
		Inputs: map[string]*InputSpec{}, Outputs: map[string]*OutputSpec{}, Pos: s.position(n, field),
	}
	keyNode := func(key string) *yaml.Node {
		for _, e := range entries(n) {
			if e.key.Value == key {
				return e.value
			}
		}
		return n
	}
	if raw.Type != "" && raw.Type != "command" && raw.Type != "parallel" {
		s.fail(keyNode("type"), join(field, "type"), "unsupported component type %q (expected command, parallel or pipeline)", raw.Type)
	}
	if raw.IsDeterministic != nil {
		c.IsDeterministic = *raw.IsDeterministic
	}
	s.checkComponentName(n, field, c.Name, named)
	if par != nil {
		s.notInParallel(n, field, raw.Command, raw.Code, raw.Environment, raw.Distribution)
		raw.Command, raw.Code, raw.Environment, raw.Distribution = nil, nil, nil, nil
	}
	if raw.Code != nil {
		c.Code, c.CodeRef, c.CodeURI = s.code(raw.Code, join(field, "code"), r)
	}
	if raw.Environment != nil {
		c.Environment = s.environmentField(raw.Environment, join(field, "environment"), r)
	}
	if par != nil {
		s.parallelSettings(n, field, &par.rawParallel, par.RetrySettings, c, r, true)
	}
	if raw.AdditionalIncludes != nil {
		c.AdditionalIncludes = s.additionalIncludes(raw.AdditionalIncludes, join(field, "additional_includes"), c.Code)
	}
	if raw.Resources != nil {
		s.resources(raw.Resources, join(field, "resources"), &c.Resources)
	}
	if raw.Distribution != nil {
		c.Distribution = s.distribution(raw.Distribution, join(field, "distribution"), c.Resources.InstanceCount)
	}
	s.inputDefs(raw.Inputs, join(field, "inputs"), c)
	s.outputDefs(raw.Outputs, join(field, "outputs"), c)
	if par != nil {
		s.checkParallel(n, field, c)
		return c
	}
	cmdNode := keyNode("command")
	if raw.Command == nil || isNull(raw.Command) {
		s.fail(n, join(field, "command"), "command is required")
	} else if raw.Command.Kind != yaml.ScalarNode {
		s.fail(raw.Command, join(field, "command"), "command must be a string")
	} else {
		c.Command = raw.Command.Value
		for _, msg := range checkCommand(c.Command, c.Inputs, c.Outputs) {
			s.fail(cmdNode, join(field, "command"), "%s", msg)
		}
	}
	if c.Environment.IsZero() {
		s.fail(n, join(field, "environment"), "environment is required")
	}
	return c
}

// code reads a code field: a local folder (or file) relative to the YAML,
// or a registered code asset.
func (s scope) code(n *yaml.Node, field string, r Resolver) (string, *AssetRef, *DatastoreURI) {
	if isNull(n) {
		return "", nil, nil
	}
	if n.Kind != yaml.ScalarNode {
		s.fail(n, field, "code must be a local path or an azureml: reference")
		return "", nil, nil
	}
	p := strings.TrimSpace(n.Value)
	switch {
	case p == "":
		s.fail(n, field, "code is empty")
	case IsDatastoreURI(p):
		u, err := ParseDatastoreURI(p)
		if err != nil {
			s.fail(n, field, "%v", err)
			return "", nil, nil
		}
		return "", nil, &u
	case strings.HasPrefix(p, "azureml:"):
		ref, err := ParseAssetRef(p)
		if err != nil {
			s.fail(n, field, "%v", err)
			return "", nil, nil
		}
		s.checkAsset(n, field, AssetCode, ref, r)
		return "", &ref, nil
	case strings.Contains(p, "://"):
		s.fail(n, field, "code must be a local path, an azureml: reference or an azureml://datastores/ path, got %q", p)
	default:
		abs, ok := s.localPath(n, field, p)
		if !ok {
			return "", nil, nil
		}
		if _, err := os.Stat(abs); err != nil {
			s.fail(n, field, "code path %s does not exist", abs)
		}
		return abs, nil, nil
	}
	return "", nil, nil
}

// additionalIncludes reads a component's additional_includes: local
// files and folders relative to its YAML, which need a local code folder
// to join and must not share a name.
func (s scope) additionalIncludes(n *yaml.Node, field, code string) []string {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		s.fail(n, field, "additional_includes must be a list of paths")
		return nil
	}
	var out []string
	names := map[string]bool{}
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		item = deref(item)
		if item.Kind != yaml.ScalarNode || strings.TrimSpace(item.Value) == "" {
			s.fail(item, f, "an additional include is a path to a file or folder")
			continue
		}
		abs, ok := s.localPath(item, f, strings.TrimSpace(item.Value))
		if !ok {
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			s.fail(item, f, "additional include %s does not exist", abs)
			continue
		}
		base := filepath.Base(abs)
		if names[base] {
			s.fail(item, f, "two additional includes are named %s; each joins the code folder under its own name", base)
			continue
		}
		names[base] = true
		out = append(out, abs)
	}
	if len(out) > 0 && code == "" {
		s.fail(n, field, "additional_includes need a local code folder to join")
	}
	return out
}

// environmentField reads an environment field: a reference or an inline
// (anonymous) definition.
func (s scope) environmentField(n *yaml.Node, field string, r Resolver) EnvironmentRef {
	switch {
	case isNull(n):
		return EnvironmentRef{}
	case n.Kind == yaml.MappingNode:
		return EnvironmentRef{Inline: s.environment(n, field, false)}
	case n.Kind == yaml.ScalarNode:
		ref, err := parseEnvironmentRef(n.Value)
		if err == nil && ref.Form == RefFile {
			err = fmt.Errorf("an environment cannot be a file: reference; write it inline or register it")
		}
		if err != nil {
			s.fail(n, field, "%v", err)
			return EnvironmentRef{}
		}
		s.checkAsset(n, field, AssetEnvironment, ref, r)
		return EnvironmentRef{Ref: &ref}
	}
	s.fail(n, field, "environment must be a reference or a mapping")
	return EnvironmentRef{}
}

// checkAsset asks the resolver whether a referenced asset exists, so an
// unknown reference fails before anything runs.
func (s scope) checkAsset(n *yaml.Node, field string, kind AssetKind, ref AssetRef, r Resolver) {
	if ref.Kind != "" && ref.Kind != kind {
		s.fail(n, field, "%q refers to %s, expected %s", ref.Raw, ref.Kind, kind)
		return
	}
	ok, err := r.AssetExists(kind, ref)
	switch {
	case err != nil:
		s.fail(n, field, "cannot look up %s: %v", ref.Raw, err)
	case !ok && kind == AssetEnvironment:
		s.fail(n, field, "%s", UnknownEnvironment(ref))
	case !ok:
		s.fail(n, field, "unknown %s reference %s: no such %s is registered", kindNoun(kind), ref.Raw, kindNoun(kind))
	}
}

func kindNoun(k AssetKind) string {
	switch k {
	case AssetData:
		return "data asset"
	case AssetEnvironment:
		return "environment"
	case AssetComponent:
		return "component"
	case AssetModel:
		return "model"
	case AssetCode:
		return "code asset"
	}
	return string(k)
}

// resources decodes a resources mapping on top of res, so a step's values
// override a component's field by field.
func (s scope) resources(n *yaml.Node, field string, res *Resources) {
	if isNull(n) {
		return
	}
	if !s.decode(n, field, res) {
		return
	}
	if res.InstanceCount < 1 {
		s.fail(n, join(field, "instance_count"), "instance_count must be at least 1, got %d", res.InstanceCount)
	}
	if res.MaxInstanceCount < 0 {
		s.fail(n, join(field, "max_instance_count"), "max_instance_count must not be negative")
	}
	if res.GPUsPerInstance != nil && *res.GPUsPerInstance < 0 {
		at := n
		for _, e := range entries(n) {
			if e.key.Value == "gpus_per_instance" {
				at = e.value
			}
		}
		s.fail(at, join(field, "gpus_per_instance"), "gpus_per_instance must not be negative, got %d", *res.GPUsPerInstance)
	}
}

func (s scope) distribution(n *yaml.Node, field string, instances int) *Distribution {
	if isNull(n) {
		return nil
	}
	var raw rawDistribution
	if !s.decode(n, field, &raw) {
		return nil
	}
	d := &Distribution{Type: strings.ToLower(raw.Type), Port: raw.Port, Address: raw.Address,
		IncludeDashboard: raw.IncludeDashboard, DashboardPort: raw.DashboardPort,
		HeadNodeAdditionalArgs: raw.HeadNodeAdditionalArgs, WorkerNodeAdditionalArgs: raw.WorkerNodeAdditionalArgs}
	get := func(p *int, def int) int {
		if p != nil {
			return *p
		}
		return def
	}
	switch d.Type {
	case "mpi":
		if raw.ProcessCountPerInstance == nil {
			s.fail(n, join(field, "process_count_per_instance"), "process_count_per_instance is required for mpi")
		}
		d.ProcessCountPerInstance = get(raw.ProcessCountPerInstance, 1)
	case "pytorch":
		d.ProcessCountPerInstance = get(raw.ProcessCountPerInstance, 1)
	case "tensorflow":
		d.WorkerCount = get(raw.WorkerCount, instances)
		d.ParameterServerCount = get(raw.ParameterServerCount, 0)
	case "ray":
	default:
		s.fail(n, join(field, "type"), "distribution type must be mpi, pytorch, tensorflow or ray, got %q", raw.Type)
		return nil
	}
	if d.ProcessCountPerInstance < 0 || d.WorkerCount < 0 || d.ParameterServerCount < 0 {
		s.fail(n, field, "process and worker counts must not be negative")
	}
	return d
}

// port is one entry of an inputs or outputs mapping: its name and the
// field path of its value.
type port struct {
	entry
	name, field string
}

// ports lists the entries of the inputs or outputs mapping n, at field,
// in file order. A value that is neither null nor a mapping is reported
// ("inputs must be a mapping", what naming the mapping) and lists none.
func (s scope) ports(n *yaml.Node, field, what string) []port {
	if n != nil && !isNull(n) && n.Kind != yaml.MappingNode {
		s.fail(n, field, "%s must be a mapping", what)
		return nil
	}
	var out []port
	for _, e := range entries(n) {
		out = append(out, port{entry: e, name: e.key.Value, field: join(field, e.key.Value)})
	}
	return out
}

// checkPortName applies the naming rules shared by inputs and outputs.
func (s scope) checkPortName(key *yaml.Node, field, name string, c *ComponentSpec) bool {
	switch {
	case !portNameRe.MatchString(name):
		s.fail(key, field, "invalid name %q (letters, digits and '_', not starting with a digit)", name)
	case reservedPortNames[strings.ToLower(name)]:
		s.fail(key, field, "%q is a reserved name (path, ld_library_path, user, logname, home, pwd and shell are not allowed)", name)
	default:
		for other := range c.Inputs {
			if strings.EqualFold(other, name) {
				s.fail(key, field, "name %q is already used by input %q", name, other)
				return false
			}
		}
		for other := range c.Outputs {
			if strings.EqualFold(other, name) {
				s.fail(key, field, "name %q is already used by output %q", name, other)
				return false
			}
		}
		return true
	}
	return false
}

func (s scope) inputDefs(n *yaml.Node, field string, c *ComponentSpec) {
	for _, e := range s.ports(n, field, "inputs") {
		name, f := e.name, e.field
		if !s.checkPortName(e.key, f, name, c) {
			continue
		}
		var raw rawInputDef
		if e.value == nil || e.value.Kind != yaml.MappingNode {
			s.fail(e.value, f, "an input definition must be a mapping with at least type")
			continue
		}
		if !s.decode(e.value, f, &raw) {
			continue
		}
		in := &InputSpec{Name: name, Type: normalizeType(raw.Type), Description: raw.Description, Optional: raw.Optional, Mode: raw.Mode}
		c.Inputs[name] = in
		typeNode := valueOf(e.value, "type")
		switch {
		case raw.Type == "":
			s.fail(e.value, join(f, "type"), "type is required")
			continue
		case IsLiteralType(in.Type):
			if raw.Mode != "" {
				s.fail(valueOf(e.value, "mode"), join(f, "mode"), "mode applies to data inputs only")
			}
		case IsDataType(in.Type):
			if raw.Mode != "" {
				s.checkInputMode(valueOf(e.value, "mode"), join(f, "mode"), raw.Mode, in.Type)
			}
		default:
			s.fail(typeNode, join(f, "type"), "unknown input type %q (expected string, integer, number, boolean, uri_file, uri_folder, mltable, mlflow_model or custom_model)", raw.Type)
			continue
		}
		numeric := in.Type == TypeInteger || in.Type == TypeNumber
		for _, b := range []struct {
			key string
			vn  *yaml.Node
			p   **float64
		}{{"min", raw.Min, &in.Min}, {"max", raw.Max, &in.Max}} {
			key, vn, p := b.key, b.vn, b.p
			if vn == nil || isNull(vn) {
				continue
			}
			if !numeric {
				s.fail(vn, join(f, key), "%s applies to integer and number inputs only", key)
				continue
			}
			v, err := literalFromNode(vn)
			if err == nil {
				v, err = coerce(v, in.Type, true)
			}
			if err != nil {
				s.fail(vn, join(f, key), "%v", err)
				continue
			}
			x := v.Float
			if v.Type == TypeInteger {
				x = float64(v.Int)
			}
			*p = &x
		}
		if in.Min != nil && in.Max != nil && *in.Min > *in.Max {
			s.fail(raw.Min, join(f, "min"), "min %s is greater than max %s", formatNumber(*in.Min), formatNumber(*in.Max))
		}
		if len(raw.Enum) > 0 {
			if in.Type != TypeString {
				s.fail(valueOf(e.value, "enum"), join(f, "enum"), "enum applies to string inputs only")
			}
			for _, en := range raw.Enum {
				if en == nil || en.Kind != yaml.ScalarNode || isNull(en) {
					s.fail(en, join(f, "enum"), "enum values must be scalars")
					continue
				}
				in.Enum = append(in.Enum, en.Value)
			}
		}
		if raw.Default != nil && !isNull(raw.Default) {
			if !IsLiteralType(in.Type) {
				s.fail(raw.Default, join(f, "default"), "default applies to string, integer, number and boolean inputs only")
				continue
			}
			v, err := literalFromNode(raw.Default)
			if err == nil {
				v, err = coerce(v, in.Type, false)
			}
			if err == nil {
				err = checkRange(v, in)
			}
			if err != nil {
				s.fail(raw.Default, join(f, "default"), "%v", err)
				continue
			}
			in.Default = &v
		}
	}
}

func (s scope) outputDefs(n *yaml.Node, field string, c *ComponentSpec) {
	for _, e := range s.ports(n, field, "outputs") {
		name, f := e.name, e.field
		if !s.checkPortName(e.key, f, name, c) {
			continue
		}
		var raw rawOutputDef
		if e.value != nil && !isNull(e.value) && !s.decode(e.value, f, &raw) {
			continue
		}
		out := &OutputSpec{Name: name, Type: normalizeType(raw.Type), Description: raw.Description, Mode: raw.Mode}
		if out.Type == "" {
			out.Type = TypeURIFolder
		}
		if !isOutputType(out.Type) {
			s.fail(valueOf(e.value, "type"), join(f, "type"), "unknown output type %q (expected uri_folder, uri_file, mltable, mlflow_model or custom_model)", raw.Type)
		}
		if out.Mode != "" {
			s.checkOutputMode(valueOf(e.value, "mode"), join(f, "mode"), out.Mode)
		}
		c.Outputs[name] = out
	}
}

func isOutputType(t string) bool {
	switch t {
	case TypeURIFolder, TypeURIFile, TypeMLTable, TypeMLflowModel, TypeCustomModel, TypeTritonModel:
		return true
	}
	return false
}

func (s scope) checkInputMode(n *yaml.Node, field, mode, typ string) bool {
	switch mode {
	case ModeROMount, ModeDownload, ModeDirect:
		return true
	case ModeEvalMount, ModeEvalDownload:
		if typ == TypeMLTable || typ == "" {
			return true
		}
		s.fail(n, field, "mode %s applies to mltable inputs only", mode)
		return false
	}
	s.fail(n, field, "unknown input mode %q (expected ro_mount, download, direct, eval_mount or eval_download)", mode)
	return false
}

func (s scope) checkOutputMode(n *yaml.Node, field, mode string) bool {
	switch mode {
	case ModeRWMount, ModeUpload, ModeDirect:
		return true
	}
	s.fail(n, field, "unknown output mode %q (expected rw_mount or upload)", mode)
	return false
}

// valueOf returns the value under key in mapping n, or n itself so errors
// still have a position.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for _, e := range entries(n) {
		if e.key.Value == key {
			return e.value
		}
	}
	return n
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
