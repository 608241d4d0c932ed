package jobspec

import (
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"
)

// pipelineContext is what steps can bind to.
type pipelineContext struct {
	inputs   map[string]*InputValue
	outputs  map[string]*OutputBinding
	settings Settings
	// boundOutputs maps a parent output to the step output that writes
	// it.
	boundOutputs map[string]boundOutput
	// prefix comes before the names of the steps read: the path of the
	// pipeline component step they belong to, with a trailing slash.
	prefix string
	// component is set for the steps of a pipeline component: its inputs
	// are ${{parent.inputs.x}} and receive bound (instead of inputs).
	component *ComponentSpec
	bound     map[string]Binding
	// abstract is set when a pipeline component is checked on its own:
	// its inputs have no values yet.
	abstract bool
}

// boundOutput is the step output bound to a parent output.
type boundOutput struct {
	b    *stepBuild
	port string
}

// outputRef is an output of a step that runs.
type outputRef struct {
	step, port string
	out        *OutputBinding
}

// outputSource is the output of a step that runs behind output port of
// b: b's own, or, for a step running a pipeline component, the inner
// step output bound to it.
func (b *stepBuild) outputSource(port string) (outputRef, bool) {
	if b.pipeline {
		r, ok := b.outSources[port]
		return r, ok
	}
	o, ok := b.step.Outputs[port]
	return outputRef{b.step.Name, port, o}, ok
}

// stepBuild is a step while it is being assembled.
type stepBuild struct {
	// name is the step's name in its pipeline; step.Name is its path.
	name   string
	step   *Step
	node   *yaml.Node
	field  string
	inline bool
	// ok is false when the component could not be read; checks that need
	// it are skipped to avoid follow-on errors.
	ok         bool
	inputs     []*pendingInput
	inputsNode *yaml.Node
	order      int
	// depRefs remembers the first binding naming each upstream step, to
	// position cycle errors.
	depRefs map[string]*pendingInput
	// written holds inputs given a value in the file, even a bad one, so a
	// rejected binding is not reported a second time as unset.
	written map[string]bool
	// sweepInputs are a sweep's own inputs as written, nil for other
	// steps.
	sweepInputs *yaml.Node
	// pipeline is set for a step that runs a pipeline component, with
	// the settings its steps get; outSources are where the component's
	// outputs are written, once it is expanded.
	pipeline   bool
	settings   Settings
	outSources map[string]outputRef
}

var stepNameRe = portNameRe

// buildStep assembles a step from a command job mapping (a pipeline step,
// or a whole command job when pc is nil), or from a parallel step's
// (par set).
func (s scope) buildStep(name string, n *yaml.Node, field string, raw *rawCommandJob, par *rawParallel, clean bool, r Resolver, pc *pipelineContext) *stepBuild {
	st := &Step{Name: name, DisplayName: raw.DisplayName, Description: raw.Description, Tags: raw.Tags,
		EnvironmentVariables: raw.EnvironmentVariables, Inputs: map[string]Binding{},
		Outputs: map[string]*OutputBinding{}, Pos: s.position(n, field)}
	b := &stepBuild{step: st, node: n, field: field, ok: true, depRefs: map[string]*pendingInput{}, written: map[string]bool{}}
	if pc != nil {
		switch raw.Type {
		case "", "command", "parallel":
		case "pipeline":
			b.pipeline = true
		default:
			s.fail(valueOf(n, "type"), join(field, "type"), "unsupported step type %q (expected command, parallel, pipeline or sweep)", raw.Type)
		}
		if raw.Name != "" && raw.Name != name {
			s.fail(valueOf(n, "name"), join(field, "name"), "name %q differs from the step name %q", raw.Name, name)
		}
	}
	s.checkIdentity(n, field, raw.Identity)

	var comp *ComponentSpec
	if raw.Component != nil && !isNull(raw.Component) {
		comp, st.ComponentRef = s.componentField(raw.Component, join(field, "component"), r)
		if comp == nil {
			b.ok = false
		}
	} else if b.pipeline {
		s.fail(n, join(field, "component"), "component is required: a pipeline step runs a pipeline component")
		b.ok = false
	} else {
		b.inline = true
	}
	if b.pipeline {
		s.checkPipelineStep(n, field, comp, st.ComponentRef)
		if comp != nil && !comp.IsPipeline() {
			b.ok = false
		}
	} else if comp != nil && comp.IsPipeline() {
		s.fail(raw.Component, join(field, "component"), "component %s is a pipeline component: write type: pipeline on this step", componentRefLabel(comp, st.ComponentRef))
		b.ok, comp = false, nil
	}
	if raw.Settings != nil && !b.pipeline {
		s.fail(valueOf(n, "settings"), join(field, "settings"), "settings applies to pipeline steps and pipeline jobs")
	}
	if comp == nil {
		comp = &ComponentSpec{IsDeterministic: true, Resources: Resources{InstanceCount: 1},
			Inputs: map[string]*InputSpec{}, Outputs: map[string]*OutputSpec{}, Pos: st.Pos}
	}
	st.Component = comp
	if b.ok && !b.inline {
		switch {
		case par != nil && comp.Parallel == nil:
			s.fail(valueOf(n, "component"), join(field, "component"), "a parallel step needs a parallel component; component %s is a command component", componentLabel(comp))
			b.ok = false
		case raw.Type == "command" && comp.Parallel != nil:
			s.fail(valueOf(n, "type"), join(field, "type"), "component %s is a parallel component; write type: parallel", componentLabel(comp))
			b.ok = false
		}
	}
	parallel := par != nil || comp.Parallel != nil
	if parallel {
		s.notInParallel(n, field, raw.Command, raw.Code, raw.Environment, raw.Distribution)
		raw.Command, raw.Code, raw.Environment, raw.Distribution = nil, nil, nil, nil
		if par == nil {
			par = &rawParallel{}
		}
		s.parallelSettings(n, field, par, raw.RetrySettings, comp, r, b.inline)
		// retry_settings are the mini-batches', not the step's.
		raw.RetrySettings = nil
	}
	if raw.Code != nil {
		comp.Code, comp.CodeRef, comp.CodeURI = s.code(raw.Code, join(field, "code"), r)
	}
	if raw.Environment != nil && !isNull(raw.Environment) {
		comp.Environment = s.environmentField(raw.Environment, join(field, "environment"), r)
	}
	if raw.Resources != nil {
		s.resources(raw.Resources, join(field, "resources"), &comp.Resources)
	}
	if raw.Distribution != nil {
		comp.Distribution = s.distribution(raw.Distribution, join(field, "distribution"), comp.Resources.InstanceCount)
	}
	cmdNode := valueOf(n, "command")
	if raw.Command != nil && !isNull(raw.Command) {
		if raw.Command.Kind != yaml.ScalarNode {
			s.fail(raw.Command, join(field, "command"), "command must be a string")
		} else {
			comp.Command = raw.Command.Value
		}
	}
	// Without a clean decode a missing field is likely a misspelt one,
	// already reported.
	if b.ok && clean && comp.Command == "" && !b.pipeline && !parallel {
		s.fail(n, join(field, "command"), "command is required (or use component)")
	}
	if b.ok && clean && comp.Environment.IsZero() && (b.inline || raw.Environment != nil) && !parallel {
		s.fail(n, join(field, "environment"), "environment is required")
	}

	// Inputs.
	b.inputsNode = raw.Inputs
	for _, e := range s.ports(raw.Inputs, join(field, "inputs"), "inputs") {
		in, f := e.name, e.field
		decl := comp.Inputs[in]
		if b.inline {
			if !s.checkPortName(e.key, f, in, comp) {
				continue
			}
		} else if decl == nil {
			if b.ok {
				s.fail(e.key, f, "component %s has no input %q (inputs: %s)", componentLabel(comp), in, listOrNone(sortedKeys(comp.Inputs)))
			}
			continue
		}
		hint := TypeURIFolder
		if decl != nil && IsDataType(decl.Type) {
			hint = decl.Type
		}
		p := s.readInput(in, e.value, f, hint, r)
		if p == nil || !p.empty {
			b.written[in] = true
		}
		if b.inline {
			comp.Inputs[in] = &InputSpec{Name: in}
		}
		if p == nil {
			continue
		}
		if b.inline && p.desc != "" {
			comp.Inputs[in].Description = p.desc
		}
		b.inputs = append(b.inputs, p)
		if p.expr != nil && p.expr.step != "" {
			if _, seen := b.depRefs[p.expr.step]; !seen {
				b.depRefs[p.expr.step] = p
			}
		}
	}

	// Outputs.
	var parentOutputs map[string]*OutputBinding
	if pc != nil {
		parentOutputs = pc.outputs
	}
	for _, e := range s.ports(raw.Outputs, join(field, "outputs"), "outputs") {
		out, f := e.name, e.field
		decl := comp.Outputs[out]
		if b.inline {
			if !s.checkPortName(e.key, f, out, comp) {
				continue
			}
		} else if decl == nil {
			if b.ok {
				s.fail(e.key, f, "component %s has no output %q (outputs: %s)", componentLabel(comp), out, listOrNone(sortedKeys(comp.Outputs)))
			}
			continue
		}
		o := s.readOutput(e.value, f, decl, parentOutputs)
		if b.inline {
			comp.Outputs[out] = &OutputSpec{Name: out, Type: TypeURIFolder}
		}
		if o == nil {
			continue
		}
		if b.inline {
			comp.Outputs[out].Type, comp.Outputs[out].Mode = o.Type, o.Mode
		}
		if o.ParentOutput != "" {
			if other, taken := pc.boundOutputs[o.ParentOutput]; taken {
				s.fail(e.value, f, "pipeline output %q is already bound to step %q", o.ParentOutput, other.b.name)
			} else {
				pc.boundOutputs[o.ParentOutput] = boundOutput{b, out}
			}
		}
		st.Outputs[out] = o
	}
	for _, out := range sortedKeys(comp.Outputs) {
		if _, ok := st.Outputs[out]; !ok {
			def := comp.Outputs[out]
			o := &OutputBinding{Type: def.Type, Mode: def.Mode, Description: def.Description, Pos: st.Pos}
			if o.Mode == "" {
				o.Mode = ModeRWMount
			}
			st.Outputs[out] = o
		}
	}

	if b.ok && comp.Command != "" && (b.inline || raw.Command != nil) && !parallel {
		for _, msg := range checkCommand(comp.Command, comp.Inputs, comp.Outputs) {
			s.fail(cmdNode, join(field, "command"), "%s", msg)
		}
	}
	if b.ok && parallel {
		s.checkParallel(n, field, comp)
	}

	// Run settings.
	if raw.Compute != nil && !isNull(raw.Compute) {
		cn := deref(raw.Compute)
		name, err := ParseResourceRef(cn.Value)
		switch {
		case cn.Kind != yaml.ScalarNode || err != nil:
			s.fail(cn, join(field, "compute"), "compute must be azureml:<name>: %v", err)
		case pc != nil && name == "local":
			s.fail(cn, join(field, "compute"), "compute local is not allowed inside a pipeline")
		default:
			st.Compute = name
		}
	} else if pc != nil {
		st.Compute = pc.settings.DefaultCompute
	}
	if pc != nil {
		st.DefaultDatastore, st.ForceRerun = pc.settings.DefaultDatastore, pc.settings.ForceRerun
	}
	if b.pipeline {
		// The component's steps run where the step says, unless they
		// say otherwise.
		b.settings = pc.settings
		if st.Compute != "" {
			b.settings.DefaultCompute = st.Compute
		}
		s.settings(raw.Settings, valueOf(n, "settings"), join(field, "settings"), &b.settings)
		st.Compute = b.settings.DefaultCompute
	}
	if raw.Limits != nil && raw.Limits.Timeout != nil {
		if *raw.Limits.Timeout <= 0 {
			s.fail(valueOf(valueOf(n, "limits"), "timeout"), join(field, "limits.timeout"), "timeout must be a positive number of seconds")
		} else {
			st.Timeout = *raw.Limits.Timeout
		}
	}
	if rs := raw.RetrySettings; rs != nil {
		rn := valueOf(n, "retry_settings")
		if rs.MaxRetries != nil {
			if *rs.MaxRetries < 0 {
				s.fail(valueOf(rn, "max_retries"), join(field, "retry_settings.max_retries"), "max_retries must be 0 or more, got %d", *rs.MaxRetries)
			} else {
				st.Retry.MaxRetries = *rs.MaxRetries
			}
		}
		if rs.Timeout != nil {
			if *rs.Timeout <= 0 {
				s.fail(valueOf(rn, "timeout"), join(field, "retry_settings.timeout"), "timeout must be a positive number of seconds")
			} else {
				st.Retry.Timeout = *rs.Timeout
			}
		}
	}
	return b
}

func componentLabel(c *ComponentSpec) string {
	switch {
	case c.Name == "":
		return "(inline)"
	case c.Version == "":
		return c.Name
	}
	return c.Name + ":" + c.Version
}

// componentField resolves a step's component: a file (./train.yml or
// file:train.yml), a registered reference, or an inline mapping. The result is a copy the step may change.
func (s scope) componentField(n *yaml.Node, field string, r Resolver) (*ComponentSpec, string) {
	switch n.Kind {
	case yaml.MappingNode:
		return s.component(n, field, r, false), ""
	case yaml.ScalarNode:
	default:
		s.fail(n, field, "component must be file:<path>, azureml:<name>:<version> or a mapping")
		return nil, ""
	}
	ref, err := parseComponentRef(n.Value)
	if err != nil {
		s.fail(n, field, "%v", err)
		return nil, ""
	}
	if ref.Form == RefFile {
		path, ok := s.localPath(n, field, ref.Path)
		if !ok {
			return nil, ""
		}
		before := len(s.errs.list)
		cdoc := loadDocument(path, nil, s.errs)
		if cdoc == nil {
			for _, e := range s.errs.list[before:] {
				if e.Line == 0 && e.Field == "" {
					pos := s.position(n, field)
					e.Msg = fmt.Sprintf("component %s: %s", e.File, e.Msg)
					e.File, e.Line, e.Column, e.Field = pos.File, pos.Line, pos.Column, pos.Field
				}
			}
			return nil, ""
		}
		c := scope{cdoc, s.errs}.component(cdoc.Root, "", r, true)
		if len(s.errs.list) > before {
			return nil, ""
		}
		return c, n.Value
	}
	if ref.Kind != "" && ref.Kind != AssetComponent {
		s.fail(n, field, "%q refers to %s, expected components", ref.Raw, ref.Kind)
		return nil, ""
	}
	c, found, err := r.Component(ref)
	switch {
	case err != nil:
		s.fail(n, field, "cannot look up %s: %v", ref.Raw, err)
		return nil, ""
	case !found || c == nil:
		s.fail(n, field, "unknown component reference %s: no such component is registered", ref.Raw)
		return nil, ""
	}
	c = c.Clone()
	if c.Jobs != nil {
		c.Jobs.origin = "azureml:" + c.Name + ":" + c.Version
	}
	return c, n.Value
}

// resolveInputs checks every pending input against the input it feeds and
// records the bindings. Steps are resolved upstream first, so a binding to
// another step's input can copy its value.
func (b *stepBuild) resolveInputs(s scope, pc *pipelineContext, steps map[string]*stepBuild) {
	defer b.searchSpaceFields(s, len(s.errs.list))
	comp := b.step.Component
	for _, p := range b.inputs {
		decl := comp.Inputs[p.name]
		if decl == nil {
			continue
		}
		bind := Binding{Pos: s.position(p.node, p.field)}
		set := true
		switch {
		case p.empty:
			if b.inline {
				s.fail(p.node, p.field, "input %q has no value", p.name)
			}
			set = false
		case p.lit != nil:
			bind.Kind = BindLiteral
			set = b.literalInto(s, p, decl, *p.lit, true, &bind, fmt.Sprintf("a %s literal", p.lit.Type))
		case p.data != nil:
			bind.Kind = BindData
			set = b.dataInto(s, p, decl, p.data.Type, &bind, "data")
			if set {
				d := *p.data
				d.Mode = bind.Mode
				if d.Type != TypeURIFile {
					// A file given to a folder input stays a file: the
					// step gets the folder holding it.
					d.Type = bind.Type
				}
				bind.Data = &d
			}
		case pc == nil:
			s.fail(p.node, p.field, "%s: bindings to a parent are only valid in pipeline steps", p.expr.text)
			set = false
		case p.expr.parentPort == "outputs":
			s.fail(p.node, p.field, "%s: a pipeline output cannot feed an input; bind to the step output that writes it", p.expr.text)
			set = false
		case p.expr.parentPort == "inputs":
			set = b.parentInto(s, pc, p, decl, &bind)
		default:
			set = b.stepInto(s, p, decl, &bind, steps)
		}
		if set {
			b.step.Inputs[p.name] = bind
		}
	}
	if b.inline || !b.ok {
		return
	}
	for _, name := range sortedKeys(comp.Inputs) {
		if _, ok := b.step.Inputs[name]; ok || b.written[name] {
			continue
		}
		decl := comp.Inputs[name]
		switch {
		case decl.Default != nil:
			v := *decl.Default
			b.step.Inputs[name] = Binding{Kind: BindLiteral, Type: decl.Type, Literal: &v, FromDefault: true, Pos: b.step.Pos}
		case decl.Optional:
		default:
			node := b.node
			if b.inputsNode != nil {
				node = b.inputsNode
			}
			s.fail(node, join(b.field, "inputs."+name), "required input %q of component %s is not set (no binding, no default, and not optional)", name, componentLabel(comp))
		}
	}
}

// literalInto binds a literal value to decl. strict applies to literals
// written directly; values flowing from a pipeline input are strings and
// are parsed instead.
func (b *stepBuild) literalInto(s scope, p *pendingInput, decl *InputSpec, v Value, strict bool, bind *Binding, source string) bool {
	if b.inline && decl.Type == "" {
		decl.Type = v.Type
	}
	if IsDataType(decl.Type) {
		s.fail(p.node, p.field, "type mismatch: %s cannot be bound to %s input %q; write {type: %s, path: ...}", source, decl.Type, p.name, decl.Type)
		return false
	}
	cv, err := coerce(v, decl.Type, strict)
	if err == nil {
		err = checkRange(cv, decl)
	}
	if err != nil {
		s.fail(p.node, p.field, "input %q: %v", p.name, err)
		return false
	}
	bind.Literal, bind.Type = &cv, decl.Type
	return true
}

// dataInto binds data of type typ to decl, settling type and mode.
func (b *stepBuild) dataInto(s scope, p *pendingInput, decl *InputSpec, typ string, bind *Binding, source string) bool {
	if p.typ != "" {
		typ = p.typ
	}
	if b.inline && decl.Type == "" {
		if typ == "" {
			typ = TypeURIFolder
		}
		decl.Type = typ
	}
	if IsLiteralType(decl.Type) {
		s.fail(p.node, p.field, "type mismatch: %s cannot be bound to %s input %q", source, decl.Type, p.name)
		return false
	}
	// A file given to a folder input is passed as the folder holding it,
	// as Azure does; a folder cannot stand for one file.
	fileToFolder := typ == TypeURIFile && decl.Type == TypeURIFolder
	if typ != "" && isFileType(typ) != isFileType(decl.Type) && !fileToFolder {
		s.fail(p.node, p.field, "type mismatch: %s of type %s cannot be bound to %s input %q", source, typ, decl.Type, p.name)
		return false
	}
	mode := p.mode
	if mode == "" {
		mode = decl.Mode
	}
	if mode == "" {
		mode = ModeROMount
	}
	if (mode == ModeEvalMount || mode == ModeEvalDownload) && decl.Type != TypeMLTable {
		s.fail(p.node, p.field, "mode %s applies to mltable inputs only", mode)
		return false
	}
	bind.Type, bind.Mode = decl.Type, mode
	return true
}

func (b *stepBuild) parentInto(s scope, pc *pipelineContext, p *pendingInput, decl *InputSpec, bind *Binding) bool {
	if pc.component != nil {
		return b.componentInputInto(s, pc, p, decl, bind)
	}
	pi, ok := pc.inputs[p.expr.name]
	if !ok {
		s.fail(p.node, p.field, "%s: the pipeline has no input %q (inputs: %s)", p.expr.text, p.expr.name, listOrNone(sortedKeys(pc.inputs)))
		return false
	}
	bind.Kind, bind.ParentInput = BindParentInput, p.expr.name
	source := fmt.Sprintf("pipeline input %q", p.expr.name)
	switch {
	case pi.Literal != nil:
		if b.inline && decl.Type == "" {
			// Pipeline literals reach steps as strings.
			decl.Type = TypeString
		}
		return b.literalInto(s, p, decl, *pi.Literal, false, bind, source+" (a literal)")
	case pi.Data != nil:
		if !b.dataInto(s, p, decl, pi.Data.Type, bind, source) {
			return false
		}
		d := *pi.Data
		d.Type, d.Mode = bind.Type, bind.Mode
		bind.Data = &d
		return true
	}
	if b.inline && decl.Type == "" {
		decl.Type = pi.Type
		if decl.Type == "" {
			decl.Type = TypeString
		}
	}
	if b.inline || (decl.Default == nil && !decl.Optional) {
		s.fail(p.node, p.field, "input %q is bound to pipeline input %q, which has no value", p.name, p.expr.name)
	}
	return false
}

func (b *stepBuild) stepInto(s scope, p *pendingInput, decl *InputSpec, bind *Binding, steps map[string]*stepBuild) bool {
	e := p.expr
	up, ok := steps[e.step]
	if !ok {
		s.fail(p.node, p.field, "%s: there is no step %q in this pipeline (steps: %s)", e.text, e.step, listOrNone(sortedKeys(steps)))
		return false
	}
	bind.Step, bind.Port = up.step.Name, e.name
	if e.stepPort == "outputs" {
		out, ok := up.step.Outputs[e.name]
		if !ok {
			s.fail(p.node, p.field, "%s: step %q has no output %q (outputs: %s)", e.text, e.step, e.name, listOrNone(sortedKeys(up.step.Outputs)))
			return false
		}
		typ := out.Type
		if src, ok := up.outputSource(e.name); ok && up.pipeline {
			bind.Step, bind.Port, typ = src.step, src.port, src.out.Type
		}
		bind.Kind = BindStepOutput
		return b.dataInto(s, p, decl, typ, bind, fmt.Sprintf("output %q of step %q", e.name, e.step))
	}
	bind.Kind = BindStepInput
	if _, declared := up.step.Component.Inputs[e.name]; !declared {
		s.fail(p.node, p.field, "%s: step %q has no input %q (inputs: %s)", e.text, e.step, e.name, listOrNone(sortedKeys(up.step.Component.Inputs)))
		return false
	}
	ub, ok := up.step.Inputs[e.name]
	if !ok {
		if b.inline || (decl.Default == nil && !decl.Optional) {
			s.fail(p.node, p.field, "%s: input %q of step %q is not set", e.text, e.name, e.step)
		}
		return false
	}
	source := fmt.Sprintf("input %q of step %q", e.name, e.step)
	if up.pipeline {
		// What a pipeline component's input receives is what its steps
		// read: the same value.
		bind.Kind, bind.ParentInput, bind.Step, bind.Port = ub.Kind, ub.ParentInput, ub.Step, ub.Port
	}
	return b.copyInto(s, p, decl, ub, bind, source)
}

// copyInto binds decl to the value another binding holds: its literal,
// its data, or (when it is fed by a step output) the same data.
func (b *stepBuild) copyInto(s scope, p *pendingInput, decl *InputSpec, from Binding, bind *Binding, source string) bool {
	switch {
	case from.Literal != nil:
		return b.literalInto(s, p, decl, *from.Literal, false, bind, source)
	case from.Data != nil:
		if !b.dataInto(s, p, decl, from.Type, bind, source) {
			return false
		}
		d := *from.Data
		d.Type, d.Mode = bind.Type, bind.Mode
		bind.Data = &d
		return true
	}
	return b.dataInto(s, p, decl, from.Type, bind, source)
}

// sortedDeps lists the existing upstream steps of b.
func (b *stepBuild) sortedDeps(steps map[string]*stepBuild) []string {
	var deps []string
	for d := range b.depRefs {
		if _, ok := steps[d]; ok {
			deps = append(deps, d)
		}
	}
	sort.Strings(deps)
	return deps
}
