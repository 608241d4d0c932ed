package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// mlflowArgs holds the parameters of one MLflow request, read the way
// MLflow's server reads them: a GET carries them in the query string
// (repeated keys for lists, numbers as text), every other method in a JSON
// object. Unknown parameters are ignored, as protobuf's parser does.
type mlflowArgs struct {
	query url.Values     // GET and HEAD
	body  map[string]any // other methods
	// prefix locates nested objects in error messages ("metrics[3].").
	prefix string
}

// parseMLflowArgs reads the request's parameters. A missing or empty body
// counts as {}, and a body that is a JSON string holding JSON is decoded
// twice, because older clients double-encoded their requests.
func parseMLflowArgs(r *http.Request) (*mlflowArgs, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return &mlflowArgs{query: r.URL.Query()}, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, jsonError(err)
	}
	obj, err := decodeMLflowBody(b)
	if err != nil {
		return nil, err
	}
	return &mlflowArgs{body: obj}, nil
}

func decodeMLflowBody(b []byte) (map[string]any, error) {
	for range 2 {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return map[string]any{}, nil
		}
		v, err := decodeLenientJSON(b)
		if err != nil {
			return nil, err
		}
		switch t := v.(type) {
		case nil:
			return map[string]any{}, nil
		case map[string]any:
			return t, nil
		case string:
			b = []byte(t)
			continue
		}
		break
	}
	return nil, wharf.Errorf(wharf.EINVALID, "the request body must be a JSON object")
}

// decodeLenientJSON decodes one JSON value, numbers kept exact. Python's
// json module writes NaN and infinities as the bare tokens NaN, Infinity and
// -Infinity, which the mlflow client sends in metric values; they are turned
// into the strings protobuf's JSON form uses for them.
func decodeLenientJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(quoteNonFinite(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "malformed JSON in the request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, wharf.Errorf(wharf.EINVALID, "malformed JSON in the request body: more than one value")
	}
	return v, nil
}

// quoteNonFinite quotes the bare tokens NaN, Infinity and -Infinity outside
// strings. Input without them is returned as is.
func quoteNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	var out []byte
	inString, escaped := false, false
	last := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		var tok string
		switch {
		case c == '"':
			inString = true
			continue
		case c == 'N' && bytes.HasPrefix(b[i:], []byte("NaN")):
			tok = "NaN"
		case c == 'I' && bytes.HasPrefix(b[i:], []byte("Infinity")):
			tok = "Infinity"
		case c == '-' && bytes.HasPrefix(b[i:], []byte("-Infinity")):
			tok = "-Infinity"
		default:
			continue
		}
		out = append(out, b[last:i]...)
		out = append(out, '"')
		out = append(out, tok...)
		out = append(out, '"')
		i += len(tok) - 1
		last = i + 1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// missingParam is MLflow's message for an absent required parameter.
func missingParam(field string) error {
	return wharf.Errorf(wharf.EINVALID, "Missing value for required parameter '%s'. See the API docs for more information about request parameters.", field).WithField(field)
}

// invalidParam reports a value of the wrong type or form.
func invalidParam(field string, v any, want string) error {
	shown := fmt.Sprint(v)
	if b, err := json.Marshal(v); err == nil {
		shown = string(b)
	}
	if len(shown) > 100 {
		shown = shown[:100] + "..."
	}
	return wharf.Errorf(wharf.EINVALID, "Invalid value %s for parameter '%s' supplied: %s expected", shown, field, want).WithField(field)
}

func (a *mlflowArgs) field(name string) string { return a.prefix + name }

// value returns a body value; JSON null counts as absent.
func (a *mlflowArgs) value(name string) (any, bool) {
	v, ok := a.body[name]
	return v, ok && v != nil
}

// queryValue returns a query value; an empty one counts as absent.
func (a *mlflowArgs) queryValue(name string) (string, bool) {
	v := a.query.Get(name)
	return v, v != ""
}

// str returns a string parameter, "" when absent.
func (a *mlflowArgs) str(name string) (string, error) {
	if a.query != nil {
		v, _ := a.queryValue(name)
		return v, nil
	}
	v, ok := a.value(name)
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", invalidParam(a.field(name), v, "a string")
	}
	return s, nil
}

// required returns a string parameter that must be present and non-empty.
func (a *mlflowArgs) required(name string) (string, error) {
	s, err := a.str(name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", missingParam(a.field(name))
	}
	return s, nil
}

// present returns a string parameter that must be given but may be empty,
// as a tag or param value may.
func (a *mlflowArgs) present(name string) (string, error) {
	if a.query != nil {
		if _, ok := a.query[name]; !ok {
			return "", missingParam(a.field(name))
		}
		return a.query.Get(name), nil
	}
	if _, ok := a.value(name); !ok {
		return "", missingParam(a.field(name))
	}
	return a.str(name)
}

// id returns an identifier such as experiment_id: a string, though an
// integer is accepted too, since experiment ids are numbers to many callers.
func (a *mlflowArgs) id(name string) (string, error) {
	if a.query == nil {
		if n, ok := a.body[name].(json.Number); ok {
			if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
				return "", invalidParam(a.field(name), n, "a string")
			}
			return n.String(), nil
		}
	}
	return a.str(name)
}

// runID returns the run of a request: the client sends both run_id and the
// older run_uuid, and either alone must work.
func (a *mlflowArgs) runID() (string, error) {
	id, err := a.str("run_id")
	if err != nil || id != "" {
		return id, err
	}
	id, err = a.str("run_uuid")
	if err != nil || id != "" {
		return id, err
	}
	return "", missingParam(a.field("run_id"))
}

// int64 returns an integer parameter, given as a JSON number or a string of
// digits (protobuf's JSON form of int64); ok is false when absent.
func (a *mlflowArgs) int64(name string) (n int64, ok bool, err error) {
	var v any
	if a.query != nil {
		s, present := a.queryValue(name)
		if !present {
			return 0, false, nil
		}
		v = s
	} else if v, ok = a.value(name); !ok {
		return 0, false, nil
	}
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = strings.TrimSpace(t)
	default:
		return 0, false, invalidParam(a.field(name), v, "an integer")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, nil
	}
	// 5.0 is an integer to JSON writers that only have floats.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return int64(f), true, nil
	}
	return 0, false, invalidParam(a.field(name), v, "an integer")
}

// requiredInt64 is int64 for a parameter that must be present.
func (a *mlflowArgs) requiredInt64(name string) (int64, error) {
	n, ok, err := a.int64(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, missingParam(a.field(name))
	}
	return n, nil
}

// float returns a double parameter: a JSON number, or a string holding a
// number, "NaN", "Infinity" or "-Infinity".
func (a *mlflowArgs) float(name string) (f float64, ok bool, err error) {
	var v any
	if a.query != nil {
		s, present := a.queryValue(name)
		if !present {
			return 0, false, nil
		}
		v = s
	} else if v, ok = a.value(name); !ok {
		return 0, false, nil
	}
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = strings.TrimSpace(t)
	default:
		return 0, false, invalidParam(a.field(name), v, "a number")
	}
	switch s {
	case "NaN", "nan":
		return math.NaN(), true, nil
	case "Infinity", "inf":
		return math.Inf(1), true, nil
	case "-Infinity", "-inf":
		return math.Inf(-1), true, nil
	}
	f, err = strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		return 0, false, invalidParam(a.field(name), v, "a number")
	}
	return f, true, nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// boolean returns a bool parameter, false when absent.
func (a *mlflowArgs) boolean(name string) (bool, error) {
	var v any
	if a.query != nil {
		s, present := a.queryValue(name)
		if !present {
			return false, nil
		}
		v = s
	} else {
		var ok bool
		if v, ok = a.value(name); !ok {
			return false, nil
		}
	}
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(t) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, invalidParam(a.field(name), v, "true or false")
}

// strs returns a repeated string parameter.
func (a *mlflowArgs) strs(name string) ([]string, error) {
	if a.query != nil {
		return a.query[name], nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, invalidParam(a.field(name), v, "a list of strings")
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, isStr := e.(string)
		if !isStr {
			return nil, invalidParam(fmt.Sprintf("%s[%d]", a.field(name), i), e, "a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// ids is strs for identifiers, integers accepted.
func (a *mlflowArgs) ids(name string) ([]string, error) {
	if a.query != nil {
		return a.query[name], nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, invalidParam(a.field(name), v, "a list of strings")
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		switch t := e.(type) {
		case string:
			out = append(out, t)
		case json.Number:
			if _, err := strconv.ParseInt(t.String(), 10, 64); err != nil {
				return nil, invalidParam(fmt.Sprintf("%s[%d]", a.field(name), i), e, "a string")
			}
			out = append(out, t.String())
		default:
			return nil, invalidParam(fmt.Sprintf("%s[%d]", a.field(name), i), e, "a string")
		}
	}
	return out, nil
}

// objects returns a repeated message parameter. Query strings cannot carry
// them, so a GET has none.
func (a *mlflowArgs) objects(name string) ([]*mlflowArgs, error) {
	if a.query != nil {
		return nil, nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, invalidParam(a.field(name), v, "a list of objects")
	}
	out := make([]*mlflowArgs, 0, len(list))
	for i, e := range list {
		prefix := fmt.Sprintf("%s[%d]", a.field(name), i)
		m, isObj := e.(map[string]any)
		if !isObj {
			return nil, invalidParam(prefix, e, "an object")
		}
		out = append(out, &mlflowArgs{body: m, prefix: prefix + "."})
	}
	return out, nil
}

// object returns a message parameter, nil when absent.
func (a *mlflowArgs) object(name string) (*mlflowArgs, error) {
	if a.query != nil {
		return nil, nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil, nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		return nil, invalidParam(a.field(name), v, "an object")
	}
	return &mlflowArgs{body: m, prefix: a.field(name) + "."}, nil
}

// tagList reads a list of {key, value} pairs. Keys are required; a value
// may be empty or, where valueRequired is false, left out.
func (a *mlflowArgs) tagList(name string, valueRequired bool) ([][2]string, error) {
	objs, err := a.objects(name)
	if err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(objs))
	for _, o := range objs {
		k, err := o.required("key")
		if err != nil {
			return nil, err
		}
		var v string
		if valueRequired {
			v, err = o.present("value")
		} else {
			v, err = o.str("value")
		}
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// tagMap is tagList folded into a map; a key given twice keeps its last
// value, as MLflow's "last one wins" rule for tags says.
func (a *mlflowArgs) tagMap(name string) (map[string]string, error) {
	list, err := a.tagList(name, false)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		m[kv[0]] = kv[1]
	}
	return m, nil
}

// viewType reads a ViewType given by name or number; ACTIVE_ONLY when absent.
func (a *mlflowArgs) viewType(name string) (int, error) {
	var v any
	if a.query != nil {
		s, ok := a.queryValue(name)
		if !ok {
			return wharf.ViewActiveOnly, nil
		}
		v = s
	} else {
		var ok bool
		if v, ok = a.value(name); !ok {
			return wharf.ViewActiveOnly, nil
		}
	}
	var s string
	switch t := v.(type) {
	case string:
		s = strings.ToUpper(strings.TrimSpace(t))
	case json.Number:
		s = t.String()
	default:
		return 0, invalidParam(a.field(name), v, "ACTIVE_ONLY, DELETED_ONLY or ALL")
	}
	switch s {
	case "ACTIVE_ONLY", "1":
		return wharf.ViewActiveOnly, nil
	case "DELETED_ONLY", "2":
		return wharf.ViewDeletedOnly, nil
	case "ALL", "3":
		return wharf.ViewAll, nil
	}
	return 0, invalidParam(a.field(name), v, "ACTIVE_ONLY, DELETED_ONLY or ALL")
}

// enum reads an enum given by name or by number; names maps numbers (as
// text) and names to the canonical name. "" when absent.
func (a *mlflowArgs) enum(name string, names map[string]string) (string, error) {
	var v any
	if a.query != nil {
		s, ok := a.queryValue(name)
		if !ok {
			return "", nil
		}
		v = s
	} else {
		var ok bool
		if v, ok = a.value(name); !ok {
			return "", nil
		}
	}
	var key string
	switch t := v.(type) {
	case string:
		key = strings.ToUpper(strings.TrimSpace(t))
	case json.Number:
		key = t.String()
	}
	if c, ok := names[key]; ok {
		return c, nil
	}
	want := make([]string, 0, len(names))
	for k, c := range names {
		if k == c {
			want = append(want, c)
		}
	}
	return "", invalidParam(a.field(name), v, "one of "+strings.Join(sortedStrings(want), ", "))
}

// maxResults reads max_results: def when absent, an error when not in
// 1..limit.
func (a *mlflowArgs) maxResults(def, limit int) (int, error) {
	n, ok, err := a.int64("max_results")
	if err != nil {
		return 0, err
	}
	if !ok {
		return def, nil
	}
	if n < 1 || n > int64(limit) {
		return 0, wharf.Errorf(wharf.EINVALID, "Invalid value %d for parameter 'max_results' supplied: it must be at most %d and positive", n, limit).WithField("max_results")
	}
	return int(n), nil
}

// searchQuery reads the filter, order_by and page_token common to searches.
func (a *mlflowArgs) searchQuery() (wharf.SearchQuery, error) {
	var q wharf.SearchQuery
	var err error
	if q.Filter, err = a.str("filter"); err != nil {
		return q, err
	}
	if q.OrderBy, err = a.strs("order_by"); err != nil {
		return q, err
	}
	if q.PageToken, err = a.str("page_token"); err != nil {
		return q, err
	}
	return q, nil
}
