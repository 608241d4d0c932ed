package scoring

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// ColumnSpec is one column of a model signature.
type ColumnSpec struct {
	// Name is the column name, or "" in a positional (unnamed) signature.
	Name string
	// Type is an MLflow column type: double, float, long, integer, boolean,
	// string, binary or datetime. Other MLflow types (array, object, map,
	// any) are kept but not checked.
	Type string
	// Required means the request must carry the column. Optional columns
	// missing from a request are added by Check as all-null columns.
	Required bool
}

// Signature is a model's input (and output) schema.
type Signature struct {
	// Inputs are the columns a request must match; Check uses them.
	Inputs []ColumnSpec
	// Outputs describe the predictions; informational, for model metadata.
	Outputs []ColumnSpec
}

// mlflowSpec is one entry of an MLflow schema JSON string.
type mlflowSpec struct {
	Type       string  `json:"type"`
	Name       *string `json:"name"`
	Required   *bool   `json:"required"`
	TensorSpec *struct {
		Dtype string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	} `json:"tensor-spec"`
}

// ParseMLflowSignature parses the signature.inputs string of an MLflow
// MLmodel file, for example
//
//	[{"type": "double", "name": "distance", "required": true}, ...]
//
// See ParseMLflowSchema for the rules. An empty string or "null" gives a
// signature with no inputs, which Check accepts anything against.
func ParseMLflowSignature(inputsJSON string) (*Signature, error) {
	in, err := parseSchema(inputsJSON, "signature.inputs")
	if err != nil {
		return nil, err
	}
	return &Signature{Inputs: in}, nil
}

// ParseMLflowSchema parses one MLflow schema JSON string (signature.inputs or
// signature.outputs) into columns.
//
// Column specs map one to one; "required" defaults to true, as MLflow
// reads signatures written before the field existed. Tensor specs are read
// as unnamed numeric columns: shape [-1] is one column and [-1, K] is K
// columns; a named tensor must be one column ([-1] or [-1, 1]). Other
// tensor shapes (images, sequences) are not tabular and are refused.
func ParseMLflowSchema(schemaJSON string) ([]ColumnSpec, error) {
	return parseSchema(schemaJSON, "signature")
}

func parseSchema(s, field string) ([]ColumnSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil, nil
	}
	var specs []mlflowSpec
	if err := json.Unmarshal([]byte(s), &specs); err != nil {
		return nil, invalid(field, "is not an MLflow schema (a JSON list of column or tensor specs): %v", err)
	}
	var out []ColumnSpec
	var named, unnamed, tensors int
	for i, sp := range specs {
		f := field + "[" + strconv.Itoa(i) + "]"
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		if name == "" {
			unnamed++
		} else {
			named++
		}
		required := sp.Required == nil || *sp.Required
		if sp.Type != "tensor" {
			if sp.Type == "" {
				return nil, invalid(f+".type", "is required")
			}
			out = append(out, ColumnSpec{Name: name, Type: sp.Type, Required: required})
			continue
		}
		tensors++
		if sp.TensorSpec == nil {
			return nil, invalid(f, `a tensor spec needs "tensor-spec"`)
		}
		typ := tensorType(sp.TensorSpec.Dtype)
		shape := sp.TensorSpec.Shape
		switch {
		case len(shape) == 1 || (len(shape) == 2 && shape[1] == 1):
			out = append(out, ColumnSpec{Name: name, Type: typ, Required: required})
		case len(shape) == 2 && shape[1] > 1 && name == "":
			if shape[1] > DefaultMaxColumns {
				return nil, invalid(f+".tensor-spec.shape", "has %d columns; the limit is %d", shape[1], DefaultMaxColumns)
			}
			for range shape[1] {
				out = append(out, ColumnSpec{Type: typ, Required: required})
			}
		default:
			return nil, invalid(f+".tensor-spec.shape", "%v is not tabular; only [-1] and [-1, K] (K > 0) tensors map to columns", shape)
		}
	}
	if named > 0 && unnamed > 0 {
		return nil, invalid(field, "mixes named and unnamed specs")
	}
	if tensors > 0 && tensors != len(specs) {
		return nil, invalid(field, "mixes tensor and column specs")
	}
	return out, nil
}

// tensorType maps a numpy dtype name to the MLflow column type whose checks
// fit it; unknown dtypes map to "", which Check does not check.
func tensorType(dtype string) string {
	switch dtype {
	case "float64":
		return "double"
	case "float32", "float16":
		return "float"
	case "int64", "uint32", "uint64":
		return "long"
	case "int32", "int16", "int8", "uint16", "uint8":
		return "integer"
	case "bool":
		return "boolean"
	case "str", "object":
		return "string"
	case "bytes":
		return "binary"
	}
	return ""
}

// Check fits f to signature s the way the MLflow scoring server enforces a
// model signature, and records the signature's types in f.Types. A nil or
// empty signature accepts any frame.
//
//   - Named signature, named request: columns are matched by name, in any
//     order, and f is reordered to the signature's order. Missing required
//     columns are an error naming all of them. Missing optional columns are
//     added as all-null columns. Extra columns are dropped and listed in
//     f.Dropped, as MLflow drops them with a warning.
//   - Unnamed request (a list of rows, an unnamed tensor) or unnamed
//     signature: columns are matched by position; the counts must be equal,
//     and a named signature's names are assigned to f.Columns.
//   - Values must fit their column's type; the error names the column, the
//     first bad row and its request field. double and float take any JSON
//     number (ints included) or null; float refuses values beyond float32.
//     long and integer take whole numbers (3.0 counts) within int64 or
//     int32, no null. boolean takes true/false only. string, binary and
//     datetime take strings or null, unparsed. Numeric strings are not
//     numbers and booleans are not numbers.
func Check(f *Frame, s *Signature) error {
	if f == nil {
		return wharf.Errorf(wharf.EINTERNAL, "scoring: Check called with a nil frame")
	}
	if s == nil || len(s.Inputs) == 0 {
		return nil
	}
	in := s.Inputs
	named := in[0].Name != ""
	if !named || f.Columns == nil {
		if len(f.Data) != len(in) {
			return invalid(f.colsField, "the request has %d columns; the model expects %d (%s)", len(f.Data), len(in), specList(in))
		}
		if named {
			f.Columns = make([]string, len(in))
			for c, sp := range in {
				f.Columns[c] = sp.Name
			}
		}
	} else if err := f.matchNames(in); err != nil {
		return err
	}
	types := make([]string, len(in))
	for c, sp := range in {
		types[c] = sp.Type
	}
	for c := range f.Data {
		if c < len(f.src) && f.src[c].pos < 0 {
			continue // an optional column the request left out
		}
		for r, v := range f.Data[c] {
			if why := checkValue(types[c], v); why != "" {
				return invalid(f.Field(c, r), "row %d, column %s: expected %s, %s", r, f.colName(c), types[c], why)
			}
		}
	}
	f.Types = types
	return nil
}

// matchNames reorders f's columns to the named specs in.
func (f *Frame) matchNames(in []ColumnSpec) error {
	index := make(map[string]int, len(f.Columns))
	for c, n := range f.Columns {
		index[n] = c
	}
	var missing []string
	for _, sp := range in {
		if _, ok := index[sp.Name]; !ok && sp.Required {
			missing = append(missing, strconv.Quote(sp.Name))
		}
	}
	if len(missing) > 0 {
		noun := "column"
		if len(missing) > 1 {
			noun = "columns"
		}
		return invalid(f.colsField, "missing required %s %s (the model expects %s)", noun, strings.Join(missing, ", "), specList(in))
	}
	used := make([]bool, len(f.Columns))
	cols := make([]string, len(in))
	data := make([][]any, len(in))
	src := make([]colSrc, len(in))
	for j, sp := range in {
		cols[j] = sp.Name
		c, ok := index[sp.Name]
		if !ok {
			data[j] = make([]any, f.Rows)
			src[j] = colSrc{pos: -1}
			continue
		}
		used[c] = true
		data[j] = f.Data[c]
		if c < len(f.src) {
			src[j] = f.src[c]
		}
	}
	f.Dropped = nil
	for c, u := range used {
		if !u {
			f.Dropped = append(f.Dropped, f.Columns[c])
		}
	}
	f.Columns, f.Data, f.src = cols, data, src
	return nil
}

// specList renders the signature's columns for an error message.
func specList(in []ColumnSpec) string {
	const most = 30
	var b strings.Builder
	for i, sp := range in {
		if i == most {
			b.WriteString(", ...")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if sp.Name != "" {
			b.WriteString(sp.Name)
			b.WriteByte(' ')
		}
		b.WriteString(sp.Type)
	}
	return b.String()
}

// checkValue checks one value against an MLflow column type; it returns
// why the value does not fit, or "".
func checkValue(typ string, v any) string {
	switch typ {
	case "double", "float":
		switch v := v.(type) {
		case nil:
			return ""
		case json.Number:
			x, err := strconv.ParseFloat(string(v), 64)
			if err != nil || (typ == "float" && math.Abs(x) > math.MaxFloat32) {
				return "got " + string(v) + ", which overflows " + typ
			}
			return ""
		case float64, float32, int, int64, int32:
			return ""
		}
	case "long", "integer":
		switch v := v.(type) {
		case json.Number:
			x, why := wholeNumber(v)
			if why != "" {
				return "got " + why
			}
			if typ == "integer" && (x < math.MinInt32 || x > math.MaxInt32) {
				return "got " + string(v) + ", which is out of range for integer (32-bit)"
			}
			return ""
		case int, int64, int32:
			return ""
		case float64:
			if v == math.Trunc(v) && v >= -(1<<63) && v < 1<<63 {
				return ""
			}
		}
	case "boolean":
		if _, ok := v.(bool); ok {
			return ""
		}
	case "string", "binary", "datetime":
		switch v.(type) {
		case nil, string:
			return ""
		}
	default:
		return ""
	}
	return "got " + describe(v)
}

// wholeNumber reads a JSON number as an int64, accepting integral
// fractions and exponents (3.0, 1e3) but nothing that would be rounded.
func wholeNumber(n json.Number) (int64, string) {
	if x, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return x, ""
	}
	x, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err != nil && !strings.ContainsAny(string(n), ".eE"):
		return 0, string(n) + ", which is out of range for a 64-bit integer"
	case err != nil:
		return 0, string(n) + ", which overflows"
	case x != math.Trunc(x):
		return 0, string(n) + ", which is not a whole number"
	case x < -(1<<63) || x >= 1<<63:
		return 0, string(n) + ", which is out of range for a 64-bit integer"
	}
	return int64(x), ""
}
