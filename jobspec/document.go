package jobspec

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// Uploader stores local content named in a job file and returns the URI a
// job document refers to it by (azureml://datastores/.../paths/...).
// what says what the content is for, for progress and messages.
type Uploader interface {
	Upload(path, what string) (uri string, err error)
	// UploadCode stores a code folder with a component's additional
	// includes beside its files (see snapshot.Gather).
	UploadCode(path string, includes []string) (uri string, err error)
}

// Document is a job file made ready to send to a server: the CLI v2 job
// schema as JSON in the file's own key order, with --set overrides
// applied, component and conda files it names inlined and every local
// path replaced by the URI its content was uploaded to. It remembers where
// each part came from, so that a problem the server reports by field path
// can be pointed back at a file and line.
type Document struct {
	// JSON is the document.
	JSON []byte
	// Name is the job's name, "" when the file sets none.
	Name string
	// Shown lists the fields of a shown job (see ShownFields) that the
	// file held and the document left out; ShownName is the name such a
	// file had, which the document leaves out too.
	Shown     []string
	ShownName string
	// sources are the files parts of the document came from, by the field
	// path where each part starts; "" is the job itself.
	sources map[string]source
}

type source struct {
	doc  *yamlfile.Document
	node *yaml.Node
}

// JobDocument reads the job file at path, applies sets, and builds the
// document a server resolves, uploading local content through up. The
// file should have been validated (LoadJob) first: this reports only what
// stops the document from being built.
func JobDocument(path string, sets []string, up Uploader) (*Document, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return buildDocument(doc, doc.Root, up, errs)
}

// ScheduleJobDocument builds the document of the job a schedule file
// creates: create_job is a job file relative to the schedule, or inline.
func ScheduleJobDocument(path string, sets []string, up Uploader) (*Document, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	jn := deref(valueOf(doc.Root, "create_job"))
	switch {
	case jn == doc.Root || isNull(jn):
		return nil, yamlfile.NodeError(doc, doc.Root, "create_job", "create_job is required")
	case jn.Kind == yaml.ScalarNode:
		jdoc := loadDocument(doc.Resolve(strings.TrimPrefix(jn.Value, "file:")), nil, errs)
		if jdoc == nil {
			return nil, errs.err()
		}
		return buildDocument(jdoc, jdoc.Root, up, errs)
	case jn.Kind == yaml.MappingNode && isJobWithOverrides(jn):
		jdoc := scope{doc, errs}.jobWithOverrides(jn)
		if jdoc == nil {
			return nil, errs.err()
		}
		return buildDocument(jdoc, jdoc.Root, up, errs)
	}
	return buildDocument(doc, jn, up, errs)
}

// ComponentDocument reads the component file at path, applies sets, and
// builds the document a pipeline component is registered as: the
// component files its steps name inlined and local content uploaded
// through up, so that a server can read its steps at every use.
func ComponentDocument(path string, sets []string, up Uploader) (*Document, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	b := &docBuilder{up: up, errs: errs, out: &Document{sources: map[string]source{"": {doc, doc.Root}}}, inlining: []string{doc.File}}
	body := b.componentBody(doc, deref(doc.Root), "")
	if err := errs.err(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, body); err != nil {
		return nil, yamlfile.NodeError(doc, doc.Root, "", "%v", err)
	}
	b.out.JSON = buf.Bytes()
	return b.out, nil
}

// ShownFields are what a server adds when it shows a job: its state and
// what it resolved. A job file saved from `job show -o yaml` holds them;
// reading it ignores them, so that the file can be submitted again.
var ShownFields = []string{"id", "status", "creation_context", "services", "resolution", "run_id", "experiment_id",
	"error", "started_at", "ended_at", "submitted_by", "created_at", "steps", "metrics", "parent", "step",
	"resolved", "reuse_key", "reused_from", "reuse_note", "attempts", "spec", "artifacts", "best_trial",
	"parameters", "properties"}

// dropShown removes ShownFields from a job mapping and returns the ones
// it found.
func dropShown(n *yaml.Node) []string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var found []string
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if slices.Contains(ShownFields, k.Value) {
			found = append(found, k.Value)
			continue
		}
		kept = append(kept, k, n.Content[i+1])
	}
	n.Content = kept
	return found
}

func buildDocument(doc *yamlfile.Document, root *yaml.Node, up Uploader, errs *problems) (*Document, error) {
	b := &docBuilder{up: up, errs: errs, out: &Document{sources: map[string]source{"": {doc, root}}}}
	if shown := dropShown(root); len(shown) > 0 {
		// A shown job's name is the job it was shown from, which exists:
		// submitting it again makes a new job, as a resubmission does.
		b.out.Shown = shown
		if name := valueOf(root, "name"); name != root {
			b.out.ShownName = name.Value
			removeKey(root, "name")
		}
	}
	job := b.job(doc, root, "")
	if err := errs.err(); err != nil {
		return nil, err
	}
	// The experiment az ml gives a job without one is the name of its
	// file's folder, which a server cannot know.
	if valueOf(job, "experiment_name") == job {
		setKey(job, "experiment_name", strScalar(scope{doc, errs}.defaultExperiment()))
	}
	if n := valueOf(job, "name"); n != job && n.Kind == yaml.ScalarNode {
		b.out.Name = n.Value
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, job); err != nil {
		return nil, yamlfile.NodeError(doc, root, "", "%v", err)
	}
	b.out.JSON = buf.Bytes()
	return b.out, nil
}

type docBuilder struct {
	up   Uploader
	errs *problems
	out  *Document
	// inlining are the component files being inlined, outermost first.
	inlining []string
}

// copyMapping copies a mapping's entries (aliases followed, merge keys
// expanded) into a new mapping, passing each value through fn.
func copyMapping(n *yaml.Node, fn func(key string, v *yaml.Node) *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for _, e := range entries(n) {
		v := fn(e.key.Value, e.value)
		if v == nil {
			continue
		}
		out.Content = append(out.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.key.Value,
			Line: e.key.Line, Column: e.key.Column}, v)
	}
	return out
}

// job copies a command or pipeline job, or a command step.
func (b *docBuilder) job(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	return copyMapping(n, func(key string, v *yaml.Node) *yaml.Node {
		f := join(field, key)
		switch key {
		case "code", "environment":
			return b.runsOn(doc, key, v, f)
		case "inputs":
			return b.inputs(doc, v, f)
		case "component":
			return b.component(doc, v, f)
		case "trial":
			// A sweep's trial: a component reference, or a command.
			if deref(v).Kind == yaml.ScalarNode {
				return b.component(doc, v, f)
			}
			if isComponentMapping(deref(v)) {
				return b.componentBody(doc, deref(v), f)
			}
			return b.job(doc, v, f)
		case "task":
			return b.task(doc, v, f)
		case "jobs":
			if v.Kind != yaml.MappingNode {
				return v
			}
			return copyMapping(v, func(step string, sv *yaml.Node) *yaml.Node {
				return b.job(doc, sv, join(f, step))
			})
		}
		return v
	})
}

// component inlines a component file, or copies an inline component;
// references to registered components stay as written.
func (b *docBuilder) component(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	n = deref(n)
	if n.Kind == yaml.MappingNode {
		return b.componentBody(doc, n, field)
	}
	if n.Kind != yaml.ScalarNode {
		return n
	}
	ref, err := parseComponentRef(n.Value)
	if err != nil || ref.Form != RefFile {
		return n
	}
	path := doc.Resolve(ref.Path)
	if slices.Contains(b.inlining, path) {
		b.errs.list = append(b.errs.list, yamlfile.NodeError(doc, n, field, "pipeline component cycle: %s uses itself", path))
		return n
	}
	cdoc := loadDocument(path, nil, b.errs)
	if cdoc == nil {
		return n
	}
	b.inlining = append(b.inlining, path)
	defer func() { b.inlining = b.inlining[:len(b.inlining)-1] }()
	b.out.sources[field] = source{cdoc, cdoc.Root}
	return b.componentBody(cdoc, cdoc.Root, field)
}

func (b *docBuilder) componentBody(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	// Additional includes join the code folder before it is uploaded;
	// the document names only the result.
	var includes []string
	if inc := deref(valueOf(n, "additional_includes")); inc != n && inc.Kind == yaml.SequenceNode {
		for _, item := range inc.Content {
			if item = deref(item); item.Kind == yaml.ScalarNode {
				includes = append(includes, doc.Resolve(strings.TrimSpace(item.Value)))
			}
		}
	}
	return copyMapping(n, func(key string, v *yaml.Node) *yaml.Node {
		switch key {
		case "$schema", "additional_includes":
			return nil
		case "code":
			if len(includes) > 0 && v.Kind == yaml.ScalarNode && !isNull(v) {
				uri, err := b.up.UploadCode(doc.Resolve(strings.TrimSpace(v.Value)), includes)
				if err != nil {
					b.errs.list = append(b.errs.list, yamlfile.NodeError(doc, v, join(field, key), "%s", err.Error()))
					return v
				}
				return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: uri, Line: v.Line, Column: v.Column}
			}
			return b.code(doc, v, join(field, key))
		case "environment":
			return b.environment(doc, v, join(field, key))
		case "jobs":
			// A pipeline component's steps, with the files they name.
			if v.Kind != yaml.MappingNode {
				return v
			}
			return copyMapping(v, func(step string, sv *yaml.Node) *yaml.Node {
				return b.job(doc, sv, join(join(field, key), step))
			})
		case "task":
			return b.task(doc, v, join(field, key))
		}
		return v
	})
}

// task copies a parallel job's task, uploading its code and its
// environment's local files.
func (b *docBuilder) task(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	return copyMapping(n, func(key string, v *yaml.Node) *yaml.Node {
		return b.runsOn(doc, key, v, join(field, key))
	})
}

// runsOn uploads a code field and an environment's local files; any
// other key stays as written.
func (b *docBuilder) runsOn(doc *yamlfile.Document, key string, v *yaml.Node, field string) *yaml.Node {
	switch key {
	case "code":
		return b.code(doc, v, field)
	case "environment":
		return b.environment(doc, v, field)
	}
	return v
}

// environment inlines an inline environment's conda file and uploads its
// build context; references stay as written.
func (b *docBuilder) environment(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return n
	}
	return copyMapping(n, func(key string, v *yaml.Node) *yaml.Node {
		f := join(field, key)
		switch key {
		case "conda_file":
			if v.Kind != yaml.ScalarNode || isNull(v) {
				return v
			}
			cdoc := loadDocument(doc.Resolve(v.Value), nil, b.errs)
			if cdoc == nil {
				return v
			}
			b.out.sources[f] = source{cdoc, cdoc.Root}
			return copyMapping(cdoc.Root, func(_ string, cv *yaml.Node) *yaml.Node { return cv })
		case "build":
			if v.Kind != yaml.MappingNode {
				return v
			}
			return copyMapping(v, func(bk string, bv *yaml.Node) *yaml.Node {
				if bk == "path" {
					return b.local(doc, bv, join(f, bk), "build context")
				}
				return bv
			})
		}
		return v
	})
}

func (b *docBuilder) code(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	return b.local(doc, n, field, "code")
}

// inputs uploads the local paths of data inputs; literals stay as written.
func (b *docBuilder) inputs(doc *yamlfile.Document, n *yaml.Node, field string) *yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return n
	}
	return copyMapping(n, func(name string, v *yaml.Node) *yaml.Node {
		if v.Kind != yaml.MappingNode {
			return v
		}
		return copyMapping(v, func(key string, iv *yaml.Node) *yaml.Node {
			if key == "path" {
				return b.local(doc, iv, join(join(field, name), key), "input "+name)
			}
			return iv
		})
	})
}

// local replaces a local path with the URI of its uploaded content; any
// other value (a reference, a URI, a binding) stays as written.
func (b *docBuilder) local(doc *yamlfile.Document, n *yaml.Node, field, what string) *yaml.Node {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return n
	}
	p := localFromFileURI(strings.TrimSpace(n.Value))
	if p == "" || strings.HasPrefix(p, "azureml:") || strings.Contains(p, "://") || strings.Contains(p, "${{") {
		return n
	}
	uri, err := b.up.Upload(doc.Resolve(p), what)
	if err != nil {
		b.errs.list = append(b.errs.list, yamlfile.NodeError(doc, n, field, "%s", err.Error()))
		return n
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: uri, Line: n.Line, Column: n.Column}
}

func removeKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func strScalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func setKey(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strScalar(key), v)
}

// writeJSON writes a YAML node tree as JSON, keeping mapping order: the
// order of pipeline steps breaks ties in their run order.
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	n = deref(n)
	if n == nil {
		buf.WriteString("null")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i, e := range entries(n) {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(e.key.Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := writeJSON(buf, e.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		buf.Write(scalarJSON(n))
	}
	return nil
}

// scalarJSON renders a scalar by its YAML type. A number keeps the text
// it was written with when that is valid JSON, since a literal input
// reaches the command as written.
func scalarJSON(n *yaml.Node) []byte {
	str := func() []byte { b, _ := json.Marshal(n.Value); return b }
	switch n.ShortTag() {
	case "!!null":
		return []byte("null")
	case "!!bool":
		if v, ok := yamlfile.ParseBool(n.Value); ok {
			return []byte(strconv.FormatBool(v))
		}
	case "!!int":
		if json.Valid([]byte(n.Value)) {
			return []byte(n.Value)
		}
		clean := strings.ReplaceAll(n.Value, "_", "")
		if v, err := strconv.ParseInt(clean, 0, 64); err == nil {
			return []byte(strconv.FormatInt(v, 10))
		}
	case "!!float":
		if json.Valid([]byte(n.Value)) {
			return []byte(n.Value)
		}
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			return []byte(strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	return str()
}

// Locate returns where the field path a server named was written: the
// file and position of the deepest node on that path.
func (d *Document) Locate(field string) (file string, line, column int) {
	best := ""
	for prefix := range d.sources {
		if (prefix == "" || field == prefix || strings.HasPrefix(field, prefix+".")) && len(prefix) >= len(best) {
			best = prefix
		}
	}
	src, ok := d.sources[best]
	if !ok {
		return "", 0, 0
	}
	n := src.node
	rest := strings.TrimPrefix(strings.TrimPrefix(field, best), ".")
	if rest != "" {
		for _, key := range strings.Split(rest, ".") {
			next := deref(valueOf(n, key))
			if next == nil || next == n {
				break
			}
			n = next
		}
	}
	return src.doc.File, n.Line, n.Column
}
