package mlflowsearch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// errNotIdentifier tells the caller the clause does not even start with an
// identifier, so it reports the whole clause rather than a key problem.
var errNotIdentifier = errors.New("not an identifier")

// Bounds on a filter. The stores turn each clause into a SQL condition
// nested in the one before, most with a join or subquery of their own:
// SQLite refuses expressions more than 1000 levels deep, and PostgreSQL
// takes seconds to plan a hundred such clauses, so an unbounded filter is
// a server error or a server's time for whoever sends one. A filter
// written by hand or by the mlflow client has a handful of clauses.
const (
	// MaxFilterClauses is the most clauses a filter may join with AND.
	MaxFilterClauses = 25
	// MaxFilterLength is the longest filter accepted, in bytes: room for
	// an IN list of over a thousand run ids, while the values of its IN
	// lists (three bytes each at the least) stay well below the bound
	// parameters a SQL statement may hold.
	MaxFilterLength = 64 << 10
)

// ParseFilter parses an MLflow search filter for entity e into its AND-ed
// comparisons. An empty (or all-blank) filter matches everything and yields
// nil. Any invalid input, a filter over MaxFilterLength or MaxFilterClauses
// included, yields an *Error; ParseFilter never panics.
func ParseFilter(e Entity, filter string) ([]Comparison, error) {
	spec, err := specFor(e)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	if len(filter) > MaxFilterLength {
		return nil, errorf("Invalid value for parameter 'filter': %d bytes long, longer than the %d allowed", len(filter), MaxFilterLength)
	}
	toks, unterminated := lex(filter)
	if unterminated >= 0 {
		return nil, errorf("Invalid filter string '%s': unterminated quoted string starting at position %d",
			filter, unterminated)
	}

	// Split on top-level AND; parentheses only occur around IN lists, but
	// tracking depth keeps a stray AND inside one from splitting the list.
	var clauses [][]token
	var cur []token
	depth := 0
	for _, t := range toks {
		if t.isKeyword("OR") {
			return nil, errorf("Invalid clause(s) in filter string: 'OR'. OR is not supported; join clauses with AND")
		}
		switch t.kind {
		case tLParen:
			depth++
		case tRParen:
			depth--
		}
		if depth <= 0 && t.isKeyword("AND") {
			if len(clauses)+1 >= MaxFilterClauses {
				return nil, errorf("Invalid value for parameter 'filter': more than %d clauses joined with AND", MaxFilterClauses)
			}
			clauses = append(clauses, cur)
			cur = nil
			continue
		}
		cur = append(cur, t)
	}
	clauses = append(clauses, cur)

	out := make([]Comparison, 0, len(clauses))
	for _, c := range clauses {
		if len(c) == 0 {
			return nil, errorf("Invalid clause(s) in filter string: empty clause in '%s' (leading, trailing or repeated AND)", filter)
		}
		cmp, err := parseClause(spec, filter, c)
		if err != nil {
			return nil, err
		}
		out = append(out, cmp)
	}
	return out, nil
}

func parseClause(spec *entitySpec, src string, toks []token) (Comparison, error) {
	invalid := errorf("Invalid clause(s) in filter string: '%s'", src[toks[0].start:toks[len(toks)-1].end])

	kt, key, p, err := parseIdentifier(src, toks, spec.prefixTable(), spec.filterTypes, spec.attrAliases)
	if errors.Is(err, errNotIdentifier) {
		return Comparison{}, invalid
	}
	if err != nil {
		return Comparison{}, err
	}
	var r rule
	switch kt {
	case KeyMetric:
		r = metricRule
	case KeyParam:
		r = paramRule
	case KeyTag, KeyMetadata:
		r = tagRule
	case KeyDataset:
		r = datasetRule
	default:
		r = spec.attrs[key]
	}

	op, p, ok := parseComparator(toks, p)
	if !ok {
		return Comparison{}, invalid
	}
	if !slices.Contains(r.ops, op) {
		return Comparison{}, errorf("Invalid comparator '%s' not one of %s for %s '%s'", op, pyList(r.ops), kt, key)
	}

	cmp := Comparison{KeyType: kt, Key: key, Op: op}
	switch {
	case op == OpIsNull || op == OpIsNotNull:
		// No value: the comparator is complete.
	case op == OpIn || op == OpNotIn:
		vals, next, err := parseList(src, toks, p, kt, key, op)
		if err != nil {
			return Comparison{}, err
		}
		cmp.Value, p = vals, next
	default:
		if p >= len(toks) {
			return Comparison{}, invalid
		}
		v := toks[p]
		if r.numeric {
			f, ok := numberValue(v)
			if !ok {
				return Comparison{}, errorf("Expected numeric value type for %s. Found %s", valueLabel(kt, key), rawValue(src, v))
			}
			cmp.Value = f
		} else {
			if v.kind != tString && v.kind != tDQString {
				return Comparison{}, errorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s",
					valueLabel(kt, key), rawValue(src, v))
			}
			cmp.Value = v.text
		}
		p++
	}
	if p != len(toks) {
		return Comparison{}, invalid
	}
	return cmp, nil
}

// parseIdentifier reads "<prefix>.<key>", "<prefix>.`quoted key`" or a bare
// attribute name starting at toks[0], checks it against what the endpoint
// accepts, and resolves attribute aliases. It returns the index of the next
// token.
func parseIdentifier(src string, toks []token, table map[string]KeyType, allowed map[KeyType]bool, attrs map[string]string) (KeyType, string, int, error) {
	t := toks[0]
	var prefix, key string
	quoted := false
	next := 1
	switch t.kind {
	case tBacktick:
		// `start_time`: a quoted bare name is still an attribute.
		key, quoted = t.text, true
	case tWord:
		dot := strings.IndexByte(t.text, '.')
		if dot < 0 {
			key = t.text
			break
		}
		prefix, key = t.text[:dot], t.text[dot+1:]
		if key != "" {
			break
		}
		// "tags." immediately followed by a quoted key.
		if len(toks) < 2 || !toks[1].quoted() || toks[1].start != t.end || toks[1].text == "" {
			return "", "", 0, errorf("Invalid identifier '%s'. Columns should be specified as "+
				"'attribute.<key>', 'metric.<key>', 'tag.<key>', 'dataset.<key>', or 'param.<key>'; "+
				"quote keys containing spaces or dots with backticks or double quotes", identText(src, toks))
		}
		key, quoted, next = toks[1].text, true, 2
		if next < len(toks) && toks[next].start == toks[1].end && strings.HasPrefix(toks[next].text, ".") {
			return "", "", 0, errorf("Invalid identifier '%s'. Only one '.' allowed outside the quoted key",
				src[t.start:toks[next].end])
		}
	default:
		return "", "", 0, errNotIdentifier
	}

	kt := KeyAttribute
	if prefix != "" {
		var ok bool
		kt, ok = table[strings.ToLower(prefix)]
		if !ok || !allowed[kt] {
			return "", "", 0, errorf("Invalid entity type '%s'. Valid values are %s", prefix, pyList(validPrefixes(table, allowed)))
		}
	} else if !allowed[KeyAttribute] {
		return "", "", 0, errorf("Invalid entity type for '%s'. Valid values are %s", key, pyList(validPrefixes(table, allowed)))
	}

	switch kt {
	case KeyAttribute:
		if !quoted && strings.Contains(key, ".") {
			return "", "", 0, errorf("Invalid identifier '%s'. Only one '.' allowed between the key type and an attribute key", t.text)
		}
		canon, ok := attrs[key]
		if !ok {
			return "", "", 0, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pyList(sortedKeys(attrs)))
		}
		key = canon
	case KeyDataset:
		if !quoted && strings.Contains(key, ".") {
			return "", "", 0, errorf("Invalid identifier '%s'. Only one '.' allowed between the key type and a dataset key", t.text)
		}
		if !slices.Contains(datasetKeys, key) {
			return "", "", 0, errorf("Invalid dataset key '%s' specified. Valid keys are '%s'", key, pyList(datasetKeys))
		}
	}
	return kt, key, next, nil
}

func identText(src string, toks []token) string {
	end := toks[0].end
	if len(toks) > 1 && toks[1].start == end {
		end = toks[1].end
	}
	return src[toks[0].start:end]
}

// parseComparator reads a symbolic or keyword comparator at toks[p]. It
// returns ok=false when there is no comparator at all, and otherwise the
// normalised spelling, which may be an unknown one ("~", "NOT LIKE") for
// the caller to reject with a specific message.
func parseComparator(toks []token, p int) (string, int, bool) {
	if p >= len(toks) {
		return "", p, false
	}
	t := toks[p]
	if t.kind == tOp {
		return t.text, p + 1, true
	}
	if t.kind != tWord {
		return "", p, false
	}
	switch w := strings.ToUpper(t.text); w {
	case OpLike, OpILike, OpIn:
		return w, p + 1, true
	case "NOT":
		if p+1 < len(toks) && toks[p+1].isKeyword("IN") {
			return OpNotIn, p + 2, true
		}
		if p+1 < len(toks) && toks[p+1].kind == tWord {
			return "NOT " + strings.ToUpper(toks[p+1].text), p + 2, true
		}
		return "NOT", p + 1, true
	case "IS":
		if p+1 < len(toks) && toks[p+1].isKeyword("NULL") {
			return OpIsNull, p + 2, true
		}
		if p+2 < len(toks) && toks[p+1].isKeyword("NOT") && toks[p+2].isKeyword("NULL") {
			return OpIsNotNull, p + 3, true
		}
		return "IS", p + 1, true
	}
	return "", p, false
}

// parseList reads a parenthesised, comma-separated list of quoted strings,
// which is all MLflow allows on the right of IN / NOT IN.
func parseList(src string, toks []token, p int, kt KeyType, key, op string) ([]string, int, error) {
	bad := func(got string) error {
		return errorf("Expected a quoted string value list for %s %s (e.g. ('a', 'b')). Got %s", valueLabel(kt, key), op, got)
	}
	if p >= len(toks) {
		return nil, p, bad("nothing")
	}
	if toks[p].kind != tLParen {
		return nil, p, bad(rawValue(src, toks[p]))
	}
	open := toks[p]
	p++
	vals := []string{}
	for {
		if p >= len(toks) {
			return nil, p, errorf("Invalid clause(s) in filter string: unclosed list '%s'", src[open.start:])
		}
		t := toks[p]
		if t.kind == tRParen && len(vals) == 0 {
			return nil, p, errorf("Invalid value list for %s %s: the list must contain at least one value", valueLabel(kt, key), op)
		}
		if t.kind != tString && t.kind != tDQString {
			return nil, p, bad(rawValue(src, t))
		}
		vals = append(vals, t.text)
		p++
		if p >= len(toks) {
			return nil, p, errorf("Invalid clause(s) in filter string: unclosed list '%s'", src[open.start:])
		}
		switch toks[p].kind {
		case tComma:
			p++
		case tRParen:
			return vals, p + 1, nil
		default:
			return nil, p, bad(rawValue(src, toks[p]))
		}
	}
}

// numberValue converts a numeric literal, refusing ones that overflow to
// infinity (ParseFloat reports those as errors) since no store can compare
// against them meaningfully.
func numberValue(t token) (float64, bool) {
	if t.kind != tNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func valueLabel(kt KeyType, key string) string {
	if kt == KeyAttribute || kt == KeyDataset {
		return fmt.Sprintf("%s '%s'", kt, key)
	}
	return string(kt)
}

// rawValue shows a value as the client wrote it; bare words get quotes so
// the message makes clear where the value starts and ends.
func rawValue(src string, t token) string {
	raw := src[t.start:t.end]
	if t.quoted() {
		return raw
	}
	return "'" + raw + "'"
}
