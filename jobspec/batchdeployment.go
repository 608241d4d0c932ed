package jobspec

import (
	"bytes"
	"encoding/json"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// PipelineDeployment is a batch deployment of type pipeline
// (pipelineComponentBatchDeployment.schema.json) made ready to send to a
// server: every invocation runs its pipeline as a pipeline job.
type PipelineDeployment struct {
	Name         string
	EndpointName string
	Description  string
	Tags         map[string]string
	// Job is the pipeline job document an invocation runs, its inputs and
	// outputs replaced by the invocation's: a job of the component
	// ({type: pipeline, component: ...}, the component file inlined and
	// its content uploaded), or the document of the job file named by
	// job_definition. Nil when JobDefinition names a job on the server.
	Job json.RawMessage
	// JobDefinition is the name of an existing pipeline job whose
	// pipeline is deployed (job_definition: azureml:<job>).
	JobDefinition string
	// Settings are the deployment's settings as written (default_compute
	// as azureml:<name>), laid over the pipeline's own.
	Settings map[string]any
}

type rawPipelineDeployment struct {
	Name          string            `yaml:"name"`
	EndpointName  string            `yaml:"endpoint_name"`
	Type          string            `yaml:"type"`
	Description   string            `yaml:"description"`
	Tags          map[string]string `yaml:"tags"`
	Component     *yaml.Node        `yaml:"component"`
	JobDefinition *yaml.Node        `yaml:"job_definition"`
	Settings      *rawSettings      `yaml:"settings"`
}

// IsPipelineDeployment reports whether the batch deployment file at path
// is of type pipeline; false when it cannot be read (the caller reading
// it as a model deployment reports why).
func IsPipelineDeployment(path string, sets []string) bool {
	doc := loadDocument(path, sets, &problems{})
	if doc == nil {
		return false
	}
	t := deref(valueOf(doc.Root, "type"))
	return t != doc.Root && t.Kind == yaml.ScalarNode && t.Value == "pipeline"
}

// LoadPipelineDeployment reads a batch deployment file of type pipeline,
// checks it (r looks up registered components; nil knows none) and builds
// what a server stores, uploading local content through up.
func LoadPipelineDeployment(path string, sets []string, r Resolver, up Uploader) (*PipelineDeployment, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	s := scope{doc, errs}
	r = resolverOrEmpty(r)
	root := doc.Root
	var raw rawPipelineDeployment
	s.decode(root, "", &raw)
	d := &PipelineDeployment{Name: raw.Name, EndpointName: raw.EndpointName, Description: raw.Description, Tags: raw.Tags,
		Settings: map[string]any{}}
	hasComponent := raw.Component != nil && !isNull(raw.Component)
	hasJob := raw.JobDefinition != nil && !isNull(raw.JobDefinition)
	switch {
	case hasComponent && hasJob:
		s.fail(raw.JobDefinition, "job_definition", "a pipeline deployment has component or job_definition, not both")
	case !hasComponent && !hasJob:
		s.fail(root, "component", "component is required (or job_definition): the pipeline component the deployment runs")
	}
	var settings Settings
	s.settings(raw.Settings, valueOf(root, "settings"), "settings", &settings)
	if st := raw.Settings; st != nil {
		if st.DefaultCompute != nil && settings.DefaultCompute != "" {
			d.Settings["default_compute"] = "azureml:" + settings.DefaultCompute
		}
		if st.DefaultDatastore != nil && settings.DefaultDatastore != "" {
			d.Settings["default_datastore"] = "azureml:" + settings.DefaultDatastore
		}
		if st.ContinueOnStepFailure != nil {
			d.Settings["continue_on_step_failure"] = *st.ContinueOnStepFailure
		}
		if st.ForceRerun != nil {
			d.Settings["force_rerun"] = *st.ForceRerun
		}
	}
	if errs.err() != nil {
		return nil, errs.err()
	}
	b := &docBuilder{up: up, errs: errs, out: &Document{sources: map[string]source{"": {doc, root}}}}
	var job *yaml.Node
	if hasComponent {
		comp, ref := s.componentField(raw.Component, "component", r)
		switch {
		case comp == nil:
		case !comp.IsPipeline():
			s.fail(raw.Component, "component", "component %s is a command component; a pipeline deployment runs a pipeline component (type: pipeline)", componentRefLabel(comp, ref))
		default:
			s.checkPipelineComponent(comp, r)
		}
		if errs.err() != nil {
			return nil, errs.err()
		}
		job = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(job, "type", strScalar("pipeline"))
		setKey(job, "component", b.component(doc, raw.Component, "component"))
	} else {
		jn := deref(raw.JobDefinition)
		text := strings.TrimSpace(jn.Value)
		switch {
		case jn.Kind != yaml.ScalarNode || text == "":
			s.fail(jn, "job_definition", "job_definition must name a pipeline job file or an existing job (azureml:<job name>)")
		case strings.HasPrefix(text, "azureml:") && !strings.Contains(text, "/"):
			d.JobDefinition = strings.TrimPrefix(text, "azureml:")
		default:
			path, ok := s.localPath(jn, "job_definition", strings.TrimPrefix(text, "file:"))
			if !ok {
				break
			}
			before := len(errs.list)
			jdoc := loadDocument(path, nil, errs)
			if jdoc == nil {
				break
			}
			if plan, _ := jobFromDocument(jdoc, jdoc.Root, "", r, errs); plan != nil && plan.Kind != KindPipeline {
				s.fail(jn, "job_definition", "%s is a command job; a pipeline deployment runs a pipeline job", path)
			}
			if len(errs.list) > before {
				break
			}
			b.out.sources["job_definition"] = source{jdoc, jdoc.Root}
			job = b.job(jdoc, jdoc.Root, "job_definition")
			removeKey(job, "name")
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if job != nil {
		var buf bytes.Buffer
		if err := writeJSON(&buf, job); err != nil {
			return nil, yamlfile.NodeError(doc, root, "", "%v", err)
		}
		d.Job = buf.Bytes()
	}
	return d, nil
}

// InvocationDocument reads the inputs and outputs of a batch endpoint
// invocation (`invoke --file inputs.yml`, or --set inputs.x=... alone when
// path is empty) and returns them as JSON mappings, local data uploaded
// through up.
func InvocationDocument(path string, sets []string, up Uploader) (inputs, outputs json.RawMessage, err error) {
	errs := &problems{}
	var doc *yamlfile.Document
	if path == "" {
		if doc, err = yamlfile.Parse("--set", []byte("{}")); err != nil {
			return nil, nil, err
		}
		applySets(doc, sets, errs)
	} else if doc = loadDocument(path, sets, errs); doc == nil {
		return nil, nil, errs.err()
	}
	s := scope{doc, errs}
	var raw struct {
		Inputs  *yaml.Node `yaml:"inputs"`
		Outputs *yaml.Node `yaml:"outputs"`
	}
	s.decode(doc.Root, "", &raw)
	for _, part := range []struct {
		name string
		n    *yaml.Node
	}{{"inputs", raw.Inputs}, {"outputs", raw.Outputs}} {
		if part.n != nil && !isNull(part.n) && deref(part.n).Kind != yaml.MappingNode {
			s.fail(part.n, part.name, "%s must be a mapping of name to value", part.name)
		}
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	b := &docBuilder{up: up, errs: errs, out: &Document{sources: map[string]source{"": {doc, doc.Root}}}}
	render := func(n *yaml.Node) (json.RawMessage, error) {
		if n == nil || isNull(n) {
			return nil, nil
		}
		var buf bytes.Buffer
		err := writeJSON(&buf, n)
		return buf.Bytes(), err
	}
	in := raw.Inputs
	if in != nil && !isNull(in) {
		in = b.inputs(doc, in, "inputs")
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	if inputs, err = render(in); err != nil {
		return nil, nil, err
	}
	if outputs, err = render(raw.Outputs); err != nil {
		return nil, nil, err
	}
	return inputs, outputs, nil
}
