package output

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// writeJSON prints v like az's json.dumps(indent=2, sort_keys=True,
// ensure_ascii=False): two-space indent and every object's keys sorted,
// multiselect-hash objects included, since sort_keys sorts OrderedDicts too.
func writeJSON(b *bytes.Buffer, v any, depth int) {
	switch t := v.(type) {
	case *object:
		if len(t.members) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		members := t.sorted()
		for i, m := range members {
			writeIndent(b, depth+1)
			writeJSONString(b, m.key)
			b.WriteString(": ")
			writeJSON(b, m.val, depth+1)
			if i < len(members)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		writeIndent(b, depth)
		b.WriteByte('}')
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range t {
			writeIndent(b, depth+1)
			writeJSON(b, e, depth+1)
			if i < len(t)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		writeIndent(b, depth)
		b.WriteByte(']')
	case string:
		writeJSONString(b, t)
	case json.Number:
		switch s := string(t); s {
		case "NaN", "Infinity", "-Infinity":
			b.WriteString(s) // Python's json module spells them so
		default:
			b.WriteString(pyNumber(s))
		}
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	default:
		b.WriteString("null")
	}
}

func writeIndent(b *bytes.Buffer, depth int) {
	for range depth {
		b.WriteString("  ")
	}
}

// writeJSONString quotes s as Python's json module does with
// ensure_ascii=False: only the quote, the backslash and control characters
// are escaped, so <, >, &, non-ASCII text and U+2028 print as they are.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// writeYAML prints block-style YAML with sequences flush under their key,
// matching the yaml.safe_dump(default_flow_style=False) output az produces.
func writeYAML(b *bytes.Buffer, v any) error {
	start := b.Len()
	enc := yaml.NewEncoder(b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(yamlNode(v)); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	// PyYAML ends a document whose root is a plain (unquoted) scalar with
	// the "..." end marker.
	if isScalar(v) && b.Len() > start && !strings.ContainsRune(`'"|>`, rune(b.Bytes()[start])) {
		b.WriteString("...\n")
	}
	return nil
}

// yamlNode builds the node tree by hand to control key order: safe_dump
// sorts every mapping's keys (its sort_keys defaults to true, and az hands
// it multiselect-hash results as plain dicts).
func yamlNode(v any) *yaml.Node {
	switch t := v.(type) {
	case *object:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, m := range t.sorted() {
			n.Content = append(n.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.key},
				yamlNode(m.val))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range t {
			n.Content = append(n.Content, yamlNode(e))
		}
		return n
	case string:
		// The !!str tag makes the encoder quote strings such as "true" or
		// "3" that would otherwise read back as another type.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}
	case json.Number:
		return yamlNumber(string(t))
	case bool:
		s := "false"
		if t {
			s = "true"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: s}
	default:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
}

// yamlNumber spells a number as PyYAML's represent_int/represent_float do:
// ints as str(), floats as repr() lowercased with ".0" put before a bare
// exponent (1e-07 becomes 1.0e-07) so the text still reads as a float.
func yamlNumber(text string) *yaml.Node {
	s := pyNumber(text)
	switch {
	case s == "nan":
		s = ".nan"
	case s == "inf":
		s = ".inf"
	case s == "-inf":
		s = "-.inf"
	case !strings.ContainsAny(text, ".eEnN"):
		// No tag: with !!int the encoder would tag an int beyond 64 bits
		// explicitly, which PyYAML never does.
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	case !strings.Contains(s, ".") && strings.Contains(s, "e"):
		s = strings.Replace(s, "e", ".0e", 1)
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
}

// writeTSV mirrors knack's _TsvOutput: one line per element of a list
// result (one line for anything else), no header, no quoting, so
// `x=$(wharf ... --query name -o tsv)` captures the bare value.
func writeTSV(b *bytes.Buffer, v any) {
	rows, ok := v.([]any)
	if !ok {
		rows = []any{v}
	}
	for _, row := range rows {
		switch t := row.(type) {
		case *object:
			// _dump_row walks an OrderedDict (a multiselect hash) in its own
			// order and sorts the keys of every other dict.
			members := t.members
			if !t.hash {
				members = t.sorted()
			}
			for i, m := range members {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(m.val))
			}
		case []any:
			for i, e := range t {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(e))
			}
		case bool:
			// knack's _TsvOutput._dump_row writes str(data).lower() for a
			// row that is a bare boolean; booleans inside a row stay True
			// and False.
			if t {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		default:
			b.WriteString(tsvField(t))
		}
		b.WriteByte('\n')
	}
}

// tsvField is knack's _TsvOutput._dump_obj: a nested list prints its length
// and a nested object an empty field, so columns stay aligned whatever the
// nested value holds; anything else prints as Python's str(), so null is
// None and booleans are True and False.
func tsvField(v any) string {
	switch t := v.(type) {
	case []any:
		return strconv.Itoa(len(t))
	case *object:
		return ""
	}
	return pyStr(v)
}

// tableSkipKeys are knack's _TableOutput.SKIP_KEYS. The match is on the key
// as it stands, before capitalisation, whether or not a query is active: a
// query keeps such a column only by renaming it, as in {ID: id}.
var tableSkipKeys = map[string]bool{"id": true, "type": true, "etag": true}

// writeTable mirrors az's table output: knack's _TableOutput turns each
// element of the result (the result itself if it is not a list) into a row,
// and tabulate's "simple" format lays the rows out. sortKeys is true when no
// query was given, because knack sorts object keys only then.
//
// An object row keeps its scalar, non-null members, skipping tableSkipKeys,
// under headers whose first character is upper-cased; a list row fills
// Column1..N; anything else fills a Result column. The columns are the union
// of every row's headers in order of first appearance, and a row without one
// leaves the cell blank. A result with no columns prints an empty line, as
// az does.
func writeTable(b *bytes.Buffer, v any, sortKeys bool) {
	rows, ok := v.([]any)
	if !ok {
		rows = []any{v}
	}
	var headers []string
	seen := map[string]bool{}
	cells := make([]map[string]any, len(rows))
	for i, row := range rows {
		cell := map[string]any{}
		put := func(h string, val any) {
			if !seen[h] {
				seen[h] = true
				headers = append(headers, h)
			}
			cell[h] = val // a later key with the same header wins the cell
		}
		switch t := row.(type) {
		case *object:
			members := t.members
			if sortKeys {
				members = t.sorted()
			}
			for _, m := range members {
				if tableSkipKeys[m.key] || m.val == nil || !isScalar(m.val) {
					continue
				}
				put(capitalizeFirst(m.key), m.val)
			}
		case []any:
			for j, e := range t {
				put("Column"+strconv.Itoa(j+1), e)
			}
		default:
			put("Result", t)
		}
		cells[i] = cell
	}
	if len(headers) == 0 {
		b.WriteByte('\n')
		return
	}

	// tabulate strips each cell (not the headers) and sizes a column to
	// its widest line, but at least two wider than its header. Once any
	// header or cell holds a line break it lays out every row line by line,
	// and a row whose cells are all empty then takes no lines at all.
	multiline := false
	for _, h := range headers {
		multiline = multiline || strings.ContainsAny(h, "\r\n")
	}
	text := make([][][]string, len(rows))
	widths := make([]int, len(headers))
	headerLines := make([][]string, len(headers))
	for j, h := range headers {
		headerLines[j] = splitLines(h)
		widths[j] = maxWidth(headerLines[j]) + 2
	}
	for i, cell := range cells {
		text[i] = make([][]string, len(headers))
		for j, h := range headers {
			val, ok := cell[h]
			if !ok || val == nil {
				continue
			}
			raw := pyStr(val)
			multiline = multiline || strings.ContainsAny(raw, "\r\n")
			lines := splitLines(strings.TrimFunc(raw, isPySpace))
			text[i][j] = lines
			widths[j] = max(widths[j], maxWidth(lines))
		}
	}

	rules := make([][]string, len(headers))
	for j, w := range widths {
		rules[j] = []string{strings.Repeat("-", w)}
	}
	writeTableRow(b, headerLines, widths, 1)
	writeTableRow(b, rules, widths, 1)
	minHeight := 1
	if multiline {
		minHeight = 0
	}
	for _, row := range text {
		writeTableRow(b, row, widths, minHeight)
	}
}

// capitalizeFirst is _TableOutput._capitalize_first_char: upper-case the
// first character and leave the rest alone.
func capitalizeFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// splitLines splits a cell into the lines tabulate prints it on; like
// Python's str.splitlines, a trailing line break adds no empty line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func maxWidth(lines []string) int {
	w := 0
	for _, l := range lines {
		w = max(w, utf8.RuneCountInString(l))
	}
	return w
}

// writeTableRow prints one row, as many lines tall as its tallest cell but
// at least minHeight: cells left-aligned to their column width, two spaces
// between columns, trailing whitespace dropped as tabulate does.
func writeTableRow(b *bytes.Buffer, row [][]string, widths []int, minHeight int) {
	height := minHeight
	for _, lines := range row {
		height = max(height, len(lines))
	}
	for k := range height {
		var sb strings.Builder
		for j, lines := range row {
			if j > 0 {
				sb.WriteString("  ")
			}
			line := ""
			if k < len(lines) {
				line = lines[k]
			}
			sb.WriteString(line)
			sb.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(line)))
		}
		b.WriteString(strings.TrimRightFunc(sb.String(), isPySpace))
		b.WriteByte('\n')
	}
}
