package jobspec

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

func (s scope) pipelineJob(n *yaml.Node, field string, r Resolver) *Plan {
	var raw rawPipelineJob
	s.decode(n, field, &raw)
	plan := s.topLevelPlan(KindPipeline, n, field, jobHeader{raw.Name, raw.DisplayName, raw.ExperimentName, raw.Description, raw.Tags, raw.Identity})

	// Settings.
	if raw.Compute != nil && !isNull(raw.Compute) {
		plan.Settings.DefaultCompute = s.computeName(raw.Compute, join(field, "compute"))
	}
	s.settings(raw.Settings, valueOf(n, "settings"), join(field, "settings"), &plan.Settings)

	// Parent inputs and outputs.
	if raw.Inputs != nil && !isNull(raw.Inputs) && raw.Inputs.Kind != yaml.MappingNode {
		s.fail(raw.Inputs, join(field, "inputs"), "inputs must be a mapping")
	}
	for _, e := range entries(raw.Inputs) {
		name, f := e.key.Value, join(field, "inputs."+e.key.Value)
		if !portNameRe.MatchString(name) {
			s.fail(e.key, f, "invalid input name %q (letters, digits and '_', not starting with a digit)", name)
			continue
		}
		p := s.readInput(name, e.value, f, TypeURIFolder, r)
		if p == nil {
			continue
		}
		if p.expr != nil {
			s.fail(e.value, f, "%s: pipeline inputs take values, not bindings", p.expr.text)
			continue
		}
		iv := &InputValue{Name: name, Type: p.typ, Description: p.desc, Optional: p.optional, Pos: s.position(e.value, f)}
		switch {
		case p.lit != nil:
			iv.Literal = p.lit
			iv.Type = p.lit.Type
		case p.data != nil:
			if iv.Type == "" {
				iv.Type = TypeURIFolder
			}
			d := *p.data
			d.Type = iv.Type
			if d.Mode == "" {
				d.Mode = ModeROMount
			}
			iv.Data = &d
		}
		plan.Inputs[name] = iv
	}
	if raw.Outputs != nil && !isNull(raw.Outputs) && raw.Outputs.Kind != yaml.MappingNode {
		s.fail(raw.Outputs, join(field, "outputs"), "outputs must be a mapping")
	}
	for _, e := range entries(raw.Outputs) {
		name, f := e.key.Value, join(field, "outputs."+e.key.Value)
		if !portNameRe.MatchString(name) {
			s.fail(e.key, f, "invalid output name %q (letters, digits and '_', not starting with a digit)", name)
			continue
		}
		if o := s.readOutput(e.value, f, nil, nil); o != nil {
			plan.Outputs[name] = o
		}
	}

	if raw.Component != nil && !isNull(raw.Component) {
		s.topComponent(plan, n, field, &raw, r)
		return plan
	}

	// Steps.
	pc := &pipelineContext{inputs: plan.Inputs, outputs: plan.Outputs, settings: plan.Settings, boundOutputs: map[string]boundOutput{}}
	plan.Steps = s.pipelineSteps(n, raw.Jobs, join(field, "jobs"), r, pc)
	return plan
}

// settings reads a settings mapping (of a pipeline job, or of a step
// that runs a pipeline component) on top of into.
func (s scope) settings(st *rawSettings, n *yaml.Node, field string, into *Settings) {
	if st == nil {
		return
	}
	if st.DefaultCompute != nil && !isNull(st.DefaultCompute) {
		into.DefaultCompute = s.computeName(st.DefaultCompute, join(field, "default_compute"))
	}
	if st.DefaultDatastore != nil && !isNull(st.DefaultDatastore) {
		dn := deref(st.DefaultDatastore)
		name, err := ParseResourceRef(dn.Value)
		if dn.Kind != yaml.ScalarNode || err != nil {
			s.fail(dn, join(field, "default_datastore"), "default_datastore must be azureml:<name>: %v", err)
		} else {
			into.DefaultDatastore = name
		}
	}
	if st.ContinueOnStepFailure != nil {
		into.ContinueOnStepFailure = *st.ContinueOnStepFailure
	}
	if st.ForceRerun != nil {
		into.ForceRerun = *st.ForceRerun
	}
}

// pipelineSteps reads the steps in jobs, the mapping under n, and
// returns them in run order, with the steps of the pipeline components
// they use in their place.
func (s scope) pipelineSteps(n, jobs *yaml.Node, jobsField string, r Resolver, pc *pipelineContext) []*Step {
	steps := map[string]*stepBuild{}
	var order []*stepBuild
	switch {
	case jobs == nil || isNull(jobs) || jobs == n:
		s.fail(n, jobsField, "jobs is required: a pipeline needs at least one step")
	case jobs.Kind != yaml.MappingNode:
		s.fail(jobs, jobsField, "jobs must be a mapping of step name to step")
	}
	for _, e := range entries(jobs) {
		name, f := e.key.Value, join(jobsField, e.key.Value)
		if !stepNameRe.MatchString(name) {
			s.fail(e.key, f, "invalid step name %q (letters, digits and '_', not starting with a digit)", name)
			continue
		}
		if e.value == nil || e.value.Kind != yaml.MappingNode {
			s.fail(e.value, f, "a step must be a mapping")
			continue
		}
		var b *stepBuild
		if isSweepStep(e.value) {
			if b = s.pipelineSweepStep(name, e.value, f, r, pc); b == nil {
				continue
			}
		} else {
			var rawStep rawCommandJob
			var par *rawParallel
			var clean bool
			if isParallel(e.value) {
				var rp rawParallelStep
				clean = s.decode(e.value, f, &rp)
				rawStep, par = rp.rawCommandJob, &rp.rawParallel
			} else {
				clean = s.decode(e.value, f, &rawStep)
			}
			b = s.buildStep(name, e.value, f, &rawStep, par, clean, r, pc)
		}
		b.name = name
		b.step.Name = pc.prefix + name
		b.step.Pos = s.position(e.key, f)
		b.order = len(order)
		steps[name] = b
		order = append(order, b)
	}

	sorted, cycle := topoSort(order, steps)
	if len(cycle) > 0 {
		first, second := cycle[0], cycle[1%len(cycle)]
		p := first.depRefs[second.name]
		names := make([]string, 0, len(cycle)+1)
		for i := len(cycle) - 1; i >= 0; i-- {
			names = append(names, cycle[i].name)
		}
		names = append(names, cycle[len(cycle)-1].name)
		s.fail(p.node, p.field, "dependency cycle between steps: %s", strings.Join(names, " -> "))
	}
	var out []*Step
	for _, b := range sorted {
		b.resolveInputs(s, pc, steps)
		b.checkParallelInput(s)
		if b.pipeline {
			if b.ok && len(cycle) == 0 {
				out = append(out, s.expandStep(b, pc, r)...)
			}
			continue
		}
		b.step.Deps = bindingDeps(b.step.Inputs)
		out = append(out, b.step)
	}
	return out
}

func (s scope) computeName(n *yaml.Node, field string) string {
	n = deref(n)
	name, err := ParseResourceRef(n.Value)
	switch {
	case n.Kind != yaml.ScalarNode || err != nil:
		s.fail(n, field, "compute must be azureml:<name>: %v", err)
	case name == "local":
		s.fail(n, field, "compute local is not allowed inside a pipeline")
	default:
		return name
	}
	return ""
}

// topoSort orders steps so each comes after its upstream steps, choosing
// among ready steps the one written first. Steps caught in a cycle are
// appended in file order after the rest, and one cycle is returned (each
// step depends on the next, the last on the first).
func topoSort(order []*stepBuild, steps map[string]*stepBuild) (sorted, cycle []*stepBuild) {
	done := map[string]bool{}
	for len(sorted) < len(order) {
		progressed := false
		for _, b := range order {
			if done[b.name] {
				continue
			}
			ready := true
			for _, d := range b.sortedDeps(steps) {
				if !done[d] {
					ready = false
					break
				}
			}
			if ready {
				done[b.name] = true
				sorted = append(sorted, b)
				progressed = true
				break
			}
		}
		if !progressed {
			break
		}
	}
	if len(sorted) == len(order) {
		return sorted, nil
	}
	// Every remaining step waits on another remaining one, so walking the
	// first unfinished dependency from any of them must come back round.
	var start *stepBuild
	for _, b := range order {
		if !done[b.name] {
			start = b
			break
		}
	}
	seen := map[string]int{}
	var path []*stepBuild
	for cur := start; cur != nil; {
		if i, ok := seen[cur.name]; ok {
			cycle = path[i:]
			break
		}
		seen[cur.name] = len(path)
		path = append(path, cur)
		var next *stepBuild
		for _, d := range cur.sortedDeps(steps) {
			if !done[d] {
				next = steps[d]
				break
			}
		}
		cur = next
	}
	for _, b := range order {
		if !done[b.name] {
			sorted = append(sorted, b)
		}
	}
	return sorted, cycle
}
