package yamlfile

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// segment is one step of a dotted path. A bare number ("tags.0") is kept as
// a key too, because it may name a mapping key as well as a list index.
type segment struct {
	key     string
	index   int
	isIndex bool // key is a non-negative integer or written as [n]
	bracket bool // written as [n]: only ever a list index
}

// parsePath splits "a.b[0].c" or "a.b.0.c" into segments.
func parsePath(p string) ([]segment, error) {
	if p == "" {
		return nil, nil
	}
	var segs []segment
	i := 0
	for i <= len(p) {
		j := i
		for j < len(p) && p[j] != '.' && p[j] != '[' {
			j++
		}
		key := p[i:j]
		if key == "" && !(j < len(p) && p[j] == '[' && i == 0) {
			return nil, fmt.Errorf("empty segment in path %q", p)
		}
		if key != "" {
			s := segment{key: key}
			if n, err := strconv.Atoi(key); err == nil && n >= 0 && key[0] != '+' {
				s.index, s.isIndex = n, true
			}
			segs = append(segs, s)
		}
		for j < len(p) && p[j] == '[' {
			end := strings.IndexByte(p[j:], ']')
			if end < 0 {
				return nil, fmt.Errorf("missing ] in path %q", p)
			}
			num := p[j+1 : j+end]
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || num == "" || num[0] == '+' {
				return nil, fmt.Errorf("invalid list index [%s] in path %q", num, p)
			}
			segs = append(segs, segment{key: num, index: n, isIndex: true, bracket: true})
			j += end + 1
		}
		if j == len(p) {
			break
		}
		if p[j] != '.' {
			return nil, fmt.Errorf("unexpected %q in path %q", p[j], p)
		}
		i = j + 1
		if i == len(p) {
			return nil, fmt.Errorf("empty segment in path %q", p)
		}
	}
	return segs, nil
}

// Set applies an az-style override "key.path=value", as given to
// `az ml ... --set`. Missing intermediate mappings are created ("a[0]"
// creates a list). The value is read as a YAML scalar or flow collection so
// true, 10 and [1,2] get their YAML types, while the node keeps the text as
// written so string fields still see "0659". Values that are not valid YAML
// on their own (e.g. "a: b", "#x") are taken as plain strings.
func (d *Document) Set(expr string) error {
	rawKey, value, ok := strings.Cut(expr, "=")
	key := strings.TrimSpace(rawKey)
	bad := func(format string, args ...any) error {
		return &Error{File: d.File, Field: key, Msg: "--set " + strconv.Quote(expr) + ": " + fmt.Sprintf(format, args...)}
	}
	if !ok {
		return bad("expected key.path=value")
	}
	if key == "" {
		return bad("empty key")
	}
	segs, err := parsePath(key)
	if err != nil {
		return bad("%v", err)
	}
	val, err := setValue(value)
	if err != nil {
		return bad("%v", err)
	}
	if d.overrides == nil {
		d.overrides = map[*yaml.Node]string{}
	}
	markOverride(d.overrides, val, expr)

	cur := d.Root
	walked := ""
	for i, s := range segs {
		last := i == len(segs)-1
		var slot **yaml.Node
		switch cur.Kind {
		case yaml.MappingNode:
			if s.bracket {
				return bad("%s is a mapping, not a list", describe(walked))
			}
			for j := 0; j+1 < len(cur.Content); j += 2 {
				if k := cur.Content[j]; !isMergeKey(k) && k.Value == s.key {
					slot = &cur.Content[j+1]
					break
				}
			}
			if slot == nil {
				k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.key}
				cur.Content = append(cur.Content, k, nil)
				slot = &cur.Content[len(cur.Content)-1]
			}
			walked = joinKey(walked, s.key)
		case yaml.SequenceNode:
			if !s.isIndex {
				return bad("%s is a list; use a numeric index instead of %q", describe(walked), s.key)
			}
			switch {
			case s.index < len(cur.Content):
				slot = &cur.Content[s.index]
			case s.index == len(cur.Content):
				cur.Content = append(cur.Content, nil)
				slot = &cur.Content[s.index]
			default:
				return bad("index %d is out of range: %s has %d items", s.index, describe(walked), len(cur.Content))
			}
			walked = joinIndex(walked, s.index)
		default:
			return bad("%s is %s, not a mapping or list", describe(walked), kindName(cur))
		}
		if last {
			*slot = val
			break
		}
		next := *slot
		switch {
		case next == nil || isNull(next):
			next = newContainer(segs[i+1])
			*slot = next
		case next.Kind == yaml.AliasNode:
			// Editing through an alias would silently change every other
			// place that shares the anchor.
			return bad("%s is an alias (*%s); cannot set inside it", walked, next.Value)
		}
		cur = next
	}
	return nil
}

func describe(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func newContainer(next segment) *yaml.Node {
	if next.bracket {
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
}

// setValue turns the text after "=" into a node.
func setValue(text string) (*yaml.Node, error) {
	plain := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text}
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return plain, nil
	}
	var doc yaml.Node
	err := yaml.Unmarshal([]byte(text), &doc)
	flow := trimmed[0] == '[' || trimmed[0] == '{'
	if err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		if flow {
			if err == nil {
				err = fmt.Errorf("not a single YAML value")
			}
			return nil, fmt.Errorf("invalid value: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return plain, nil
	}
	n := doc.Content[0]
	if flow && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		return n, nil
	}
	if n.Kind != yaml.ScalarNode {
		return plain, nil
	}
	// A plain scalar whose text differs from the input lost something to
	// YAML syntax (a trailing "# comment", say); keep the user's text.
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.TaggedStyle) == 0 && n.Value != trimmed {
		return plain, nil
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || n.Anchor != "" {
		return plain, nil
	}
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	return n, nil
}

// markOverride records n and its descendants as coming from expr; their
// line numbers refer to the expression, not the file, so they are cleared.
func markOverride(m map[*yaml.Node]string, n *yaml.Node, expr string) {
	m[n] = expr
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		markOverride(m, c, expr)
	}
}
