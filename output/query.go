package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strings"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/functions"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
)

// Query evaluates the JMESPath expression query against v, exactly as Write
// does before rendering, and returns the result as plain decoded-JSON values
// (nil, bool, float64, string, []any, map[string]any). It is meant for callers
// that test or reuse the value; plain maps lose key order, so to print a
// queried result pass the original value and the query to Write instead.
// An empty query returns v converted to that plain form.
func Query(v any, query string) (any, error) {
	doc, err := toOrdered(v)
	if err != nil {
		return nil, err
	}
	o := newOrigin()
	plain := o.toPlain(doc)
	if query == "" {
		return plain, nil
	}
	q, err := compileQuery(query)
	if err != nil {
		return nil, err
	}
	return q.search(plain)
}

// applyQuery runs query over an ordered document and returns an ordered
// result, recovering key order the JMESPath library throws away.
func applyQuery(doc any, query string) (any, error) {
	q, err := compileQuery(query)
	if err != nil {
		return nil, err
	}
	o := newOrigin()
	plain := o.toPlain(doc)
	res, err := q.search(plain)
	if err != nil {
		return nil, err
	}
	o.hashKeys = q.hashKeys
	out, err := o.fromPlain(res)
	// Source maps are recognised by address; keeping them alive until the
	// result is rebuilt guarantees no new map can reuse one.
	runtime.KeepAlive(plain)
	return out, err
}

// compiledQuery is a parsed expression plus the key order of every
// multiselect hash in it, since objects built by `{a: x, b: y}` should list
// a then b as written, like az does.
type compiledQuery struct {
	expr     string
	jp       jmespath.JMESPath
	hashKeys map[string][]string // key-set signature -> keys as written
}

func compileQuery(query string) (*compiledQuery, error) {
	ast, err := parsing.NewParser().Parse(query)
	if err != nil {
		return nil, syntaxError(query, err)
	}
	jp, err := jmespath.Compile(query)
	if err != nil {
		return nil, syntaxError(query, err)
	}
	if name, ok := unknownFunction(ast); ok {
		// The library only notices this when the call is evaluated, which a
		// projection over an empty list never does; report it up front.
		return nil, fmt.Errorf("invalid jmespath query: unknown function %s() (in %q)", name, query)
	}
	q := &compiledQuery{expr: query, jp: jp, hashKeys: map[string][]string{}}
	q.collectHashKeys(ast)
	return q, nil
}

var knownFunctions = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range functions.GetDefaultFunctions() {
		m[f.Name] = true
	}
	return m
}()

// unknownFunction returns the first function called in n that the library
// does not provide.
func unknownFunction(n parsing.ASTNode) (string, bool) {
	if n.NodeType == parsing.ASTFunctionExpression {
		if name, ok := n.Value.(string); ok && !knownFunctions[name] {
			return name, true
		}
	}
	for _, c := range n.Children {
		if name, ok := unknownFunction(c); ok {
			return name, true
		}
	}
	return "", false
}

// syntaxError wraps a parse failure so the message starts with the prefix
// scripts and users grep for and points at the offending position.
func syntaxError(query string, err error) error {
	var se jmespath.SyntaxError
	if errors.As(err, &se) {
		msg := strings.TrimPrefix(se.Error(), "SyntaxError: ")
		return fmt.Errorf("invalid jmespath query: %s (at position %d in %q)", msg, se.Offset, query)
	}
	return fmt.Errorf("invalid jmespath query: %v (in %q)", err, query)
}

func (q *compiledQuery) collectHashKeys(n parsing.ASTNode) {
	if n.NodeType == parsing.ASTMultiSelectHash {
		var keys []string
		seen := map[string]bool{}
		for _, c := range n.Children {
			k, ok := c.Value.(string)
			if c.NodeType != parsing.ASTKeyValPair || !ok || seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, k)
		}
		sig := keySignature(keys)
		if _, dup := q.hashKeys[sig]; !dup {
			q.hashKeys[sig] = keys
		}
	}
	for _, c := range n.Children {
		q.collectHashKeys(c)
	}
}

func (q *compiledQuery) search(plain any) (any, error) {
	res, err := q.jp.Search(plain)
	if err != nil {
		return nil, fmt.Errorf("jmespath query %q failed: %w", q.expr, err)
	}
	return res, nil
}

// origin remembers what the source document looked like while it is handed
// to the JMESPath library as plain maps, so the result can be put back in
// order: objects passed through unchanged are found by identity, rebuilt ones
// by their key set.
type origin struct {
	byIdentity map[uintptr]*object
	byKeySet   map[string][]string
	hashKeys   map[string][]string
	// numText maps a float64 back to the number text it was decoded from when
	// that text differs from the float's own rendering (integers beyond 2^53);
	// "" marks floats that several different texts collapsed into.
	numText map[float64]string
}

func newOrigin() *origin {
	return &origin{
		byIdentity: map[uintptr]*object{},
		byKeySet:   map[string][]string{},
		numText:    map[float64]string{},
	}
}

func (o *origin) toPlain(v any) any {
	switch t := v.(type) {
	case *object:
		m := make(map[string]any, len(t.members))
		keys := make([]string, 0, len(t.members))
		for _, mem := range t.members {
			m[mem.key] = o.toPlain(mem.val)
			keys = append(keys, mem.key)
		}
		o.byIdentity[reflect.ValueOf(m).Pointer()] = t
		sig := keySignature(keys)
		if _, ok := o.byKeySet[sig]; !ok {
			o.byKeySet[sig] = keys
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = o.toPlain(e)
		}
		return out
	case json.Number:
		// The library only does arithmetic and comparisons on float64.
		f, _ := t.Float64()
		text := string(t)
		if text != formatFloat(f) {
			if prev, ok := o.numText[f]; ok && prev != text {
				o.numText[f] = ""
			} else {
				o.numText[f] = text
			}
		}
		return f
	default:
		return v
	}
}

func (o *origin) fromPlain(v any) (any, error) {
	switch t := v.(type) {
	case nil, bool, string:
		return t, nil
	case float64:
		if text := o.numText[t]; text != "" {
			return json.Number(text), nil
		}
		return json.Number(formatFloat(t)), nil
	case map[string]any:
		keys, hash := o.orderKeys(t)
		obj := &object{members: make([]member, 0, len(t)), hash: hash}
		for _, k := range keys {
			val, err := o.fromPlain(t[k])
			if err != nil {
				return nil, err
			}
			obj.members = append(obj.members, member{k, val})
		}
		return obj, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			val, err := o.fromPlain(e)
			if err != nil {
				return nil, err
			}
			out[i] = val
		}
		return out, nil
	default:
		// Not produced by the library today; a JSON round trip keeps this
		// correct if a future version returns other Go types.
		return toOrdered(t)
	}
}

// orderKeys picks the key order for a result object: the source object it
// is, else a multiselect hash from the expression with the same keys, else a
// source object with the same keys, else alphabetical. It also reports
// whether the object is taken to be one a multiselect hash built.
func (o *origin) orderKeys(m map[string]any) ([]string, bool) {
	var preferred []string
	hash := false
	if src, ok := o.byIdentity[reflect.ValueOf(m).Pointer()]; ok {
		for _, mem := range src.members {
			preferred = append(preferred, mem.key)
		}
	} else {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sig := keySignature(keys)
		if hk, ok := o.hashKeys[sig]; ok {
			preferred, hash = hk, true
		} else {
			preferred = o.byKeySet[sig]
		}
	}
	out := make([]string, 0, len(m))
	used := make(map[string]bool, len(m))
	for _, k := range preferred {
		if _, ok := m[k]; ok && !used[k] {
			used[k] = true
			out = append(out, k)
		}
	}
	var rest []string
	for k := range m {
		if !used[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...), hash
}

// keySignature identifies a set of keys regardless of their order.
func keySignature(keys []string) string {
	s := append([]string(nil), keys...)
	sort.Strings(s)
	return strings.Join(s, "\x00")
}

// formatFloat renders a float the way encoding/json does; NaN and the
// infinities, which arithmetic in a query can produce, are spelled as
// Python's json module spells them because that is what az would print.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	b, _ := json.Marshal(f)
	return string(b)
}
