package jobspec

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/sweep"
	"github.com/wharfml/wharf/yamlfile"
)

// JobKind is the type of a job file.
type JobKind string

// Job kinds.
const (
	KindCommand  JobKind = "command"
	KindPipeline JobKind = "pipeline"
)

// Plan is a validated job, ready to schedule: a command job is a plan with
// exactly one step.
type Plan struct {
	Kind JobKind
	// File is the job YAML the plan was read from.
	File           string
	Name           string
	DisplayName    string
	ExperimentName string
	Description    string
	Tags           map[string]string
	Settings       Settings
	// Inputs are the job's (for a pipeline: the parent's) input values.
	Inputs map[string]*InputValue
	// Outputs are the job's (for a pipeline: the parent's) outputs.
	Outputs  map[string]*OutputBinding
	Identity *Identity
	// Steps are in a deterministic topological order: every step comes
	// after the steps it depends on, ties broken by order in the file.
	Steps []*Step
}

// Step returns the step called name, or nil.
func (p *Plan) Step(name string) *Step {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Settings are pipeline settings; a command job gets the defaults.
type Settings struct {
	DefaultCompute   string
	DefaultDatastore string
	// ContinueOnStepFailure lets independent steps go on after a failure;
	// default true.
	ContinueOnStepFailure bool
	// ForceRerun disables reuse of earlier step results; default false.
	ForceRerun bool
}

// InputValue is the value of a job or pipeline input: Literal, Data, or
// neither when the input is declared without a value.
type InputValue struct {
	Name        string
	Type        string
	Description string
	Optional    bool
	Literal     *Value
	Data        *DataRef
	Pos         Position
}

// Identity is the identity a job accesses data with.
type Identity struct {
	// Type is user_identity, managed (or managed_identity) or aml_token.
	Type       string `yaml:"type"`
	ClientID   string `yaml:"client_id"`
	ObjectID   string `yaml:"object_id"`
	ResourceID string `yaml:"msi_resource_id"`
}

// RetrySettings say how often a failed step is tried again.
type RetrySettings struct {
	// MaxRetries is the number of extra attempts after the first.
	MaxRetries int
	// Timeout bounds each attempt; zero means none.
	Timeout time.Duration
}

// Step is one unit of work in a plan.
type Step struct {
	Name        string
	DisplayName string
	Description string
	Tags        map[string]string
	// Component is fully resolved, with the step's overrides applied.
	Component *ComponentSpec
	// ComponentRef is the component reference as written (file:x.yml,
	// azureml:n:v), empty for inline command steps and inline components.
	ComponentRef string
	// Compute is the compute name: the step's own, else the pipeline's
	// default; empty when neither is set (the server's default applies).
	Compute              string
	EnvironmentVariables map[string]string
	// Timeout is limits.timeout; zero means none.
	Timeout time.Duration
	Retry   RetrySettings
	// Inputs holds every input that is set, including defaults; optional
	// inputs with nothing bound are absent.
	Inputs  map[string]Binding
	Outputs map[string]*OutputBinding
	// Deps are the upstream step names, sorted.
	Deps []string
	// Sweep is set for a sweep: the step is then its trial, run once
	// for every set of hyperparameters sampled, each reaching the
	// trial as the input of its name.
	Sweep *sweep.Config
	// DefaultDatastore and ForceRerun are the settings of the pipeline
	// the step belongs to: its job's, or those a step running a pipeline
	// component gives the component's steps.
	DefaultDatastore string
	ForceRerun       bool
	Pos              Position
}

// ComponentStep is the path of the pipeline component step a step of a
// plan belongs to ("train_and_eval" for train_and_eval/train), empty for
// a step of the job itself.
func (s *Step) ComponentStep() string {
	i := strings.LastIndex(s.Name, "/")
	if i < 0 {
		return ""
	}
	return s.Name[:i]
}

// BindingKind says what an input is bound to.
type BindingKind string

// Binding kinds.
const (
	BindLiteral     BindingKind = "literal"
	BindData        BindingKind = "data"
	BindParentInput BindingKind = "parent_input"
	BindStepOutput  BindingKind = "step_output"
	BindStepInput   BindingKind = "step_input"
)

// Binding is what a step input receives.
type Binding struct {
	Kind BindingKind
	// Type is the input's type; Mode its mode for data inputs.
	Type string
	Mode string
	// Literal is set for literal bindings, and for parent or step input
	// bindings whose source has a literal value (converted to Type).
	Literal *Value
	// Data is set for data bindings, and for parent or step input bindings
	// whose source is data.
	Data *DataRef
	// ParentInput names the pipeline input for BindParentInput.
	ParentInput string
	// Step and Port name the upstream step and its output (BindStepOutput)
	// or input (BindStepInput).
	Step string
	Port string
	// FromDefault is true when the value is the component's default.
	FromDefault bool
	Pos         Position
}

// Text returns the literal text of a literal-valued binding and whether
// there is one.
func (b Binding) Text() (string, bool) {
	if b.Literal == nil {
		return "", false
	}
	return LiteralText(*b.Literal), true
}

// OutputBinding is how a step (or job) output is stored.
type OutputBinding struct {
	Type string
	Mode string
	// ParentOutput names the pipeline output this output is bound to; they
	// share one storage location.
	ParentOutput string
	// Path is an explicit storage location (azureml://datastores/...),
	// empty for the default <default_datastore>/azureml/<job>/<output>/.
	Path        string
	Description string
	Pos         Position
}

type rawLimits struct {
	Timeout *time.Duration `yaml:"timeout"`
}

type rawRetry struct {
	MaxRetries *int           `yaml:"max_retries"`
	Timeout    *time.Duration `yaml:"timeout"`
}

// rawJobHeader is the part every kind of job's YAML shares.
type rawJobHeader struct {
	Type           string            `yaml:"type"`
	Name           string            `yaml:"name"`
	DisplayName    string            `yaml:"display_name"`
	ExperimentName string            `yaml:"experiment_name"`
	Description    string            `yaml:"description"`
	Tags           map[string]string `yaml:"tags"`
}

type rawCommandJob struct {
	rawJobHeader         `yaml:",inline"`
	Command              *yaml.Node        `yaml:"command"`
	Code                 *yaml.Node        `yaml:"code"`
	Environment          *yaml.Node        `yaml:"environment"`
	EnvironmentVariables map[string]string `yaml:"environment_variables"`
	Compute              *yaml.Node        `yaml:"compute"`
	Resources            *yaml.Node        `yaml:"resources"`
	Distribution         *yaml.Node        `yaml:"distribution"`
	Limits               *rawLimits        `yaml:"limits"`
	Inputs               *yaml.Node        `yaml:"inputs"`
	Outputs              *yaml.Node        `yaml:"outputs"`
	Identity             *Identity         `yaml:"identity"`
	QueueSettings        *yaml.Node        `yaml:"queue_settings"`
	Services             *yaml.Node        `yaml:"services"`
	Component            *yaml.Node        `yaml:"component"`
	RetrySettings        *rawRetry         `yaml:"retry_settings"`
	// Settings apply to a step that runs a pipeline component.
	Settings *rawSettings `yaml:"settings"`
}

type rawSettings struct {
	DefaultCompute        *yaml.Node `yaml:"default_compute"`
	DefaultDatastore      *yaml.Node `yaml:"default_datastore"`
	ContinueOnStepFailure *bool      `yaml:"continue_on_step_failure"`
	ForceRerun            *bool      `yaml:"force_rerun"`
}

type rawPipelineJob struct {
	rawJobHeader `yaml:",inline"`
	Compute      *yaml.Node   `yaml:"compute"`
	Inputs       *yaml.Node   `yaml:"inputs"`
	Outputs      *yaml.Node   `yaml:"outputs"`
	Settings     *rawSettings `yaml:"settings"`
	Jobs         *yaml.Node   `yaml:"jobs"`
	Identity     *Identity    `yaml:"identity"`
	// Component is a pipeline component the job runs, instead of jobs.
	Component *yaml.Node `yaml:"component"`
}

// LoadJob reads a command or pipeline job YAML file, applies --set
// overrides and validates it completely. r looks up registered components
// and assets; nil means none are registered.
func LoadJob(path string, sets []string, r Resolver) (*Plan, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return jobFromDocument(doc, doc.Root, "", r, errs)
}

// ParseJob is LoadJob for content already in memory; file names it for
// messages and relative paths.
func ParseJob(file string, data []byte, sets []string, r Resolver) (*Plan, error) {
	doc, err := yamlfile.Parse(file, data)
	if err != nil {
		return nil, err
	}
	errs := &problems{}
	applySets(doc, sets, errs)
	return jobFromDocument(doc, doc.Root, "", r, errs)
}

// ParseJobDocument validates a job document received over the API: the
// CLI v2 job schema written as JSON (or YAML), overrides already applied,
// and no local paths, since it has no folder they could be relative to.
// Problems name the field path (jobs.train.inputs.data.path); their lines
// count in data, not in any file the user wrote.
func ParseJobDocument(data []byte, r Resolver) (*Plan, error) {
	doc, err := yamlfile.Parse("", data)
	if err != nil {
		return nil, err
	}
	return jobFromDocument(doc, doc.Root, "", r, &problems{remote: true})
}

// JobFromDocument validates a job from an already parsed (and overridden)
// document.
func JobFromDocument(doc *yamlfile.Document, r Resolver) (*Plan, error) {
	return jobFromDocument(doc, doc.Root, "", r, &problems{})
}

// jobFromDocument reads the job mapping n found at field (the root, or
// create_job inside a schedule).
func jobFromDocument(doc *yamlfile.Document, n *yaml.Node, field string, r Resolver, errs *problems) (*Plan, error) {
	s := scope{doc, errs}
	r = resolverOrEmpty(r)
	var plan *Plan
	if n == nil || n.Kind != yaml.MappingNode {
		s.fail(n, field, "a job must be a mapping")
		return nil, errs.err()
	}
	dropShown(n)
	typeNode := valueOf(n, "type")
	typ := ""
	if typeNode != n && typeNode.Kind == yaml.ScalarNode && !isNull(typeNode) {
		typ = typeNode.Value
	}
	switch typ {
	case "", "command":
		plan = s.commandJob(n, field, r)
	case "pipeline":
		plan = s.pipelineJob(n, field, r)
	case "sweep":
		plan = s.sweepJob(n, field, r)
	case "parallel":
		s.fail(typeNode, join(field, "type"), "a parallel job runs only as a step of a pipeline job, as in Azure ML: put it under jobs: of a type: pipeline job")
	default:
		s.fail(typeNode, join(field, "type"), "unsupported job type %q (expected command, pipeline or sweep)", typ)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return plan, nil
}

// defaultExperiment is the name az ml gives a job's experiment when the
// YAML sets none: the name of the folder holding the file.
func (s scope) defaultExperiment() string {
	if s.doc == nil || s.errs.remote {
		return ""
	}
	return filepath.Base(s.doc.Dir())
}

var jobNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$`)

// jobHeader is what every top-level job type writes the same way.
type jobHeader struct {
	Name, DisplayName, ExperimentName, Description string
	Tags                                           map[string]string
	Identity                                       *Identity
}

// topLevelPlan starts the plan of a top-level job from its header: the
// default experiment, the job name's and identity's checks.
func (s scope) topLevelPlan(kind JobKind, n *yaml.Node, field string, h jobHeader) *Plan {
	plan := &Plan{Kind: kind, File: s.file(), Name: h.Name, DisplayName: h.DisplayName,
		ExperimentName: h.ExperimentName, Description: h.Description, Tags: h.Tags,
		Settings: Settings{ContinueOnStepFailure: true}, Identity: h.Identity,
		Inputs: map[string]*InputValue{}, Outputs: map[string]*OutputBinding{}}
	if plan.ExperimentName == "" {
		plan.ExperimentName = s.defaultExperiment()
	}
	if plan.Name != "" && !jobNameRe.MatchString(plan.Name) {
		s.fail(valueOf(n, "name"), join(field, "name"), "invalid job name %q (letters, digits, '-' and '_')", plan.Name)
	}
	s.checkIdentity(n, field, h.Identity)
	return plan
}

func (s scope) commandJob(n *yaml.Node, field string, r Resolver) *Plan {
	var raw rawCommandJob
	clean := s.decode(n, field, &raw)
	plan := s.topLevelPlan(KindCommand, n, field, jobHeader{raw.Name, raw.DisplayName, raw.ExperimentName, raw.Description, raw.Tags, raw.Identity})
	stepName := plan.Name
	if stepName == "" {
		stepName = "main"
	}
	b := s.buildStep(stepName, n, field, &raw, nil, clean, r, nil)
	b.resolveInputs(s, nil, nil)
	plan.Steps = []*Step{b.step}
	for name, bind := range b.step.Inputs {
		iv := &InputValue{Name: name, Type: bind.Type, Literal: bind.Literal, Data: bind.Data, Pos: bind.Pos}
		plan.Inputs[name] = iv
	}
	plan.Outputs = b.step.Outputs
	return plan
}

func (s scope) checkIdentity(n *yaml.Node, field string, id *Identity) {
	if id == nil {
		return
	}
	switch id.Type {
	case "user_identity", "managed", "managed_identity", "aml_token":
	default:
		s.fail(valueOf(valueOf(n, "identity"), "type"), join(field, "identity.type"),
			"identity type must be user_identity, managed or aml_token, got %q", id.Type)
	}
}

// expr is a parsed binding expression ${{parent...}}.
type expr struct {
	// parentPort is "inputs" or "outputs" for ${{parent.inputs|outputs.x}}.
	parentPort string
	// step and stepPort are set for ${{parent.jobs.<step>.<port>.x}}.
	step     string
	stepPort string
	name     string
	text     string
}

var (
	parentExprRe = regexp.MustCompile(`^\$\{\{\s*parent\.(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)
	stepExprRe   = regexp.MustCompile(`^\$\{\{\s*parent\.jobs\.([A-Za-z_][A-Za-z0-9_-]*)\.(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)
)

// parseExpr parses a binding written as a whole value.
func parseExpr(text string) (expr, error) {
	t := strings.TrimSpace(text)
	if m := parentExprRe.FindStringSubmatch(t); m != nil {
		return expr{parentPort: m[1], name: m[2], text: t}, nil
	}
	if m := stepExprRe.FindStringSubmatch(t); m != nil {
		return expr{step: m[1], stepPort: m[2], name: m[3], text: t}, nil
	}
	if strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		return expr{}, fmt.Errorf("unsupported binding %q (expected ${{parent.inputs.<name>}}, ${{parent.outputs.<name>}} or ${{parent.jobs.<step>.outputs.<name>}})", t)
	}
	return expr{}, fmt.Errorf("%q: a binding must be the whole value, e.g. ${{parent.inputs.<name>}}", t)
}

// pendingInput is a step input as written, before it is checked against
// the input it feeds.
type pendingInput struct {
	name  string
	node  *yaml.Node
	field string
	empty bool
	lit   *Value
	data  *DataRef
	expr  *expr
	// typ and mode are given explicitly in a {type, path, mode} mapping.
	typ, mode string
	optional  bool
	desc      string
}

type rawJobInput struct {
	Type        string     `yaml:"type"`
	Path        *yaml.Node `yaml:"path"`
	Mode        string     `yaml:"mode"`
	Default     *yaml.Node `yaml:"default"`
	Optional    bool       `yaml:"optional"`
	Description string     `yaml:"description"`
}

// readInput reads one input value: a literal, ${{...}} binding, or a
// {type, path, mode} mapping. hint is the expected data type when the
// mapping does not say (for checking local paths).
func (s scope) readInput(name string, n *yaml.Node, field, hint string, r Resolver) *pendingInput {
	p := &pendingInput{name: name, node: n, field: field}
	switch {
	case isNull(n):
		p.empty = true
	case n.Kind == yaml.ScalarNode:
		if strings.Contains(n.Value, "${{") {
			e, err := parseExpr(n.Value)
			if err != nil {
				s.fail(n, field, "%v", err)
				return nil
			}
			p.expr = &e
			return p
		}
		v, err := literalFromNode(n)
		if err != nil {
			s.fail(n, field, "%v", err)
			return nil
		}
		p.lit = &v
	case n.Kind == yaml.MappingNode:
		var raw rawJobInput
		if !s.decode(n, field, &raw) {
			return nil
		}
		p.typ, p.mode, p.optional, p.desc = normalizeType(raw.Type), raw.Mode, raw.Optional, raw.Description
		switch {
		case p.typ == "" || IsDataType(p.typ):
			if raw.Default != nil {
				s.fail(raw.Default, join(field, "default"), "default applies to literal inputs; data inputs take path")
				return nil
			}
			if p.mode != "" && !s.checkInputMode(valueOf(n, "mode"), join(field, "mode"), p.mode, p.typ) {
				return nil
			}
			if raw.Path == nil || isNull(raw.Path) {
				if p.optional {
					p.empty = true
					return p
				}
				s.fail(n, join(field, "path"), "path is required for a data input")
				return nil
			}
			if raw.Path.Kind != yaml.ScalarNode {
				s.fail(raw.Path, join(field, "path"), "path must be a string")
				return nil
			}
			if strings.Contains(raw.Path.Value, "${{") {
				e, err := parseExpr(raw.Path.Value)
				if err != nil {
					s.fail(raw.Path, join(field, "path"), "%v", err)
					return nil
				}
				p.expr = &e
				return p
			}
			typ := p.typ
			if typ == "" {
				typ = hint
			}
			d, ok := s.dataLocation(raw.Path, join(field, "path"), typ, true)
			if !ok {
				return nil
			}
			if d.Asset != nil {
				kind := AssetData
				switch typ {
				case TypeMLflowModel, TypeCustomModel, TypeTritonModel:
					kind = AssetModel
				}
				s.checkAsset(raw.Path, join(field, "path"), kind, *d.Asset, r)
			}
			d.Mode = p.mode
			p.data = &d
		case IsLiteralType(p.typ):
			if raw.Path != nil {
				s.fail(raw.Path, join(field, "path"), "path applies to data inputs only")
				return nil
			}
			if raw.Mode != "" {
				s.fail(valueOf(n, "mode"), join(field, "mode"), "mode applies to data inputs only")
				return nil
			}
			if raw.Default == nil || isNull(raw.Default) {
				p.empty = true
				return p
			}
			v, err := literalFromNode(raw.Default)
			if err == nil {
				v, err = coerce(v, p.typ, false)
			}
			if err != nil {
				s.fail(raw.Default, join(field, "default"), "%v", err)
				return nil
			}
			p.lit = &v
		default:
			s.fail(valueOf(n, "type"), join(field, "type"), "unknown input type %q", raw.Type)
			return nil
		}
	default:
		s.fail(n, field, "an input must be a value, a ${{...}} binding or a {type, path, mode} mapping")
		return nil
	}
	return p
}

// readOutput reads one output: empty, a ${{parent.outputs.x}} binding or a
// {type, mode, path} mapping. def is the declared output, nil for inline
// steps.
func (s scope) readOutput(n *yaml.Node, field string, def *OutputSpec, parentOutputs map[string]*OutputBinding) *OutputBinding {
	o := &OutputBinding{Type: TypeURIFolder, Mode: ModeRWMount, Pos: s.position(n, field)}
	if def != nil {
		o.Type, o.Description = def.Type, def.Description
		if def.Mode != "" {
			o.Mode = def.Mode
		}
	}
	bindParent := func(node *yaml.Node, f, text string) bool {
		e, err := parseExpr(text)
		if err == nil && e.parentPort != "outputs" {
			err = fmt.Errorf("an output can only be bound to ${{parent.outputs.<name>}}, got %s", e.text)
		}
		if err != nil {
			s.fail(node, f, "%v", err)
			return false
		}
		if parentOutputs == nil {
			s.fail(node, f, "%s: there is no parent pipeline to bind to", e.text)
			return false
		}
		if _, ok := parentOutputs[e.name]; !ok {
			s.fail(node, f, "%s: the pipeline has no output %q (declared: %s)", e.text, e.name, listOrNone(sortedKeys(parentOutputs)))
			return false
		}
		o.ParentOutput = e.name
		return true
	}
	switch {
	case isNull(n):
	case n.Kind == yaml.ScalarNode:
		if !bindParent(n, field, n.Value) {
			return nil
		}
	case n.Kind == yaml.MappingNode:
		var raw struct {
			Type        string     `yaml:"type"`
			Mode        string     `yaml:"mode"`
			Path        *yaml.Node `yaml:"path"`
			Description string     `yaml:"description"`
			Name        string     `yaml:"name"`
			Version     string     `yaml:"version"`
		}
		if !s.decode(n, field, &raw) {
			return nil
		}
		if raw.Type != "" {
			t := normalizeType(raw.Type)
			if !isOutputType(t) {
				s.fail(valueOf(n, "type"), join(field, "type"), "unknown output type %q (expected uri_folder, uri_file, mltable, mlflow_model or custom_model)", raw.Type)
				return nil
			}
			if def != nil && isFileType(t) != isFileType(def.Type) {
				s.fail(valueOf(n, "type"), join(field, "type"), "type mismatch: output is declared as %s, not %s", def.Type, t)
				return nil
			}
			o.Type = t
		}
		if raw.Mode != "" {
			if !s.checkOutputMode(valueOf(n, "mode"), join(field, "mode"), raw.Mode) {
				return nil
			}
			o.Mode = raw.Mode
		}
		if raw.Description != "" {
			o.Description = raw.Description
		}
		if raw.Path != nil && !isNull(raw.Path) {
			p := strings.TrimSpace(raw.Path.Value)
			switch {
			case raw.Path.Kind != yaml.ScalarNode:
				s.fail(raw.Path, join(field, "path"), "path must be a string")
				return nil
			case strings.HasPrefix(p, "${{parent"):
				if !bindParent(raw.Path, join(field, "path"), p) {
					return nil
				}
			case IsDatastoreURI(p):
				if _, err := ParseDatastoreURI(p); err != nil {
					s.fail(raw.Path, join(field, "path"), "%v", err)
					return nil
				}
				o.Path = p
			case isURL(p):
				o.Path = p
			default:
				s.fail(raw.Path, join(field, "path"), "an output path must be a storage URI such as azureml://datastores/<name>/paths/<path>, got %q", p)
				return nil
			}
		}
	default:
		s.fail(n, field, "an output must be empty, a ${{parent.outputs.<name>}} binding or a {type, mode, path} mapping")
		return nil
	}
	return o
}

// isFileType separates single-file data from folder-shaped data, the one
// difference that makes a binding meaningless.
func isFileType(t string) bool { return t == TypeURIFile }

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
