package mlflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// args holds the parameters of one MLflow request, read the way MLflow's
// server reads them: a GET carries them in the query string (repeated keys
// for lists, numbers as text), every other method in a JSON object.
// Unknown parameters are ignored, as protobuf's parser does.
//
// Its readers return values only. The first malformed or missing parameter
// is kept as the request's error (Err), and every read after it returns the
// zero value, so a handler reads what it needs in order, then checks Err
// once before acting: the error a client gets is the first one met, as if
// each read had returned it.
type args struct {
	query url.Values     // GET and HEAD
	body  map[string]any // other methods
	// prefix locates nested objects in error messages ("metrics[3].").
	prefix string
	// root holds the request's error, shared by nested objects.
	root *args
	err  error
}

// Err returns the first error a read of the request, or a check, met.
func (a *args) Err() error { return a.root.err }

// check records err as the request's error unless one came first; checks
// of values read take their turn among the reads this way.
func (a *args) check(err error) {
	if err != nil && a.root.err == nil {
		a.root.err = err
	}
}

// failed reports whether an earlier read failed; a reader then returns at
// once.
func (a *args) failed() bool { return a.root.err != nil }

// nested returns the args of an object inside a, sharing its error.
func (a *args) nested(body map[string]any, prefix string) *args {
	return &args{body: body, prefix: prefix, root: a.root}
}

// parseArgs reads the request's parameters. A missing or empty body counts
// as {}, and a body that is a JSON string holding JSON is decoded twice,
// because older clients double-encoded their requests.
func parseArgs(r *http.Request) (*args, error) {
	a := &args{}
	a.root = a
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		a.query = r.URL.Query()
		return a, nil
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return argsFromBody(b)
}

// readBody reads a request's body, its errors worded for the client.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// argsFromBody returns the parameters of a request whose body is b.
func argsFromBody(b []byte) (*args, error) {
	a := &args{}
	a.root = a
	var err error
	if a.body, err = decodeBody(b); err != nil {
		return nil, err
	}
	return a, nil
}

// bodyError is the client-facing error for a body that could not be read:
// one the server explained already (a body that came too slowly), one over
// the size limit, or a broken connection.
func bodyError(err error) error {
	var explained *wharf.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &explained):
		return err
	case errors.As(err, &tooBig):
		return wharf.Errorf(wharf.ETOOLARGE, "request body exceeds %d bytes", tooBig.Limit)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wharf.Errorf(wharf.EINVALID, "request body is truncated JSON")
	}
	return wharf.Errorf(wharf.EINVALID, "request body is invalid: %s", err.Error())
}

func decodeBody(b []byte) (map[string]any, error) {
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

func (a *args) field(name string) string { return a.prefix + name }

// value returns a body value; JSON null counts as absent.
func (a *args) value(name string) (any, bool) {
	v, ok := a.body[name]
	return v, ok && v != nil
}

// queryValue returns a query value; an empty one counts as absent.
func (a *args) queryValue(name string) (string, bool) {
	v := a.query.Get(name)
	return v, v != ""
}

// scalar returns a parameter that is one value, from the query string or
// the body; ok is false when it is absent or an earlier read failed.
func (a *args) scalar(name string) (v any, ok bool) {
	if a.failed() {
		return nil, false
	}
	if a.query != nil {
		s, present := a.queryValue(name)
		return s, present
	}
	return a.value(name)
}

// peek returns a string parameter if it is one, "" otherwise, and records
// nothing: for looking at a request before its handler reads it.
func (a *args) peek(name string) string {
	if a.query != nil {
		return a.query.Get(name)
	}
	s, _ := a.body[name].(string)
	return s
}

// str returns a string parameter, "" when absent.
func (a *args) str(name string) string {
	v, ok := a.scalar(name)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		a.check(invalidParam(a.field(name), v, "a string"))
	}
	return s
}

// required returns a string parameter that must be present and non-empty.
func (a *args) required(name string) string {
	s := a.str(name)
	if s == "" {
		a.check(missingParam(a.field(name)))
	}
	return s
}

// present returns a string parameter that must be given but may be empty,
// as a tag or param value may.
func (a *args) present(name string) string {
	if a.failed() {
		return ""
	}
	given := false
	if a.query != nil {
		_, given = a.query[name]
	} else {
		_, given = a.value(name)
	}
	if !given {
		a.check(missingParam(a.field(name)))
		return ""
	}
	return a.str(name)
}

// id returns an identifier such as experiment_id: a string, though an
// integer is accepted too, since experiment ids are numbers to many callers.
func (a *args) id(name string) string {
	if a.query == nil && !a.failed() {
		if n, ok := a.body[name].(json.Number); ok {
			if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
				a.check(invalidParam(a.field(name), n, "a string"))
				return ""
			}
			return n.String()
		}
	}
	return a.str(name)
}

// requiredID is id for a parameter that must be given.
func (a *args) requiredID(name string) string {
	id := a.id(name)
	if id == "" {
		a.check(missingParam(a.field(name)))
	}
	return id
}

// runID returns the run of a request: the client sends both run_id and the
// older run_uuid, and either alone must work.
func (a *args) runID() string {
	if id := a.str("run_id"); id != "" || a.failed() {
		return id
	}
	if id := a.str("run_uuid"); id != "" || a.failed() {
		return id
	}
	a.check(missingParam(a.field("run_id")))
	return ""
}

// numeral returns a numeric parameter as text, given as a JSON number or a
// string (protobuf's JSON form of int64, and of NaN and the infinities);
// ok is false when it is absent or neither, want naming the type for the
// error then.
func (a *args) numeral(name, want string) (v any, s string, ok bool) {
	if v, ok = a.scalar(name); !ok {
		return nil, "", false
	}
	switch t := v.(type) {
	case json.Number:
		return v, t.String(), true
	case string:
		return v, strings.TrimSpace(t), true
	}
	a.check(invalidParam(a.field(name), v, want))
	return v, "", false
}

// int64 returns an integer parameter, given as a JSON number or a string of
// digits (protobuf's JSON form of int64); ok is false when absent.
func (a *args) int64(name string) (n int64, ok bool) {
	v, s, ok := a.numeral(name, "an integer")
	if !ok {
		return 0, false
	}
	if n, ok := parseInt64(s); ok {
		return n, true
	}
	a.check(invalidParam(a.field(name), v, "an integer"))
	return 0, false
}

// parseInt64 reads an integer parameter's text: digits, or a number
// without a fraction, since 5.0 is an integer to JSON writers that only
// have floats.
func parseInt64(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return int64(f), true
	}
	return 0, false
}

// requiredInt64 is int64 for a parameter that must be present.
func (a *args) requiredInt64(name string) int64 {
	n, ok := a.int64(name)
	if !ok {
		a.check(missingParam(a.field(name)))
	}
	return n
}

// float returns a double parameter: a JSON number, or a string holding a
// number, "NaN", "Infinity" or "-Infinity".
func (a *args) float(name string) (f float64, ok bool) {
	v, s, ok := a.numeral(name, "a number")
	if !ok {
		return 0, false
	}
	if f, ok := parseFloat(s); ok {
		return f, true
	}
	a.check(invalidParam(a.field(name), v, "a number"))
	return 0, false
}

// parseFloat reads a double parameter's text: a number, one out of range
// read as its infinity or zero, "NaN", "Infinity" or "-Infinity".
func parseFloat(s string) (float64, bool) {
	switch s {
	case "NaN", "nan":
		return math.NaN(), true
	case "Infinity", "inf":
		return math.Inf(1), true
	case "-Infinity", "-inf":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		return 0, false
	}
	return f, true
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// boolean returns a bool parameter, false when absent.
func (a *args) boolean(name string) bool {
	v, ok := a.scalar(name)
	if !ok {
		return false
	}
	switch t := v.(type) {
	case bool:
		return t
	case string:
		switch strings.ToLower(t) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	a.check(invalidParam(a.field(name), v, "true or false"))
	return false
}

// list returns a repeated parameter of the body, nil when absent; want
// names its elements for the error when it is not a list.
func (a *args) list(name, want string) []any {
	if a.failed() {
		return nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		a.check(invalidParam(a.field(name), v, want))
	}
	return l
}

// strs returns a repeated string parameter.
func (a *args) strs(name string) []string { return a.stringList(name, false) }

// ids is strs for identifiers, integers accepted.
func (a *args) ids(name string) []string { return a.stringList(name, true) }

func (a *args) stringList(name string, integers bool) []string {
	if a.query != nil {
		return a.query[name]
	}
	l := a.list(name, "a list of strings")
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		switch t := e.(type) {
		case string:
			out = append(out, t)
			continue
		case json.Number:
			if _, err := strconv.ParseInt(t.String(), 10, 64); err == nil && integers {
				out = append(out, t.String())
				continue
			}
		}
		a.check(invalidParam(fmt.Sprintf("%s[%d]", a.field(name), i), e, "a string"))
		return nil
	}
	return out
}

// objects returns a repeated message parameter. Query strings cannot carry
// them, so a GET has none.
func (a *args) objects(name string) []*args {
	if a.query != nil {
		return nil
	}
	l := a.list(name, "a list of objects")
	if l == nil {
		return nil
	}
	out := make([]*args, 0, len(l))
	for i, e := range l {
		prefix := fmt.Sprintf("%s[%d]", a.field(name), i)
		m, isObj := e.(map[string]any)
		if !isObj {
			a.check(invalidParam(prefix, e, "an object"))
			return nil
		}
		out = append(out, a.nested(m, prefix+"."))
	}
	return out
}

// object returns a message parameter, nil when absent.
func (a *args) object(name string) *args {
	if a.query != nil || a.failed() {
		return nil
	}
	v, ok := a.value(name)
	if !ok {
		return nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		a.check(invalidParam(a.field(name), v, "an object"))
		return nil
	}
	return a.nested(m, a.field(name)+".")
}

// tagList reads a list of {key, value} pairs. Keys are required; a value
// may be empty or, where valueRequired is false, left out.
func (a *args) tagList(name string, valueRequired bool) [][2]string {
	objs := a.objects(name)
	out := make([][2]string, 0, len(objs))
	for _, o := range objs {
		k := o.required("key")
		var v string
		if valueRequired {
			v = o.present("value")
		} else {
			v = o.str("value")
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

// tagMap is tagList folded into a map; a key given twice keeps its last
// value, as MLflow's "last one wins" rule for tags says.
func (a *args) tagMap(name string) map[string]string {
	list := a.tagList(name, false)
	if len(list) == 0 || a.failed() {
		return nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		m[kv[0]] = kv[1]
	}
	return m
}

// viewType reads a ViewType given by name or number; ACTIVE_ONLY when absent.
func (a *args) viewType(name string) int {
	v, ok := a.scalar(name)
	if !ok {
		return wharf.ViewActiveOnly
	}
	switch enumKey(v) {
	case "ACTIVE_ONLY", "1":
		return wharf.ViewActiveOnly
	case "DELETED_ONLY", "2":
		return wharf.ViewDeletedOnly
	case "ALL", "3":
		return wharf.ViewAll
	}
	a.check(invalidParam(a.field(name), v, "ACTIVE_ONLY, DELETED_ONLY or ALL"))
	return 0
}

// enumKey is how an enum value given by name, in any case, or by number is
// looked up; "" for anything else.
func enumKey(v any) string {
	switch t := v.(type) {
	case string:
		return strings.ToUpper(strings.TrimSpace(t))
	case json.Number:
		return t.String()
	}
	return ""
}

// enum reads an enum given by name or by number; names maps numbers (as
// text) and names to the canonical name. "" when absent.
func (a *args) enum(name string, names map[string]string) string {
	v, ok := a.scalar(name)
	if !ok {
		return ""
	}
	if c, ok := names[enumKey(v)]; ok {
		return c
	}
	want := make([]string, 0, len(names))
	for k, c := range names {
		if k == c {
			want = append(want, c)
		}
	}
	a.check(invalidParam(a.field(name), v, "one of "+strings.Join(sortedStrings(want), ", ")))
	return ""
}

// maxResults reads max_results: def when absent, an error when not in
// 1..limit.
func (a *args) maxResults(def, limit int) int {
	n, ok := a.int64("max_results")
	if !ok {
		return def
	}
	if n < 1 || n > int64(limit) {
		a.check(wharf.Errorf(wharf.EINVALID, "Invalid value %d for parameter 'max_results' supplied: it must be at most %d and positive", n, limit).WithField("max_results"))
	}
	return int(n)
}

// searchQuery reads the filter, order_by and page_token common to searches.
func (a *args) searchQuery() wharf.SearchQuery {
	return wharf.SearchQuery{Filter: a.str("filter"), OrderBy: a.strs("order_by"), PageToken: a.str("page_token")}
}
