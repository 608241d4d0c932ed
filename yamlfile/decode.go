package yamlfile

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// NodeUnmarshaler is implemented by types that decode themselves, e.g. a
// value that may be written either as a string or as a mapping.
//
// Errors returned as *Error or *ErrorList without a File are taken as
// relative to the node: the file and, when unset, the node's position are
// filled in and Field is prefixed with the node's path. A hook can therefore
// decode parts of its node strictly with DecodeNode(nil, node, "", &part).
type NodeUnmarshaler interface {
	UnmarshalYAMLNode(node *yaml.Node) error
}

// maxNodes bounds how many nodes one Decode visits, so a small file that
// abuses aliases ("billion laughs") cannot exhaust memory.
const maxNodes = 1_000_000

// Decode decodes the whole document into v, which must be a non-nil pointer.
// See DecodeNode for the rules.
func Decode(doc *Document, v any) error {
	if doc == nil || doc.Root == nil {
		return errors.New("yamlfile: Decode called with an empty document")
	}
	return DecodeNode(doc, doc.Root, "", v)
}

// DecodeNode strictly decodes node (found at the dotted path field) into v,
// which must be a non-nil pointer. doc may be nil; it supplies the file name
// and --set provenance for errors.
//
// Struct fields are matched by their `yaml:"name"` tag (default: the
// lower-cased Go name). `,inline` (or embedding without a tag name) merges a
// struct's fields into the parent; an `,inline` map collects keys no field
// claims. A field tagged `yaml:"-"` is never decoded and a key of its
// lower-cased name is silently skipped. Any other unknown key is an error
// listing the allowed keys. The top-level key $schema is ignored because
// Azure ML files carry it for editors.
//
// Scalars are converted from their raw text according to the target type,
// so a string field receives "0659" rather than a number; booleans accept
// true/false/yes/no/on/off in any case; integers accept decimal or
// 0x/0o/0b forms and must fit the target; time.Duration accepts "30s" style
// text or a number of seconds. Fields missing from the YAML, and plain
// (non-pointer, non-collection) fields given null, keep their current value,
// so callers may pre-fill defaults.
//
// All problems are collected and returned together as an *ErrorList.
func DecodeNode(doc *Document, node *yaml.Node, field string, v any) error {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("yamlfile: decode target must be a non-nil pointer, got %T", v)
	}
	if node == nil {
		return errors.New("yamlfile: decode called with a nil node")
	}
	d := &decoder{doc: doc, budget: maxNodes}
	if doc != nil {
		d.root = doc.Root
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	d.decode(node, field, rv.Elem())
	return d.errs.errOrNil()
}

type decoder struct {
	doc    *Document
	root   *yaml.Node
	errs   ErrorList
	budget int
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.Errors = append(d.errs.Errors, NodeError(d.doc, n, path, format, args...))
}

var (
	nodeType     = reflect.TypeFor[yaml.Node]()
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
	hookType     = reflect.TypeFor[NodeUnmarshaler]()
	yamlHookType = reflect.TypeFor[yaml.Unmarshaler]()
	textHookType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	d.budget--
	if d.budget == 0 {
		d.fail(n, path, "document is too large or uses too many aliases")
	}
	if d.budget <= 0 {
		return
	}
	n = resolveAlias(n)
	t := v.Type()
	switch t {
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case nodePtrType:
		v.Set(reflect.ValueOf(n))
		return
	}
	if t.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	}
	if d.hooks(n, path, v) {
		return
	}
	if isNull(n) {
		// Like the yaml library: null clears references but leaves plain
		// values alone, so "timeout:" keeps a default the caller set.
		switch t.Kind() {
		case reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if t == durationType {
		d.duration(n, path, v)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		d.sequence(n, path, v)
	case reflect.Array:
		d.array(n, path, v)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.fail(n, path, "cannot decode into Go interface type %s", t)
			return
		}
		if g, ok := d.generic(n, path); ok && g != nil {
			v.Set(reflect.ValueOf(g))
		} else {
			v.SetZero()
		}
	default:
		d.scalar(n, path, v)
	}
}

// hooks runs a custom unmarshaler if the target has one and reports whether
// it did.
func (d *decoder) hooks(n *yaml.Node, path string, v reflect.Value) bool {
	if !v.CanAddr() {
		return false
	}
	pt := reflect.PointerTo(v.Type())
	switch {
	case pt.Implements(hookType):
		if err := v.Addr().Interface().(NodeUnmarshaler).UnmarshalYAMLNode(n); err != nil {
			d.adopt(n, path, err)
		}
		return true
	case pt.Implements(yamlHookType):
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.adopt(n, path, err)
		}
		return true
	case pt.Implements(textHookType):
		if isNull(n) {
			v.SetZero()
			return true
		}
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a scalar value, got %s", kindName(n))
			return true
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return true
	}
	return false
}

// adopt records an error returned by a hook, completing relative errors
// with this node's file, position and path.
func (d *decoder) adopt(n *yaml.Node, path string, err error) {
	var list *ErrorList
	var one *Error
	var items []*Error
	switch {
	case errors.As(err, &list):
		items = list.Errors
	case errors.As(err, &one):
		items = []*Error{one}
	default:
		d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	for _, e := range items {
		c := *e
		if c.File == "" {
			base := NodeError(d.doc, n, path, "%s", c.Msg)
			c.File = base.File
			if c.Line == 0 {
				c.Line, c.Column, c.Msg = base.Line, base.Column, base.Msg
			}
			switch {
			case c.Field == "":
				c.Field = path
			case path != "" && strings.HasPrefix(c.Field, "["):
				c.Field = path + c.Field
			case path != "":
				c.Field = path + "." + c.Field
			}
		}
		d.errs.Errors = append(d.errs.Errors, &c)
	}
}

// skipKey reports whether a key is editor metadata that is never decoded.
func (d *decoder) skipKey(mapping *yaml.Node, key string) bool {
	return key == "$schema" && d.root != nil && mapping == d.root
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	info := structInfoOf(v.Type())
	if info.err != nil {
		d.fail(n, path, "%v", info.err)
		return
	}
	for _, p := range mappingPairs(n) {
		if p.key.Kind != yaml.ScalarNode {
			d.fail(p.key, path, "mapping keys must be plain names, got %s", kindName(p.key))
			continue
		}
		key := p.key.Value
		field := joinKey(path, key)
		if d.skipKey(n, key) {
			continue
		}
		if i, ok := info.byName[key]; ok {
			d.decode(p.value, field, fieldByIndex(v, info.fields[i].index))
			continue
		}
		if info.ignored[key] {
			continue
		}
		if info.inlineMap != nil {
			m := fieldByIndex(v, info.inlineMap)
			if m.IsNil() {
				m.Set(reflect.MakeMap(m.Type()))
			}
			d.mapEntry(p, path, m)
			continue
		}
		d.fail(p.key, field, "%s", unknownField(key, info))
	}
}

func unknownField(key string, info *structInfo) string {
	names := make([]string, len(info.fields))
	for i, f := range info.fields {
		names[i] = f.name
	}
	msg := fmt.Sprintf("unknown field %q", key)
	if len(names) == 0 {
		return msg + " (no fields are allowed here)"
	}
	msg += " (allowed: " + strings.Join(names, ", ") + ")"
	if s := suggest(key, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg
}

// suggest returns the allowed name closest to a misspelt key, or "" when
// none is close enough to be a likely typo.
func suggest(key string, names []string) string {
	best, bestDist := "", 0
	for _, name := range names {
		dist := editDistance(strings.ToLower(key), strings.ToLower(name))
		if dist <= 2 && dist*2 < len(name) && (best == "" || dist < bestDist) {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// fieldByIndex is reflect.Value.FieldByIndex that allocates nil embedded
// pointers on the way, so inline *T fields can be filled.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range mappingPairs(n) {
		if p.key.Kind == yaml.ScalarNode && d.skipKey(n, p.key.Value) {
			continue
		}
		d.mapEntry(p, path, v)
	}
}

func (d *decoder) mapEntry(p pair, path string, m reflect.Value) {
	if p.key.Kind != yaml.ScalarNode {
		d.fail(p.key, path, "mapping keys must be plain names, got %s", kindName(p.key))
		return
	}
	t := m.Type()
	field := joinKey(path, p.key.Value)
	key := reflect.New(t.Key()).Elem()
	if t.Key().Kind() == reflect.String {
		key.SetString(p.key.Value)
	} else {
		before := len(d.errs.Errors)
		d.decode(p.key, field, key)
		if len(d.errs.Errors) > before {
			return
		}
	}
	val := reflect.New(t.Elem()).Elem()
	d.decode(p.value, field, val)
	m.SetMapIndex(key, val)
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, joinIndex(path, i), s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) array(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n))
		return
	}
	if len(n.Content) != v.Len() {
		d.fail(n, path, "expected a list of %d items, got %d", v.Len(), len(n.Content))
		return
	}
	for i, c := range n.Content {
		d.decode(c, joinIndex(path, i), v.Index(i))
	}
}

// generic builds map[string]any / []any / scalar values for free-form
// sections, typing scalars the way YAML does.
func (d *decoder) generic(n *yaml.Node, path string) (any, bool) {
	d.budget--
	if d.budget == 0 {
		d.fail(n, path, "document is too large or uses too many aliases")
	}
	if d.budget <= 0 {
		return nil, false
	}
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for _, p := range mappingPairs(n) {
			if p.key.Kind != yaml.ScalarNode {
				d.fail(p.key, path, "mapping keys must be plain names, got %s", kindName(p.key))
				continue
			}
			if d.skipKey(n, p.key.Value) {
				continue
			}
			if val, ok := d.generic(p.value, joinKey(path, p.key.Value)); ok {
				m[p.key.Value] = val
			}
		}
		return m, true
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			val, _ := d.generic(c, joinIndex(path, i))
			s = append(s, val)
		}
		return s, true
	case yaml.ScalarNode:
		var out any
		if err := n.Decode(&out); err != nil {
			d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, false
		}
		return out, true
	}
	d.fail(n, path, "unsupported YAML node")
	return nil, false
}

// typeName describes what a Go type expects, in YAML terms, for messages.
func typeName(t reflect.Type) string {
	if t == durationType {
		return `duration (e.g. "30s") or number of seconds`
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", typeName(t), kindName(n))
		return
	}
	text := n.Value
	mismatch := func() { d.fail(n, path, "expected %s, got %q", typeName(t), text) }
	switch t.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, ok := ParseBool(text)
		if !ok {
			mismatch()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(text, intBase(text), t.Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				lo, hi := int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1
				d.fail(n, path, "value %s is out of range for %s (%d to %d)", text, t, lo, hi)
				return
			}
			mismatch()
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, err := strconv.ParseUint(strings.TrimPrefix(text, "+"), intBase(text), t.Bits())
		if err != nil {
			_, serr := strconv.ParseInt(text, intBase(text), 64)
			negative := strings.HasPrefix(text, "-") && (serr == nil || errors.Is(serr, strconv.ErrRange))
			if negative || errors.Is(err, strconv.ErrRange) {
				d.fail(n, path, "value %s is out of range for %s (0 to %d)", text, t, uint64(math.MaxUint64)>>(64-t.Bits()))
				return
			}
			mismatch()
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := parseFloat(text, t.Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.fail(n, path, "value %s is out of range for %s", text, t)
				return
			}
			mismatch()
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "cannot decode into Go type %s", t)
	}
}

// ParseBool accepts the YAML 1.1 and 1.2 boolean spellings in any case
// (true/false, yes/no, on/off), since hand-written files use all of them.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

// intBase reads decimal unless the text carries an explicit 0x/0o/0b
// prefix, so "010" is ten (YAML 1.2) rather than Go's octal eight.
func intBase(s string) int {
	body := strings.TrimLeft(s, "+-")
	if len(body) > 1 && body[0] == '0' && strings.ContainsRune("xXoObB", rune(body[1])) {
		return 0
	}
	return 10
}

func parseFloat(s string, bits int) (float64, error) {
	switch strings.ToLower(s) {
	case ".inf", "+.inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, bits)
}

func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", typeName(durationType), kindName(n))
		return
	}
	text := strings.TrimSpace(n.Value)
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		if i > math.MaxInt64/int64(time.Second) || i < math.MinInt64/int64(time.Second) {
			d.fail(n, path, "duration %s seconds is out of range", text)
			return
		}
		v.SetInt(i * int64(time.Second))
		return
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		ns := f * float64(time.Second)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			d.fail(n, path, "duration %s seconds is out of range", text)
			return
		}
		v.SetInt(int64(ns))
		return
	}
	dur, err := time.ParseDuration(text)
	if err != nil {
		d.fail(n, path, "expected %s, got %q", typeName(durationType), n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// structInfo is the decoding view of a struct type, computed once per type.
type structInfo struct {
	fields    []fieldInfo    // in declaration order; listed in "allowed" messages
	byName    map[string]int // YAML key -> index into fields
	ignored   map[string]bool
	inlineMap []int // path to an ",inline" map collecting unclaimed keys
	err       error // the struct cannot be decoded (bad tags)
}

type fieldInfo struct {
	name  string
	index []int
}

var structCache sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if c, ok := structCache.Load(t); ok {
		return c.(*structInfo)
	}
	info := buildStructInfo(t, map[reflect.Type]bool{})
	structCache.Store(t, info)
	return info
}

func buildStructInfo(t reflect.Type, visiting map[reflect.Type]bool) *structInfo {
	info := &structInfo{byName: map[string]int{}, ignored: map[string]bool{}}
	if visiting[t] {
		info.err = fmt.Errorf("cannot decode into Go type %s: it inlines itself", t)
		return info
	}
	visiting[t] = true
	defer delete(visiting, t)

	type candidate struct {
		fieldInfo
		depth int
	}
	var cands []candidate
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			info.ignored[strings.ToLower(f.Name)] = true
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := false
		for _, o := range strings.Split(opts, ",") {
			inline = inline || o == "inline"
		}
		ft := f.Type
		isStruct := ft.Kind() == reflect.Struct || ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct
		if f.Anonymous && name == "" && isStruct && ft != nodeType && ft != nodePtrType {
			inline = true
		}
		if !inline && !f.IsExported() {
			continue
		}
		if inline && !f.IsExported() && ft.Kind() == reflect.Pointer {
			// reflect cannot allocate through an unexported pointer field.
			continue
		}
		if inline {
			switch {
			case isStruct:
				st := ft
				if st.Kind() == reflect.Pointer {
					st = st.Elem()
				}
				sub := buildStructInfo(st, visiting)
				if sub.err != nil {
					info.err = sub.err
					return info
				}
				for _, sf := range sub.fields {
					cands = append(cands, candidate{fieldInfo{sf.name, append([]int{i}, sf.index...)}, len(sf.index)})
				}
				for k := range sub.ignored {
					info.ignored[k] = true
				}
				if sub.inlineMap != nil && info.inlineMap == nil {
					info.inlineMap = append([]int{i}, sub.inlineMap...)
				}
			case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String && f.IsExported():
				if info.inlineMap != nil {
					info.err = fmt.Errorf("Go type %s has more than one inline map", t)
					return info
				}
				info.inlineMap = []int{i}
			default:
				info.err = fmt.Errorf("Go type %s: field %s: inline needs a struct or a map with string keys", t, f.Name)
				return info
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		cands = append(cands, candidate{fieldInfo{name, []int{i}}, 0})
	}
	// An outer field shadows an inlined one of the same name, as in Go;
	// at equal depth the first declared wins.
	best := map[string]int{}
	for i, c := range cands {
		if j, ok := best[c.name]; !ok || c.depth < cands[j].depth {
			best[c.name] = i
		}
	}
	keep := make([]int, 0, len(best))
	for _, i := range best {
		keep = append(keep, i)
	}
	sort.Ints(keep)
	for _, i := range keep {
		info.byName[cands[i].name] = len(info.fields)
		info.fields = append(info.fields, cands[i].fieldInfo)
	}
	return info
}
