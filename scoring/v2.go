package scoring

import (
	"encoding/json"
	"math"
	"strconv"
)

// v2Datatypes maps each Open Inference Protocol datatype to the MLflow column
// type a value of it satisfies, so Check and Float64Matrix can treat v2
// columns like signature columns.
var v2Datatypes = map[string]string{
	"BOOL":   "boolean",
	"INT8":   "integer",
	"INT16":  "integer",
	"INT32":  "integer",
	"INT64":  "long",
	"UINT8":  "integer",
	"UINT16": "integer",
	"UINT32": "long",
	"UINT64": "long",
	"FP16":   "float",
	"FP32":   "float",
	"FP64":   "double",
	"BYTES":  "string",
}

// v2Input is one validated entry of a v2 request's "inputs".
type v2Input struct {
	name     string
	datatype string
	shape    []int
	data     []any // flat, or nested one level for rank 2
	nested   bool
}

// v2 reads an Open Inference Protocol infer request's "inputs" list. Tabular
// models see it in one of two ways: a single input of shape [N, K] is K
// unnamed columns (the numpy codec of MLServer and Triton); otherwise every
// input is one named column of shape [N] or [N, 1] (the pandas codec).
func (d *decoder) v2(f *Frame) error {
	list, err := d.array("inputs")
	if err != nil {
		return err
	}
	if len(list) > d.lim.MaxColumns {
		return tooLarge("inputs", "has %d inputs; the limit is %d", len(list), d.lim.MaxColumns)
	}
	raw := make([]map[string]any, len(list))
	for i, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			return invalid(index("inputs", i), "must be an object with name, shape, datatype and data")
		}
		raw[i] = m
	}
	if _, ok := raw[0]["datatype"]; !ok {
		if _, ok := raw[0]["shape"]; !ok {
			return invalid("inputs[0]", "a list of objects under \"inputs\" must be Open Inference Protocol inputs with name, shape, datatype and data; send records as \"dataframe_records\"")
		}
	}
	f.Format, f.base, f.colsField = FormatV2, "inputs", "inputs"
	ins := make([]v2Input, len(raw))
	for i, m := range raw {
		in, err := parseV2Input(i, m, d.lim)
		if err != nil {
			return err
		}
		ins[i] = in
	}
	return fromV2(f, ins, d.lim)
}

// parseV2Input validates one input object: its fields, its shape against
// its data, and every value against its datatype.
func parseV2Input(i int, m map[string]any, lim Limits) (v2Input, error) {
	field := index("inputs", i)
	var in v2Input
	for _, k := range [...]string{"name", "shape", "datatype", "data"} {
		if _, ok := m[k]; !ok {
			return in, invalid(field+"."+k, "is required")
		}
	}
	name, ok := m["name"].(string)
	if !ok || name == "" {
		return in, invalid(field+".name", "must be a non-empty string")
	}
	in.name = name
	dt, ok := m["datatype"].(string)
	if _, known := v2Datatypes[dt]; !ok || !known {
		return in, invalid(field+".datatype", "must be one of BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, BYTES; got %s", describe(m["datatype"]))
	}
	in.datatype = dt
	shapeAny, ok := m["shape"].([]any)
	if !ok || len(shapeAny) == 0 || len(shapeAny) > 2 {
		return in, invalid(field+".shape", "must be [N] or [N, K] for a tabular model, got %s", shapeText(m["shape"]))
	}
	total := 1
	for j, v := range shapeAny {
		n, ok := v.(json.Number)
		dim, err := strconv.Atoi(string(n))
		if !ok || err != nil || dim < 0 {
			return in, invalid(field+".shape", "dimension %d must be a non-negative integer, got %s", j, describe(v))
		}
		if dim > lim.MaxCells || (dim > 0 && total > lim.MaxCells/dim) {
			return in, tooLarge(field+".shape", "describes more than %d values", lim.MaxCells)
		}
		in.shape = append(in.shape, dim)
		total *= dim
	}
	data, ok := m["data"].([]any)
	if !ok {
		return in, invalid(field+".data", "must be a list, got %s", describe(m["data"]))
	}
	dataField := field + ".data"
	if len(data) > 0 {
		if _, ok := data[0].([]any); ok {
			in.nested = true
		}
	}
	if in.nested {
		// Nested data must mirror the shape exactly, so an error can name [r][c].
		if len(in.shape) != 2 || len(data) != in.shape[0] {
			return in, invalid(dataField, "nested data must have one list per row of shape %s", shapeText(m["shape"]))
		}
		for r, v := range data {
			row, ok := v.([]any)
			if !ok || len(row) != in.shape[1] {
				return in, invalid(dataField+"["+strconv.Itoa(r)+"]", "must be a list of %d values to match shape %s", in.shape[1], shapeText(m["shape"]))
			}
			for c, x := range row {
				if why := checkV2Value(dt, x); why != "" {
					return in, invalid(dataField+"["+strconv.Itoa(r)+"]["+strconv.Itoa(c)+"]", "%s", why)
				}
			}
		}
	} else {
		if len(data) != total {
			return in, invalid(dataField, "has %d values; shape %s needs %d", len(data), shapeText(m["shape"]), total)
		}
		for k, x := range data {
			if why := checkV2Value(dt, x); why != "" {
				return in, invalid(dataField+"["+strconv.Itoa(k)+"]", "%s", why)
			}
		}
	}
	in.data = data
	return in, nil
}

// shapeText renders a shape as the client sent it.
func shapeText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return describe(v)
	}
	return string(b)
}

// checkV2Value checks one value against a v2 datatype; it returns why the
// value does not fit, or "".
func checkV2Value(dt string, v any) string {
	switch dt {
	case "BOOL":
		if _, ok := v.(bool); ok {
			return ""
		}
		return "BOOL data must be true or false, got " + describe(v)
	case "BYTES":
		if _, ok := v.(string); ok {
			return ""
		}
		return "BYTES data must be strings, got " + describe(v)
	case "FP16", "FP32", "FP64":
		n, ok := v.(json.Number)
		if !ok {
			return dt + " data must be numbers, got " + describe(v)
		}
		x, err := strconv.ParseFloat(string(n), 64)
		limit := math.MaxFloat64
		switch dt {
		case "FP16":
			limit = 65504
		case "FP32":
			limit = math.MaxFloat32
		}
		if err != nil || math.Abs(x) > limit {
			return string(n) + " overflows " + dt
		}
		return ""
	}
	// Integer datatypes.
	n, ok := v.(json.Number)
	if !ok {
		return dt + " data must be integers, got " + describe(v)
	}
	if dt == "UINT64" {
		if _, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			return ""
		}
	}
	x, why := wholeNumber(n)
	if why != "" {
		return dt + " data: got " + why
	}
	lo, hi := intRange(dt)
	if x < lo || x > hi {
		return string(n) + " is out of range for " + dt
	}
	return ""
}

// intRange returns the bounds of an integer v2 datatype, clipped to int64.
func intRange(dt string) (lo, hi int64) {
	switch dt {
	case "INT8":
		return math.MinInt8, math.MaxInt8
	case "INT16":
		return math.MinInt16, math.MaxInt16
	case "INT32":
		return math.MinInt32, math.MaxInt32
	case "UINT8":
		return 0, math.MaxUint8
	case "UINT16":
		return 0, math.MaxUint16
	case "UINT32":
		return 0, math.MaxUint32
	case "UINT64":
		return 0, math.MaxInt64
	}
	return math.MinInt64, math.MaxInt64
}

// fromV2 lays the validated inputs out as frame columns.
func fromV2(f *Frame, ins []v2Input, lim Limits) error {
	f.layout = layoutV2
	if len(ins) == 1 && len(ins[0].shape) == 2 {
		in := ins[0]
		n, k := in.shape[0], in.shape[1]
		if n == 0 || k == 0 {
			return invalid("inputs[0].shape", "describes no values")
		}
		if err := checkSize("inputs[0]", n, k, lim); err != nil {
			return err
		}
		back := make([]any, n*k)
		f.Rows = n
		f.Data = make([][]any, k)
		f.Types = make([]string, k)
		f.src = make([]colSrc, k)
		for c := range k {
			col := back[c*n : (c+1)*n : (c+1)*n]
			for r := range n {
				if in.nested {
					col[r] = in.data[r].([]any)[c]
				} else {
					col[r] = in.data[r*k+c]
				}
			}
			f.Data[c] = col
			f.Types[c] = v2Datatypes[in.datatype]
			f.src[c] = colSrc{pos: 0, sub: c, width: k, nested: in.nested, rank2: true}
		}
		return nil
	}
	n := ins[0].shape[0]
	if err := checkSize("inputs", n, len(ins), lim); err != nil {
		return err
	}
	f.Rows = n
	f.Columns = make([]string, len(ins))
	f.Types = make([]string, len(ins))
	f.Data = make([][]any, len(ins))
	f.src = make([]colSrc, len(ins))
	seen := make(map[string]struct{}, len(ins))
	for i, in := range ins {
		field := index("inputs", i)
		rank2 := len(in.shape) == 2
		if rank2 && in.shape[1] != 1 {
			return invalid(field+".shape", "a request with several inputs needs each to be one column, shape [N] or [N, 1]; got [%d, %d]", in.shape[0], in.shape[1])
		}
		if in.shape[0] != n {
			return invalid(field+".shape", "has %d rows; inputs[0] has %d", in.shape[0], n)
		}
		if _, dup := seen[in.name]; dup {
			return invalid(field+".name", "%q names two inputs", in.name)
		}
		seen[in.name] = struct{}{}
		col := in.data
		if in.nested {
			col = make([]any, n)
			for r := range n {
				col[r] = in.data[r].([]any)[0]
			}
		}
		f.Columns[i] = in.name
		f.Types[i] = v2Datatypes[in.datatype]
		f.Data[i] = col
		f.src[i] = colSrc{pos: i, width: 1, nested: in.nested, rank2: rank2}
	}
	if n == 0 {
		return invalid("inputs[0].shape", "describes no rows")
	}
	return nil
}
