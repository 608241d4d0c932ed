package scoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
)

// Default limits. A decoded JSON value takes some 20 times the bytes of its
// text, so the byte limit is what bounds memory; the others stop a small
// body from describing a huge table (sparse records, a v2 shape).
const (
	// DefaultMaxBytes is Azure managed online endpoints' payload limit (1.5 MiB).
	DefaultMaxBytes = 3 << 19
	// DefaultMaxRows bounds the rows of one request.
	DefaultMaxRows = 100_000
	// DefaultMaxColumns bounds the columns of one request.
	DefaultMaxColumns = 10_000
	// DefaultMaxCells bounds rows times columns.
	DefaultMaxCells = 1 << 20
)

// Limits bounds what one request may ask the decoder to build. A zero field
// takes its default.
type Limits struct {
	MaxBytes   int // body size; larger bodies are refused before parsing
	MaxRows    int
	MaxColumns int
	MaxCells   int // rows × columns
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = DefaultMaxColumns
	}
	if l.MaxCells <= 0 {
		l.MaxCells = DefaultMaxCells
	}
	return l
}

// acceptedKeys is quoted in the error for a body with no or several format keys.
const acceptedKeys = `"input_data", "dataframe_split", "dataframe_records", "instances" or "inputs"`

// Decode reads a scoring request body with the default Limits. See
// DecodeWithLimits.
func Decode(body []byte) (*Frame, error) {
	return DecodeWithLimits(body, Limits{})
}

// DecodeWithLimits reads a scoring request body into a Frame. The format is
// chosen by the body's top-level keys, of which exactly one of input_data,
// dataframe_split, dataframe_records, instances and inputs must be present;
// other keys are ignored, as the MLflow scoring server ignores them.
//
// Accepted shapes:
//   - input_data: a list of rows (unnamed columns), a list of records, the
//     pandas split object {"columns", "data", "index"?} (recognized when
//     "columns" and "data" are present and no key but those and "index"),
//     or any other object, read as named column arrays.
//   - dataframe_split: {"columns"?, "data", "index"?}.
//   - dataframe_records: a list of records.
//   - instances: a list of rows, records or scalars.
//   - inputs: an object of named column arrays, a list of rows, a list of
//     scalars (one unnamed column), or a list of Open Inference Protocol
//     input objects (name, shape, datatype, data), which makes it FormatV2.
//
// A v2 request must be tabular: a single input of shape [N, K] gives K
// unnamed columns; otherwise each input, of shape [N] or [N, 1], is one
// column named after the input. Its data may be flat (row-major) or nested
// one list per row; its length must match the shape and every value its
// datatype (BOOL: true/false, INT*/UINT*: whole numbers in range, FP*:
// finite numbers in range, BYTES: strings). The datatypes set Frame.Types.
//
// Records may differ in their keys: columns are the union in first-seen
// order and a missing value is null, as pandas builds the frame. A list of
// scalars is one unnamed column. Lists and objects inside cells are kept as
// they are. A request with no rows is refused.
//
// The optional "params" object (v2: "parameters", and the string "id") is
// copied to the Frame. Size limits give ETOOLARGE errors; everything else
// gives EINVALID errors naming the request field.
func DecodeWithLimits(body []byte, lim Limits) (*Frame, error) {
	lim = lim.withDefaults()
	if len(body) > lim.MaxBytes {
		return nil, tooLarge("", "the request body is %d bytes; the limit is %d", len(body), lim.MaxBytes)
	}
	d := decoder{body: body, lim: lim, dec: json.NewDecoder(bytes.NewReader(body))}
	d.dec.UseNumber()
	return d.top()
}

// decoder walks the body with one json.Decoder, streaming through the
// containers whose key order or element kind matters and decoding everything
// else in one call per value.
type decoder struct {
	dec  *json.Decoder
	body []byte
	lim  Limits
}

// peek returns the first byte of the next JSON value, looking past the
// separators the decoder has not consumed yet. It is only a hint: the
// decoder itself still checks the syntax.
func (d *decoder) peek() byte {
	for i := int(d.dec.InputOffset()); i < len(d.body); i++ {
		switch c := d.body[i]; c {
		case ' ', '\t', '\n', '\r', ':', ',':
		default:
			return c
		}
	}
	return 0
}

// jsonErr turns an encoding/json error into a request error.
func jsonErr(field string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		if field == "" {
			return invalid("", "the request body is empty; send a JSON object with one of %s", acceptedKeys)
		}
		return invalid(field, "the request body ends early")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(field, "the request body ends before its JSON is complete")
	case errors.As(err, &se):
		// The offset of a syntax error is relative to the value being decoded,
		// not the body, so the field locates the error instead.
		return invalid(field, "invalid JSON: %s", se.Error())
	case errors.As(err, &te):
		return invalid(field, "expected %s, got JSON %s", te.Type, te.Value)
	}
	return invalid(field, "invalid JSON: %s", err.Error())
}

// token reads the next token, converting errors.
func (d *decoder) token(field string) (json.Token, error) {
	t, err := d.dec.Token()
	if err != nil {
		return nil, jsonErr(field, err)
	}
	return t, nil
}

// value decodes the next value into v, converting errors.
func (d *decoder) value(field string, v any) error {
	if err := d.dec.Decode(v); err != nil {
		return jsonErr(field, err)
	}
	return nil
}

// expectDelim consumes the closing delimiter of a container.
func (d *decoder) expectDelim(field string, want json.Delim) error {
	t, err := d.token(field)
	if err != nil {
		return err
	}
	if t != want {
		return invalid(field, "expected %q", string(want))
	}
	return nil
}

// top reads the request object: the format key's payload, params, id.
func (d *decoder) top() (*Frame, error) {
	t, err := d.token("")
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, invalid("", "the request body must be a JSON object with one of %s", acceptedKeys)
	}
	f := &Frame{}
	found := ""
	var params, parameters, id any
	for d.dec.More() {
		t, err := d.token("")
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		switch key {
		case "input_data", "dataframe_split", "dataframe_records", "instances", "inputs":
			if found != "" {
				return nil, invalid(key, "the request has both %q and %q; send exactly one of %s", found, key, acceptedKeys)
			}
			found = key
			if err := d.payload(f, key); err != nil {
				return nil, err
			}
		case "params":
			err = d.value(key, &params)
		case "parameters":
			err = d.value(key, &parameters)
		case "id":
			err = d.value(key, &id)
		default:
			var skip json.RawMessage
			err = d.value(key, &skip)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := d.expectDelim("", '}'); err != nil {
		return nil, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, invalid("", "unexpected data after the request's JSON object")
	}
	if found == "" {
		return nil, invalid("", "the request body has none of the accepted keys; send exactly one of %s", acceptedKeys)
	}
	key, p := "params", params
	if f.Format == FormatV2 {
		key, p = "parameters", parameters
		switch v := id.(type) {
		case nil:
		case string:
			f.ID = v
		default:
			return nil, invalid("id", "must be a string, got %s", describe(v))
		}
	}
	switch v := p.(type) {
	case nil:
	case map[string]any:
		f.Params = v
	default:
		return nil, invalid(key, "must be an object, got %s", describe(v))
	}
	return f, nil
}

// payload reads the value of the format key.
func (d *decoder) payload(f *Frame, key string) error {
	f.Format = Format(key)
	f.base, f.colsField = key, key
	c := d.peek()
	switch key {
	case "input_data":
		switch c {
		case '[':
			return d.list(f, key, true, false)
		case '{':
			return d.object(f, key, true, true)
		}
		return invalid(key, "must be a list of rows, a list of records or an object")
	case "dataframe_split":
		if c == '{' {
			return d.object(f, key, true, false)
		}
		return invalid(key, `must be an object with "columns" and "data"`)
	case "dataframe_records":
		if c == '[' {
			return d.list(f, key, true, false)
		}
		return invalid(key, "must be a list of records")
	case "instances":
		if c == '[' {
			return d.list(f, key, true, false)
		}
		return invalid(key, "must be a list of rows or records")
	default: // inputs
		switch c {
		case '[':
			return d.list(f, key, false, true)
		case '{':
			return d.object(f, key, false, true)
		}
		return invalid(key, "must be a list of rows, an object of named columns, or a list of Open Inference Protocol inputs")
	}
}

// list reads a JSON array whose first element decides the layout: rows,
// records, scalars or (for "inputs") v2 input objects.
func (d *decoder) list(f *Frame, base string, records, v2 bool) error {
	switch d.peekElem() {
	case ']':
		return invalid(base, "has no rows")
	case '{':
		if v2 {
			return d.v2(f)
		}
		if records {
			return d.records(f, base)
		}
		return invalid(base, "must not be a list of objects")
	case '[':
		return d.rows(f, base)
	}
	if f.Format == FormatDataframeRecords {
		return invalid(base+"[0]", "must be an object mapping column names to values")
	}
	return d.scalars(f, base)
}

// peekElem returns the first byte of the first element of the array that
// starts at the next value, or ']' for an empty array.
func (d *decoder) peekElem() byte {
	i := int(d.dec.InputOffset())
	for ; i < len(d.body) && d.body[i] != '['; i++ {
	}
	for i++; i < len(d.body); i++ {
		switch c := d.body[i]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// index returns base[i], built only when an error needs it.
func index(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// array decodes the next value, which must be an array, in one call: decoding
// into an interface takes encoding/json's reflection-free path.
func (d *decoder) array(base string) ([]any, error) {
	var v any
	if err := d.dec.Decode(&v); err != nil {
		return nil, jsonErr(base, err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalid(base, "must be a list, got %s", describe(v))
	}
	return list, nil
}

// rows reads a list of equally long rows into unnamed columns.
func (d *decoder) rows(f *Frame, base string) error {
	list, err := d.array(base)
	if err != nil {
		return err
	}
	if len(list) > d.lim.MaxRows {
		return tooLarge(base, "has %d rows; the limit is %d", len(list), d.lim.MaxRows)
	}
	rows := make([][]any, len(list))
	for r, v := range list {
		row, ok := v.([]any)
		if !ok {
			return invalid(index(base, r), "must be a list of values like row 0, got %s", describe(v))
		}
		if r > 0 && len(row) != len(rows[0]) {
			return invalid(index(base, r), "has %d values; row 0 has %d", len(row), len(rows[0]))
		}
		rows[r] = row
	}
	return fromRows(f, base, rows, d.lim)
}

// fromRows transposes row lists into the frame's columns.
func fromRows(f *Frame, base string, rows [][]any, lim Limits) error {
	n, k := len(rows), len(rows[0])
	if k == 0 {
		return invalid(index(base, 0), "has no values")
	}
	if err := checkSize(base, n, k, lim); err != nil {
		return err
	}
	f.layout, f.base, f.Rows = layoutRows, base, n
	back := make([]any, n*k)
	f.Data = make([][]any, k)
	f.src = make([]colSrc, k)
	for c := range k {
		col := back[c*n : (c+1)*n : (c+1)*n]
		for r, row := range rows {
			col[r] = row[c]
		}
		f.Data[c] = col
		f.src[c] = colSrc{pos: c}
	}
	return nil
}

// checkSize applies the row, column and cell limits.
func checkSize(field string, rows, cols int, lim Limits) error {
	switch {
	case rows > lim.MaxRows:
		return tooLarge(field, "has %d rows; the limit is %d", rows, lim.MaxRows)
	case cols > lim.MaxColumns:
		return tooLarge(field, "has %d columns; the limit is %d", cols, lim.MaxColumns)
	case rows*cols > lim.MaxCells:
		return tooLarge(field, "has %d rows of %d columns; the limit is %d values", rows, cols, lim.MaxCells)
	}
	return nil
}

// scalars reads a list of plain values as one unnamed column.
func (d *decoder) scalars(f *Frame, base string) error {
	vals, err := d.array(base)
	if err != nil {
		return err
	}
	if len(vals) > d.lim.MaxRows {
		return tooLarge(base, "has %d rows; the limit is %d", len(vals), d.lim.MaxRows)
	}
	for r, v := range vals {
		switch v.(type) {
		case []any, map[string]any:
			return invalid(index(base, r), "mixes lists or objects with plain values")
		}
	}
	f.layout, f.Rows = layoutScalars, len(vals)
	f.Data = [][]any{vals}
	f.src = []colSrc{{pos: 0}}
	return nil
}

// records reads a list of objects keyed by column name. Each record is
// decoded whole (the fast path), and only a record that brings new columns
// is scanned again for its key order, which a Go map does not keep.
func (d *decoder) records(f *Frame, base string) error {
	if _, err := d.token(base); err != nil {
		return err
	}
	var names []string
	var cols [][]any
	known := map[string]struct{}{}
	r := 0
	for d.dec.More() {
		if r == d.lim.MaxRows {
			return tooLarge(base, "has more than %d rows", d.lim.MaxRows)
		}
		if d.peek() != '{' {
			return invalid(index(base, r), "must be an object mapping column names to values")
		}
		start := int(d.dec.InputOffset())
		var v any
		if err := d.dec.Decode(&v); err != nil {
			return jsonErr(index(base, r), err)
		}
		m, _ := v.(map[string]any)
		fresh := false
		for k := range m {
			if _, ok := known[k]; !ok {
				fresh = true
				break
			}
		}
		if fresh {
			for _, k := range objectKeys(d.body[start:d.dec.InputOffset()], m) {
				if _, ok := known[k]; ok {
					continue
				}
				if len(names) == d.lim.MaxColumns {
					return tooLarge(base, "has more than %d distinct columns", d.lim.MaxColumns)
				}
				if (len(names)+1)*(r+1) > d.lim.MaxCells {
					return tooLarge(base, "has %d rows of %d columns; the limit is %d values", r+1, len(names)+1, d.lim.MaxCells)
				}
				known[k] = struct{}{}
				names = append(names, k)
				cols = append(cols, make([]any, r, r+1))
			}
		}
		for c, name := range names {
			cols[c] = append(cols[c], m[name]) // absent keys read as null, as pandas fills them
		}
		r++
	}
	if err := d.expectDelim(base, ']'); err != nil {
		return err
	}
	if len(names) == 0 {
		return invalid(base, "has no columns")
	}
	f.layout, f.Rows, f.Columns, f.Data = layoutRecords, r, names, cols
	f.src = make([]colSrc, len(names))
	for c, n := range names {
		f.src[c] = colSrc{pos: c, name: n}
	}
	return nil
}

// objectKeys returns the keys of m in the order they appear in raw, the
// already-validated text of the object m was decoded from (possibly with
// leading separators). A key is taken as decoded text only when m has it,
// so the result always agrees with m.
func objectKeys(raw []byte, m map[string]any) []string {
	keys := make([]string, 0, len(m))
	seen := make(map[string]struct{}, len(m))
	add := func(k string) {
		if _, ok := m[k]; !ok {
			return
		}
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
	}
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			j, esc := i+1, false
			for ; j < len(raw) && raw[j] != '"'; j++ {
				if raw[j] == '\\' {
					j++
					esc = true
				}
			}
			if depth == 1 && isKey(raw, j+1) {
				if !esc {
					add(string(raw[i+1 : j]))
				}
				var k string
				if json.Unmarshal(raw[i:j+1], &k) == nil {
					add(k)
				}
			}
			i = j
		}
	}
	if len(keys) < len(m) { // not expected; keeps every column regardless
		var rest []string
		for k := range m {
			if _, ok := seen[k]; !ok {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		keys = append(keys, rest...)
	}
	return keys
}

// isKey reports whether the string ending before raw[i] is followed by a
// colon, which makes it an object key.
func isKey(raw []byte, i int) bool {
	for ; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// object reads a JSON object key by key, keeping the key order, then reads
// it as the pandas split form or as named column arrays.
func (d *decoder) object(f *Frame, base string, split, named bool) error {
	if _, err := d.token(base); err != nil {
		return err
	}
	var keys []string
	var vals []any
	for d.dec.More() {
		t, err := d.token(base)
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if len(keys) > d.lim.MaxColumns {
			return tooLarge(base, "has more than %d columns", d.lim.MaxColumns)
		}
		var v any
		if err := d.dec.Decode(&v); err != nil {
			return jsonErr(base+"."+key, err)
		}
		keys = append(keys, key)
		vals = append(vals, v)
	}
	if err := d.expectDelim(base, '}'); err != nil {
		return err
	}
	if split && (!named || isSplit(keys)) {
		return fromSplit(f, base, keys, vals, d.lim)
	}
	return fromNamed(f, base, keys, vals, d.lim)
}

// isSplit reports whether an input_data object is the pandas split form:
// it has "columns" and "data" and nothing but those and "index".
func isSplit(keys []string) bool {
	var cols, data bool
	for _, k := range keys {
		switch k {
		case "columns":
			cols = true
		case "data":
			data = true
		case "index":
		default:
			return false
		}
	}
	return cols && data
}

// fromSplit builds the frame from {"columns", "data", "index"}.
func fromSplit(f *Frame, base string, keys []string, vals []any, lim Limits) error {
	var columns, data, index any
	var hasCols, hasData, hasIndex bool
	for i, k := range keys {
		switch k {
		case "columns":
			columns, hasCols = vals[i], true
		case "data":
			data, hasData = vals[i], true
		case "index":
			index, hasIndex = vals[i], true
		default:
			return invalid(base+"."+k, `is not part of the split form; expected "columns", "data" and optional "index"`)
		}
	}
	if !hasData {
		return invalid(base+".data", "is required")
	}
	rowsAny, ok := data.([]any)
	if !ok {
		return invalid(base+".data", "must be a list of rows, got %s", describe(data))
	}
	var names []string
	if hasCols {
		list, ok := columns.([]any)
		if !ok {
			return invalid(base+".columns", "must be a list of column names, got %s", describe(columns))
		}
		if len(list) > lim.MaxColumns {
			return tooLarge(base+".columns", "has %d columns; the limit is %d", len(list), lim.MaxColumns)
		}
		names = make([]string, len(list))
		seen := make(map[string]struct{}, len(list))
		for i, v := range list {
			s, ok := v.(string)
			if !ok {
				return invalid(base+".columns["+strconv.Itoa(i)+"]", "must be a string, got %s", describe(v))
			}
			if _, dup := seen[s]; dup {
				return invalid(base+".columns", "names column %q twice", s)
			}
			seen[s] = struct{}{}
			names[i] = s
		}
	}
	dataField := base + ".data"
	if len(rowsAny) == 0 {
		return invalid(dataField, "has no rows")
	}
	if len(rowsAny) > lim.MaxRows {
		return tooLarge(dataField, "has %d rows; the limit is %d", len(rowsAny), lim.MaxRows)
	}
	rows := make([][]any, len(rowsAny))
	for r, v := range rowsAny {
		row, ok := v.([]any)
		field := dataField + "[" + strconv.Itoa(r) + "]"
		if !ok {
			return invalid(field, "must be a list of values, got %s", describe(v))
		}
		switch {
		case hasCols && len(row) != len(names):
			return invalid(field, "has %d values; %s.columns names %d", len(row), base, len(names))
		case !hasCols && r > 0 && len(row) != len(rows[0]):
			return invalid(field, "has %d values; row 0 has %d", len(row), len(rows[0]))
		}
		rows[r] = row
	}
	if hasIndex && index != nil {
		idx, ok := index.([]any)
		if !ok {
			return invalid(base+".index", "must be a list, got %s", describe(index))
		}
		if len(idx) != len(rows) {
			return invalid(base+".index", "has %d entries; %s has %d rows", len(idx), dataField, len(rows))
		}
	}
	if err := fromRows(f, dataField, rows, lim); err != nil {
		return err
	}
	if hasCols {
		f.Columns = names
		f.colsField = base + ".columns"
	}
	return nil
}

// fromNamed builds the frame from {"name": [values...], ...}.
func fromNamed(f *Frame, base string, keys []string, vals []any, lim Limits) error {
	if len(keys) == 0 {
		return invalid(base, "has no columns")
	}
	n := -1
	f.Data = make([][]any, len(keys))
	f.src = make([]colSrc, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for c, k := range keys {
		field := base + "." + k
		if _, dup := seen[k]; dup {
			return invalid(field, "appears twice")
		}
		seen[k] = struct{}{}
		col, ok := vals[c].([]any)
		if !ok {
			return invalid(field, "must be a list with one value per row, got %s", describe(vals[c]))
		}
		if n < 0 {
			n = len(col)
		} else if len(col) != n {
			return invalid(field, "has %d values; %s.%s has %d", len(col), base, keys[0], n)
		}
		f.Data[c] = col
		f.src[c] = colSrc{pos: c, name: k}
	}
	if n == 0 {
		return invalid(base, "has no rows")
	}
	if err := checkSize(base, n, len(keys), lim); err != nil {
		return err
	}
	f.layout, f.Rows, f.Columns = layoutNamed, n, keys
	return nil
}
