package jobspec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// A pipeline component (pipelineComponent.schema.json) is a pipeline
// with declared inputs and outputs that is used as one step of another
// pipeline. Wharf expands it where it is used: its steps join the plan
// under the path of the step that uses it (train_and_eval/train), their
// ${{parent.inputs.x}} receive what that step binds to x, and the
// pipeline's later steps reading ${{parent.jobs.train_and_eval.outputs.y}}
// read the output of the inner step bound to ${{parent.outputs.y}}. Every
// inner step is an ordinary step, so it is reused on its own.

// maxComponentDepth bounds how deeply pipeline components may nest.
const maxComponentDepth = 32

// PipelineJobs are the steps of a pipeline component as written, read
// again at every use with what that use binds.
type PipelineJobs struct {
	// Document is the whole component as a JSON document, the form a
	// registered component is stored in: component files it uses are
	// inlined and local content is uploaded (see ComponentDocument).
	Document json.RawMessage `json:"document,omitempty"`
	// doc and node are the component as read from a file (or inline in
	// one), field where it sits there.
	doc   *yamlfile.Document
	node  *yaml.Node
	field string
	// origin names the component for cycle checks: its file, or
	// azureml:<name>:<version>; empty for one written inline.
	origin string
}

// pipelineComponent reads a pipeline component's header: name, ports and
// the presence of its steps, which are read where it is used.
func (s scope) pipelineComponent(n *yaml.Node, field string, named bool) *ComponentSpec {
	var raw rawPipelineComponent
	s.decode(n, field, &raw)
	c := &ComponentSpec{Type: KindPipelineComponent, Name: raw.Name, Version: raw.Version, DisplayName: raw.DisplayName,
		Description: raw.Description, Tags: raw.Tags, IsDeterministic: true, Resources: Resources{InstanceCount: 1},
		Inputs: map[string]*InputSpec{}, Outputs: map[string]*OutputSpec{}, Pos: s.position(n, field)}
	s.checkComponentName(n, field, c.Name, named)
	s.inputDefs(raw.Inputs, join(field, "inputs"), c)
	s.outputDefs(raw.Outputs, join(field, "outputs"), c)
	switch {
	case raw.Jobs == nil || isNull(raw.Jobs):
		s.fail(n, join(field, "jobs"), "jobs is required: a pipeline component needs at least one step")
		return c
	case raw.Jobs.Kind != yaml.MappingNode:
		s.fail(raw.Jobs, join(field, "jobs"), "jobs must be a mapping of step name to step")
		return c
	}
	origin := ""
	if s.doc != nil && n == deref(s.doc.Root) && s.doc.File != "" {
		origin = s.doc.File
	}
	c.Jobs = &PipelineJobs{doc: s.doc, node: n, field: field, origin: origin}
	return c
}

// checkComponentName applies the rule for component names; inline
// components need none.
func (s scope) checkComponentName(n *yaml.Node, field, name string, named bool) {
	switch {
	case name == "" && named:
		s.fail(n, join(field, "name"), "name is required")
	case name != "" && !componentNameRe.MatchString(name):
		s.fail(valueOf(n, "name"), join(field, "name"), "invalid component name %q (lowercase letters, digits and '_', at most 255)", name)
	}
}

// open returns the scope, mapping and field of the component's steps,
// parsing a stored document the first time.
func (j *PipelineJobs) open(s scope, label string) (scope, *yaml.Node, *yaml.Node, string, bool) {
	if j.node == nil {
		doc, err := yamlfile.Parse(label, j.Document)
		if err != nil {
			s.errs.add(err)
			return s, nil, nil, "", false
		}
		j.doc, j.node, j.field = doc, deref(doc.Root), ""
	}
	return scope{j.doc, s.errs}, j.node, valueOf(j.node, "jobs"), join(j.field, "jobs"), true
}

// componentOutputs are a pipeline component's outputs as its steps bind
// them with ${{parent.outputs.<name>}}.
func componentOutputs(c *ComponentSpec) map[string]*OutputBinding {
	out := map[string]*OutputBinding{}
	for name, def := range c.Outputs {
		out[name] = &OutputBinding{Type: def.Type, Mode: def.Mode}
	}
	return out
}

// checkPipelineComponent reads a pipeline component's steps on their
// own, as when it is registered: every binding is checked, its inputs
// standing for values of their declared types.
func (s scope) checkPipelineComponent(c *ComponentSpec, r Resolver) {
	bound := map[string]Binding{}
	addDefaults(c, bound)
	inner := &pipelineContext{component: c, bound: bound, outputs: componentOutputs(c), abstract: true,
		settings: Settings{ContinueOnStepFailure: true}, boundOutputs: map[string]boundOutput{}}
	s.expand(c, c.Jobs.node, c.Jobs.field, inner, r)
}

// addDefaults binds the component's literal defaults that nothing else
// binds.
func addDefaults(c *ComponentSpec, bound map[string]Binding) {
	for name, decl := range c.Inputs {
		if _, ok := bound[name]; !ok && decl.Default != nil {
			v := *decl.Default
			bound[name] = Binding{Kind: BindLiteral, Type: decl.Type, Literal: &v, FromDefault: true}
		}
	}
}

// expand reads the steps of pipeline component c with what inner binds;
// at and field are where c is used, for errors.
func (s scope) expand(c *ComponentSpec, at *yaml.Node, field string, inner *pipelineContext, r Resolver) []*Step {
	if c.Jobs == nil {
		// Its header said why.
		return nil
	}
	if id := c.Jobs.origin; id != "" {
		if i := slices.Index(s.errs.expanding, id); i >= 0 {
			chain := append(slices.Clone(s.errs.expanding[i:]), id)
			s.fail(at, field, "pipeline component cycle: %s uses itself (%s)", id, strings.Join(chain, " -> "))
			return nil
		}
	}
	if len(s.errs.expanding) >= maxComponentDepth {
		s.fail(at, field, "pipeline components nest more than %d deep", maxComponentDepth)
		return nil
	}
	s.errs.expanding = append(s.errs.expanding, c.Jobs.origin)
	defer func() { s.errs.expanding = s.errs.expanding[:len(s.errs.expanding)-1] }()

	label := "azureml:" + componentLabel(c)
	cs, root, jobs, jobsField, ok := c.Jobs.open(s, label)
	if !ok {
		return nil
	}
	before := len(s.errs.list)
	steps := cs.pipelineSteps(root, jobs, jobsField, r, inner)
	if len(s.errs.list) > before {
		return steps
	}
	outputs := valueOf(root, "outputs")
	for _, name := range sortedKeys(c.Outputs) {
		if _, ok := inner.boundOutputs[name]; !ok {
			cs.fail(valueOf(outputs, name), join(c.Jobs.field, "outputs."+name),
				"output %q of pipeline component %s is written by no step: bind a step output to ${{parent.outputs.%s}}", name, componentLabel(c), name)
		}
	}
	return steps
}

// expandStep expands the pipeline component a step uses. Its steps'
// outputs bound to the component's outputs take the step's own binding of
// them (a pipeline output, a path); later steps read them through
// outSources.
func (s scope) expandStep(b *stepBuild, pc *pipelineContext, r Resolver) []*Step {
	comp := b.step.Component
	inner := &pipelineContext{prefix: b.step.Name + "/", component: comp, bound: b.step.Inputs, outputs: componentOutputs(comp),
		settings: b.settings, abstract: pc.abstract, boundOutputs: map[string]boundOutput{}}
	steps := s.expand(comp, valueOf(b.node, "component"), join(b.field, "component"), inner, r)
	b.outSources = map[string]outputRef{}
	for name, bo := range inner.boundOutputs {
		if src, ok := bo.b.outputSource(bo.port); ok {
			b.outSources[name] = src
		}
	}
	for _, st := range steps {
		for _, o := range st.Outputs {
			if o.ParentOutput == "" || !strings.HasPrefix(st.Name, inner.prefix) {
				continue
			}
			ob := b.step.Outputs[o.ParentOutput]
			o.ParentOutput = ""
			if ob != nil {
				o.ParentOutput = ob.ParentOutput
				if ob.Path != "" {
					o.Path = ob.Path
				}
			}
		}
	}
	return steps
}

// topComponent reads a pipeline job written as `component:` at its top
// level: the job's inputs and outputs are the component's.
func (s scope) topComponent(plan *Plan, n *yaml.Node, field string, raw *rawPipelineJob, r Resolver) {
	cf := join(field, "component")
	if raw.Jobs != nil && !isNull(raw.Jobs) {
		s.fail(raw.Jobs, join(field, "jobs"), "a pipeline job has jobs or a component, not both")
		return
	}
	comp, ref := s.componentField(raw.Component, cf, r)
	if comp == nil {
		return
	}
	if !comp.IsPipeline() {
		s.fail(raw.Component, cf, "component %s is a command component; a pipeline job's component must be a pipeline component (type: pipeline)", ref)
		return
	}
	bound := map[string]Binding{}
	for _, name := range sortedKeys(plan.Inputs) {
		iv := plan.Inputs[name]
		if _, ok := comp.Inputs[name]; !ok {
			s.fail(valueOf(raw.Inputs, name), join(field, "inputs."+name), "pipeline component %s has no input %q (inputs: %s)",
				componentLabel(comp), name, listOrNone(sortedKeys(comp.Inputs)))
			continue
		}
		if iv.Literal != nil || iv.Data != nil {
			bound[name] = Binding{Kind: BindParentInput, ParentInput: name, Type: iv.Type, Literal: iv.Literal, Data: iv.Data, Pos: iv.Pos}
		}
	}
	addDefaults(comp, bound)
	for _, name := range sortedKeys(comp.Inputs) {
		if _, ok := bound[name]; !ok && !comp.Inputs[name].Optional {
			s.fail(n, join(field, "inputs."+name), "required input %q of pipeline component %s is not set (no value, no default, and not optional)",
				name, componentLabel(comp))
		}
	}
	for _, name := range sortedKeys(plan.Outputs) {
		if _, ok := comp.Outputs[name]; !ok {
			s.fail(valueOf(raw.Outputs, name), join(field, "outputs."+name), "pipeline component %s has no output %q (outputs: %s)",
				componentLabel(comp), name, listOrNone(sortedKeys(comp.Outputs)))
		}
	}
	for name, def := range comp.Outputs {
		if _, ok := plan.Outputs[name]; !ok {
			mode := def.Mode
			if mode == "" {
				mode = ModeRWMount
			}
			plan.Outputs[name] = &OutputBinding{Type: def.Type, Mode: mode, Description: def.Description, Pos: s.position(raw.Component, cf)}
		}
	}
	inner := &pipelineContext{component: comp, bound: bound, outputs: plan.Outputs, settings: plan.Settings,
		boundOutputs: map[string]boundOutput{}}
	plan.Steps = s.expand(comp, raw.Component, cf, inner, r)
}

// componentStepFields are the keys of a command step that make no sense
// on a step that runs a pipeline component.
var componentStepFields = []string{"command", "code", "environment", "environment_variables", "resources", "distribution",
	"limits", "retry_settings", "identity", "services", "queue_settings"}

// checkPipelineStep refuses what a pipeline component step cannot have.
func (s scope) checkPipelineStep(n *yaml.Node, field string, comp *ComponentSpec, ref string) {
	for _, key := range componentStepFields {
		if v := valueOf(n, key); v != n && !isNull(v) {
			s.fail(v, join(field, key), "%s applies to command steps; a pipeline step takes component, inputs, outputs, compute and settings", key)
		}
	}
	if comp != nil && !comp.IsPipeline() {
		s.fail(valueOf(n, "component"), join(field, "component"), "component %s is a command component: write type: command on this step", componentRefLabel(comp, ref))
	}
}

func componentRefLabel(c *ComponentSpec, ref string) string {
	if ref != "" {
		return ref
	}
	return componentLabel(c)
}

// bindingDeps are the steps whose outputs a step's inputs read.
func bindingDeps(inputs map[string]Binding) []string {
	var deps []string
	for _, b := range inputs {
		if b.Step != "" && !slices.Contains(deps, b.Step) {
			deps = append(deps, b.Step)
		}
	}
	slices.Sort(deps)
	return deps
}

// componentInputInto binds a step input to an input of the pipeline
// component it is a step of: the value the component's user bound.
func (b *stepBuild) componentInputInto(s scope, pc *pipelineContext, p *pendingInput, decl *InputSpec, bind *Binding) bool {
	name := p.expr.name
	cin, ok := pc.component.Inputs[name]
	if !ok {
		s.fail(p.node, p.field, "%s: the pipeline component has no input %q (inputs: %s)", p.expr.text, name, listOrNone(sortedKeys(pc.component.Inputs)))
		return false
	}
	if b.inline && decl.Type == "" {
		decl.Type = cin.Type
	}
	ob, ok := pc.bound[name]
	if !ok {
		if pc.abstract {
			if decl.Type != "" && IsDataType(cin.Type) != IsDataType(decl.Type) {
				s.fail(p.node, p.field, "type mismatch: pipeline component input %q (%s) cannot be bound to %s input %q", name, cin.Type, decl.Type, p.name)
			}
			return false
		}
		if b.inline || (decl.Default == nil && !decl.Optional) {
			s.fail(p.node, p.field, "input %q is bound to input %q of the pipeline component, which is not set", p.name, name)
		}
		return false
	}
	source := fmt.Sprintf("pipeline component input %q", name)
	bind.Kind, bind.ParentInput, bind.Step, bind.Port = ob.Kind, ob.ParentInput, ob.Step, ob.Port
	return b.copyInto(s, p, decl, ob, bind, source)
}
