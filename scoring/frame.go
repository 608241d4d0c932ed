// Package scoring reads the JSON bodies that online-endpoint clients send
// (Azure ML's input_data, the MLflow scoring server's four formats and the
// Open Inference Protocol v2 infer request) into one column-major table,
// checks that table against an MLflow model signature, and writes predictions
// back in the shape the caller's protocol expects.
//
// The usual sequence on a scoring request is:
//
//	f, err := scoring.Decode(body)        // any accepted format
//	err = scoring.Check(f, sig)          // optional: names, order, types
//	x, err := f.Float64Matrix(nil)       // numeric models
//	out, err := scoring.Encode(f.Format, preds, scoring.ModelInfo{...})
//
// Every error is a *wharf.Error whose Field names the request field at fault,
// such as "dataframe_split.data[3][1]" or "inputs[0].shape", and whose message
// starts with that field.
package scoring

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/wharfml/wharf"
)

// Format is the request protocol a Frame was read from. Encode answers in the
// same protocol, so a handler never has to track it separately.
type Format string

// The accepted request formats. The value of each is the top-level key that
// identifies it, except FormatV2, which shares "inputs" with FormatInputs.
const (
	// FormatAzure is Azure ML's {"input_data": ...} body.
	FormatAzure Format = "input_data"
	// FormatDataframeSplit is MLflow's {"dataframe_split": {...}} body.
	FormatDataframeSplit Format = "dataframe_split"
	// FormatDataframeRecords is MLflow's {"dataframe_records": [...]} body.
	FormatDataframeRecords Format = "dataframe_records"
	// FormatInstances is MLflow's TF-serving style {"instances": [...]} body.
	FormatInstances Format = "instances"
	// FormatInputs is MLflow's TF-serving style {"inputs": ...} body.
	FormatInputs Format = "inputs"
	// FormatV2 is the Open Inference Protocol (KServe v2) infer request.
	FormatV2 Format = "v2"
)

// Frame is a decoded scoring request: a table of Rows rows held column by
// column, plus the request's parameters.
type Frame struct {
	// Format is the protocol the request used.
	Format Format
	// Columns holds one name per column, or is nil when the request named
	// none (a list of rows, an unnamed tensor). Check fills it in from a
	// signature with named columns.
	Columns []string
	// Types holds one MLflow type per column ("double", "long", ...), or is
	// nil when unknown. Open Inference Protocol datatypes set it on decode;
	// Check replaces it with the signature's types.
	Types []string
	// Rows is the number of rows; every Data[c] has this length.
	Rows int
	// Data is column-major: Data[c][r] is the value of column c in row r.
	// Values are what encoding/json produces with UseNumber: nil, bool,
	// string, json.Number, []any or map[string]any. Numbers stay json.Number
	// so integers reach the model exactly and parsing is paid only where a
	// number is actually used.
	Data [][]any
	// Params holds the request's "params" object ("parameters" for the Open
	// Inference Protocol), or nil when absent.
	Params map[string]any
	// ID is the Open Inference Protocol request id, to echo in the response.
	ID string
	// Dropped lists, in request order, the columns Check removed because
	// the signature does not declare them; callers may log it as a warning.
	Dropped []string

	layout    layout
	base      string // request field the table was read from, e.g. "dataframe_split.data"
	colsField string // request field to blame for the set of columns
	src       []colSrc
}

// layout records how the request laid the table out, so that an error found
// after decoding can still name the exact request field.
type layout uint8

const (
	layoutNone    layout = iota
	layoutRows           // base[r][c]
	layoutScalars        // base[r]
	layoutNamed          // base.name[r]
	layoutRecords        // base[r].name
	layoutV2             // inputs[i].data[k] or inputs[i].data[r][c]
)

// colSrc locates one frame column in the request.
type colSrc struct {
	pos    int    // position among the request's columns or v2 inputs; -1 when Check added the column
	name   string // the name the request used, for named layouts
	sub    int    // v2: column within its input
	width  int    // v2: columns of its input
	nested bool   // v2: data given as nested lists
	rank2  bool   // v2: input shape has two dimensions
}

// Field returns the request field holding row row of column col, for error
// messages about values found bad after decoding (by a model, say). It
// returns the table's base field when the position is unknown.
func (f *Frame) Field(col, row int) string {
	if col < 0 || col >= len(f.src) {
		return f.base
	}
	s := f.src[col]
	if s.pos < 0 {
		return f.colsField
	}
	r := strconv.Itoa(row)
	switch f.layout {
	case layoutRows:
		return f.base + "[" + r + "][" + strconv.Itoa(s.pos) + "]"
	case layoutScalars:
		return f.base + "[" + r + "]"
	case layoutNamed:
		return f.base + "." + s.name + "[" + r + "]"
	case layoutRecords:
		return f.base + "[" + r + "]." + s.name
	case layoutV2:
		in := "inputs[" + strconv.Itoa(s.pos) + "].data"
		switch {
		case s.nested && s.rank2:
			return in + "[" + r + "][" + strconv.Itoa(s.sub) + "]"
		case s.nested:
			return in + "[" + r + "]"
		default:
			return in + "[" + strconv.Itoa(row*s.width+s.sub) + "]"
		}
	}
	return f.base
}

// ColumnIndex returns the index of the named column, or -1.
func (f *Frame) ColumnIndex(name string) int {
	for i, c := range f.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Float64Matrix returns the named columns (all columns, in frame order, when
// columns is nil) as a row-major matrix: m[r][c]. The rows share one backing
// array.
//
// Conversions are deliberately narrow, so a model never silently scores
// something other than what the client meant:
//   - JSON numbers convert exactly as strconv.ParseFloat reads them; a value
//     that overflows float64 is an error.
//   - true/false become 1/0 only in columns whose type is "boolean" (set by
//     Check from the signature, or by a v2 BOOL datatype).
//   - null becomes NaN only in columns typed double, float, long, integer or
//     boolean; Check lets null through only where MLflow would (double and
//     float columns, and optional columns the request left out).
//   - Strings, numeric-looking or not, lists and objects are errors.
//
// Errors name the request field of the first bad value.
func (f *Frame) Float64Matrix(columns []string) ([][]float64, error) {
	idx := make([]int, 0, len(f.Data))
	if columns == nil {
		for c := range f.Data {
			idx = append(idx, c)
		}
	} else {
		for _, name := range columns {
			c := f.ColumnIndex(name)
			if c < 0 {
				return nil, invalid(f.colsField, "the request has no column %q", name)
			}
			idx = append(idx, c)
		}
	}
	k := len(idx)
	flat := make([]float64, f.Rows*k)
	m := make([][]float64, f.Rows)
	for r := range m {
		m[r] = flat[r*k : (r+1)*k : (r+1)*k]
	}
	for j, c := range idx {
		typ := ""
		if c < len(f.Types) {
			typ = f.Types[c]
		}
		col := f.Data[c]
		if len(col) != f.Rows {
			return nil, wharf.Errorf(wharf.EINTERNAL, "frame column %d has %d values; the frame has %d rows", c, len(col), f.Rows)
		}
		for r, v := range col {
			x, why := toFloat(v, typ)
			if why != "" {
				return nil, invalid(f.Field(c, r), "row %d, column %s: %s", r, f.colName(c), why)
			}
			flat[r*k+j] = x
		}
	}
	return m, nil
}

// colName names column c for messages: its name when it has one, else its
// position.
func (f *Frame) colName(c int) string {
	if c < len(f.Columns) && f.Columns[c] != "" {
		return strconv.Quote(f.Columns[c])
	}
	return strconv.Itoa(c)
}

// toFloat converts one cell for Float64Matrix; why is empty on success.
func toFloat(v any, typ string) (x float64, why string) {
	switch v := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, string(v) + " overflows a 64-bit float"
		}
		return x, ""
	case float64:
		return v, ""
	case float32:
		return float64(v), ""
	case int:
		return float64(v), ""
	case int64:
		return float64(v), ""
	case int32:
		return float64(v), ""
	case bool:
		if typ != "boolean" {
			return 0, "got " + describe(v) + " where a number is needed (a signature declaring the column boolean makes it 0/1)"
		}
		if v {
			return 1, ""
		}
		return 0, ""
	case nil:
		switch typ {
		case "double", "float", "long", "integer", "boolean":
			return math.NaN(), ""
		}
		return 0, "got null where a number is needed"
	}
	return 0, "got " + describe(v) + " where a number is needed"
}

// describe renders a decoded value briefly for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + string(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case float64:
		return "number " + strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		return "number " + strconv.FormatInt(v, 10)
	case int:
		return "number " + strconv.Itoa(v)
	}
	return "a value of an unsupported kind"
}

// invalid returns an EINVALID error for field whose message starts with the
// field, since clients often show only the message.
func invalid(field, format string, args ...any) error {
	e := wharf.Errorf(wharf.EINVALID, format, args...)
	if field != "" {
		e.Message = field + ": " + e.Message
	}
	return e.WithField(field)
}

// tooLarge returns an ETOOLARGE error for field.
func tooLarge(field, format string, args ...any) error {
	e := wharf.Errorf(wharf.ETOOLARGE, format, args...)
	if field != "" {
		e.Message = field + ": " + e.Message
	}
	return e.WithField(field)
}
