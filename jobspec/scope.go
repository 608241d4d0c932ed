package jobspec

import (
	"errors"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// problems collects every error found in one load, across all documents it
// touches (a pipeline and the component files it includes), so users can fix
// them in one go.
type problems struct {
	list []*yamlfile.Error
	sets []string
	// remote is set for a document that came over the API rather than
	// from a file: it has no folder, so local paths in it mean nothing.
	remote bool
	// expanding are the pipeline components being read, outermost
	// first, so that one that contains itself is refused.
	expanding []string
}

func (p *problems) add(err error) {
	if err == nil {
		return
	}
	p.list = append(p.list, yamlfile.AsList(err)...)
}

// err returns nil or an *ErrorList. Errors that carry no line but a field
// touched by a --set override say so, because they do not point into the file.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	for _, e := range p.list {
		if e.Line != 0 || strings.Contains(e.Msg, "(from --set") || strings.Contains(e.Msg, "--set ") {
			continue
		}
		if expr := setFor(p.sets, e.Field); expr != "" {
			e.Msg += " (from --set " + expr + ")"
		}
	}
	return &yamlfile.ErrorList{Errors: p.list}
}

// setFor returns the --set expression whose key path is field, contains
// field, or lies inside field.
func setFor(sets []string, field string) string {
	if field == "" {
		return ""
	}
	for _, s := range sets {
		key, _, _ := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if key == field || strings.HasPrefix(field, key+".") || strings.HasPrefix(key, field+".") {
			return s
		}
	}
	return ""
}

// scope is one document being read plus the shared problem list.
type scope struct {
	doc  *yamlfile.Document
	errs *problems
}

func (s scope) fail(n *yaml.Node, field, format string, args ...any) {
	s.errs.list = append(s.errs.list, yamlfile.NodeError(s.doc, n, field, format, args...))
}

// decode strictly decodes node into v, recording problems; it reports
// whether decoding was clean.
func (s scope) decode(n *yaml.Node, field string, v any) bool {
	err := yamlfile.DecodeNode(s.doc, n, field, v)
	s.errs.add(err)
	return err == nil
}

func (s scope) file() string {
	if s.doc == nil {
		return ""
	}
	return s.doc.File
}

// entry is one key/value of a mapping, in file order.
type entry struct {
	key, value *yaml.Node
}

// entries lists a mapping's keys in file order with aliases followed and
// merge keys (<<) expanded; explicit keys win over merged ones. Order
// matters: step order in the file is the tie-break of the topological sort.
func entries(n *yaml.Node) []entry {
	return collectEntries(n, map[*yaml.Node]bool{})
}

func collectEntries(n *yaml.Node, visiting map[*yaml.Node]bool) []entry {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode || visiting[n] {
		return nil
	}
	visiting[n] = true
	defer delete(visiting, n)
	var out []entry
	seen := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.ShortTag() == "!!merge") {
			merges = append(merges, v)
			continue
		}
		out = append(out, entry{k, deref(v)})
		seen[k.Value] = true
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m != nil && m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			for _, e := range collectEntries(src, visiting) {
				if !seen[e.key.Value] {
					seen[e.key.Value] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// applySets applies --set overrides in order. An override of a value that
// was written as a string stays a string ("--set inputs.flag=true" over
// flag: 'false' gives the string "true"), because pipeline literals are
// strings to the steps that receive them and a changed type would change
// how the value renders. Bindings (${{...}}) are not values, so replacing
// one takes the override's own type.
func applySets(doc *yamlfile.Document, sets []string, errs *problems) {
	errs.sets = append(errs.sets, sets...)
	for _, expr := range sets {
		key, _, _ := strings.Cut(expr, "=")
		key = strings.TrimSpace(key)
		old, had := doc.Get(key)
		wasString := had && old != nil && old.Kind == yaml.ScalarNode && old.ShortTag() == "!!str" &&
			!strings.Contains(old.Value, "${{")
		if err := doc.Set(expr); err != nil {
			errs.add(err)
			continue
		}
		if wasString {
			if n, ok := doc.Get(key); ok && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
				n.Tag = "!!str"
				n.Style &^= yaml.TaggedStyle
			}
		}
	}
}

// loadDocument reads a YAML file, turning read failures into *yamlfile.Error
// so callers see one error model.
func loadDocument(path string, sets []string, errs *problems) *yamlfile.Document {
	doc, err := yamlfile.Load(path)
	if err != nil {
		var ye *yamlfile.Error
		var yl *yamlfile.ErrorList
		if errors.As(err, &ye) || errors.As(err, &yl) {
			errs.add(err)
		} else {
			errs.add(&yamlfile.Error{File: path, Msg: "cannot read file: " + unwrapPathError(err)})
		}
		return nil
	}
	applySets(doc, sets, errs)
	return doc
}

func unwrapPathError(err error) string {
	var pe interface{ Unwrap() error }
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return err.Error()
}

// Position is where something was written, kept so that problems found
// later (at run time) can still point at the YAML.
type Position struct {
	File   string
	Line   int
	Column int
	Field  string
}

// Errorf builds a *yamlfile.Error at p.
func (p Position) Errorf(format string, args ...any) *yamlfile.Error {
	e := yamlfile.NodeError(nil, nil, p.Field, format, args...)
	e.File, e.Line, e.Column = p.File, p.Line, p.Column
	return e
}

func (s scope) position(n *yaml.Node, field string) Position {
	p := Position{File: s.file(), Field: field}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// localPath makes a local path written at n absolute, or, in a document
// that came over the API, records that it cannot be one: the client
// uploads local content first and refers to it by what it was stored as.
func (s scope) localPath(n *yaml.Node, field, p string) (string, bool) {
	if s.errs.remote {
		s.fail(n, field, "%q is a local path, which a job document cannot hold: upload the content first and "+
			"refer to it as azureml://datastores/<datastore>/paths/<path> (the wharf CLI does this for you), "+
			"or use a registered asset (azureml:<name>:<version>)", p)
		return "", false
	}
	return s.resolvePath(p), true
}

// resolvePath makes a local path from the document absolute against the
// document's folder, as Azure ML does.
func (s scope) resolvePath(p string) string {
	if s.doc == nil {
		abs, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		return abs
	}
	return s.doc.Resolve(p)
}
