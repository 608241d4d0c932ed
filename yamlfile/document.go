// Package yamlfile loads user-written YAML (Azure ML style job, endpoint and
// infrastructure files) keeping every node's position, applies az-style
// --set overrides and decodes strictly into Go structs. Every problem is
// reported as an *Error naming file, line and field, because users edit these
// files by hand and need to know exactly where a mistake is.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Document is a parsed YAML file. Root is always a mapping node.
type Document struct {
	// File is the name the document was loaded from, used in every Error.
	File string
	// Root is the top-level mapping. Callers may inspect it; edits should
	// go through Set so that override positions are tracked.
	Root *yaml.Node

	dir string
	// overrides remembers nodes that came from --set so errors about them
	// can say so instead of pointing at a line that does not exist.
	overrides map[*yaml.Node]string
}

// Load reads and parses the YAML file at path. A read failure is returned
// unchanged (so errors.Is(err, fs.ErrNotExist) works); YAML problems are
// *Error or *ErrorList.
func Load(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// syntaxLine matches the position prefix the yaml library puts in its
// messages; the library has no structured syntax error type.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses data as the content of file. file is used for messages and to
// compute Dir; it need not exist.
func Parse(file string, data []byte) (*Document, error) {
	doc := &Document{File: file, dir: absDir(file)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var top yaml.Node
	if err := dec.Decode(&top); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "file is empty; expected a YAML mapping"}
		}
		return nil, syntaxError(file, err)
	}
	root := &top
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if isNull(root) || root.Kind == yaml.DocumentNode {
		return nil, &Error{File: file, Msg: "file is empty; expected a YAML mapping"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column,
			Msg: "expected a mapping at the top level, got " + kindName(root)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, err)
		}
		// Azure ML reads only one document per file; silently ignoring the
		// rest would hide the user's intent.
		line := next.Line
		if next.Kind == yaml.DocumentNode && len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Error{File: file, Line: line, Msg: "multiple YAML documents in one file are not supported"}
	}
	doc.Root = root
	var list ErrorList
	checkDuplicates(doc, root, "", &list)
	if err := list.errOrNil(); err != nil {
		return nil, err
	}
	return doc, nil
}

// parserProblems are the messages the yaml library's parser (as opposed to
// its scanner) produces. For these the library prints a 0-based line, and
// none at all for the first line, so the number must be shifted by one.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// syntaxError turns a yaml library error into an *Error, recovering the line
// number from the message text (the library has no structured error).
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if parserProblems[msg] {
		line++
	}
	return &Error{File: file, Line: line, Msg: msg}
}

func absDir(file string) string {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// checkDuplicates reports repeated mapping keys, which the yaml library
// accepts when building nodes but which almost always mean a copy-paste
// mistake that would otherwise silently drop a value.
func checkDuplicates(doc *Document, n *yaml.Node, path string, list *ErrorList) {
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				continue
			}
			field := joinKey(path, k.Value)
			if k.Kind == yaml.ScalarNode {
				if first, ok := seen[k.Value]; ok {
					list.Errors = append(list.Errors, &Error{File: doc.File, Line: k.Line, Column: k.Column, Field: field,
						Msg: fmt.Sprintf("duplicate key %q (first defined at line %d)", k.Value, first.Line)})
				} else {
					seen[k.Value] = k
				}
			}
			checkDuplicates(doc, v, field, list)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			checkDuplicates(doc, c, joinIndex(path, i), list)
		}
	}
}

// Dir is the absolute directory of the file. Azure ML resolves relative
// paths inside a YAML file (code:, path:) against this folder, not the
// current directory.
func (d *Document) Dir() string { return d.dir }

// Resolve returns p made absolute against Dir, leaving absolute paths alone.
func (d *Document) Resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// Get looks up a dotted path such as "jobs.train.inputs.alpha" or
// "tags[0]"; a bare number also indexes a sequence. Aliases and merge keys
// (<<) are followed. The empty path is the root.
func (d *Document) Get(path string) (*yaml.Node, bool) {
	segs, err := parsePath(path)
	if err != nil {
		return nil, false
	}
	n := d.Root
	for _, s := range segs {
		n = child(n, s)
		if n == nil {
			return nil, false
		}
	}
	return resolveAlias(n), true
}

// Node returns the node at path or nil, so callers validating after Decode
// can position an error with NodeError.
func (d *Document) Node(path string) *yaml.Node {
	n, _ := d.Get(path)
	return n
}

// String returns the raw text of the scalar at path, or "" when the path is
// missing, null or not a scalar. The raw text is returned so values such as
// 0659 keep their leading zero.
func (d *Document) String(path string) string {
	n, ok := d.Get(path)
	if !ok || n.Kind != yaml.ScalarNode || isNull(n) {
		return ""
	}
	return n.Value
}

// child returns the node reached from n by one path segment, or nil.
func child(n *yaml.Node, s segment) *yaml.Node {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		if s.bracket {
			return nil
		}
		for _, p := range mappingPairs(n) {
			if p.key.Value == s.key {
				return p.value
			}
		}
	case yaml.SequenceNode:
		if s.isIndex && s.index < len(n.Content) {
			return n.Content[s.index]
		}
	}
	return nil
}

// pair is one effective key/value of a mapping after merge keys are applied.
type pair struct{ key, value *yaml.Node }

// mappingPairs lists a mapping's entries with YAML merge keys (<<) expanded;
// keys written explicitly win over merged ones, and earlier merge sources win
// over later ones, as the YAML merge spec requires.
func mappingPairs(n *yaml.Node) []pair {
	return collectPairs(n, map[*yaml.Node][]pair{})
}

// collectPairs memoises per node so that chains of merges over shared
// anchors cost linear, not exponential, time; a nil entry marks a node in
// progress and breaks merge cycles.
func collectPairs(n *yaml.Node, memo map[*yaml.Node][]pair) []pair {
	if done, ok := memo[n]; ok {
		return done
	}
	memo[n] = nil
	var out []pair
	seen := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merges = append(merges, v)
			continue
		}
		out = append(out, pair{k, v})
		seen[k.Value] = true
	}
	var sources []*yaml.Node
	for _, m := range merges {
		m = resolveAlias(m)
		if m.Kind == yaml.SequenceNode {
			sources = append(sources, m.Content...)
		} else {
			sources = append(sources, m)
		}
	}
	for _, src := range sources {
		src = resolveAlias(src)
		if src.Kind != yaml.MappingNode {
			continue
		}
		for _, p := range collectPairs(src, memo) {
			if !seen[p.key.Value] {
				seen[p.key.Value] = true
				out = append(out, p)
			}
		}
	}
	memo[n] = out
	return out
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// resolveAlias follows alias nodes; the parser rejects alias cycles, and
// the depth cap guards against hand-built trees.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName names a node's shape the way users think of it, for messages.
func kindName(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	case yaml.DocumentNode:
		return "document"
	}
	return "alias"
}

func joinKey(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func joinIndex(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}
