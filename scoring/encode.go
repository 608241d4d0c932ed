package scoring

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

// Predictions is a model's output for the rows of one request: one scalar per
// row (Width 0) or Width values per row, held row-major in exactly one of
// Float, Int and String.
type Predictions struct {
	Float  []float64
	Int    []int64
	String []string
	// Width is 0 for one value per row (a 1-D result) or K > 0 for K values
	// per row (a 2-D result, such as class probabilities).
	Width int
	// Columns optionally names the Width output columns. Named outputs are
	// answered as records ([{"a": 1, "b": 2}, ...], as MLflow returns a
	// DataFrame) and, in v2, as one output per column.
	Columns []string
	// Name is the v2 output name of an unnamed result; "predict" when empty.
	Name string
}

// ModelInfo identifies the model and request in an Open Inference Protocol
// response; other formats do not use it.
type ModelInfo struct {
	Name      string // model_name, required for v2
	Version   string // model_version, omitted when empty
	RequestID string // id, the request's id echoed; omitted when empty
}

// Encode writes predictions as the response body for a request of the given
// format:
//   - FormatAzure: a bare JSON list, as Azure ML's MLflow scoring script
//     answers ([12.7, 31.9], or a list of lists, or records when named).
//   - MLflow formats: {"predictions": <the same list>}.
//   - FormatV2: {"model_name", "model_version"?, "id"?, "outputs": [{"name",
//     "shape", "datatype", "data"}]} with flat row-major data and datatype
//     FP64, INT64 or BYTES.
//
// JSON has no NaN or infinity, so such values are written as null: one bad
// row then does not cost the others their answers. A malformed Predictions
// value is a server bug and gives an EINTERNAL error.
func Encode(format Format, p Predictions, m ModelInfo) ([]byte, error) {
	n, err := p.rows()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+n*max(p.Width, 1)*20)
	switch format {
	case FormatAzure:
		return p.appendList(b, n), nil
	case FormatDataframeSplit, FormatDataframeRecords, FormatInstances, FormatInputs:
		b = append(b, `{"predictions":`...)
		b = p.appendList(b, n)
		return append(b, '}'), nil
	case FormatV2:
		if m.Name == "" {
			return nil, wharf.Errorf(wharf.EINTERNAL, "scoring: a v2 response needs the model name")
		}
		return p.appendV2(b, n, m), nil
	}
	return nil, wharf.Errorf(wharf.EINTERNAL, "scoring: unknown response format %q", format)
}

// rows validates p and returns its row count.
func (p *Predictions) rows() (int, error) {
	kinds, size := 0, 0
	if p.Float != nil {
		kinds, size = kinds+1, len(p.Float)
	}
	if p.Int != nil {
		kinds, size = kinds+1, len(p.Int)
	}
	if p.String != nil {
		kinds, size = kinds+1, len(p.String)
	}
	switch {
	case kinds > 1:
		return 0, wharf.Errorf(wharf.EINTERNAL, "scoring: predictions set more than one of Float, Int and String")
	case p.Width < 0:
		return 0, wharf.Errorf(wharf.EINTERNAL, "scoring: negative prediction width %d", p.Width)
	case p.Columns != nil && len(p.Columns) != p.Width:
		return 0, wharf.Errorf(wharf.EINTERNAL, "scoring: %d prediction column names for width %d", len(p.Columns), p.Width)
	case p.Width > 0 && size%p.Width != 0:
		return 0, wharf.Errorf(wharf.EINTERNAL, "scoring: %d prediction values do not divide into rows of %d", size, p.Width)
	}
	return size / max(p.Width, 1), nil
}

// datatype returns the v2 datatype of p's values.
func (p *Predictions) datatype() string {
	switch {
	case p.Int != nil:
		return "INT64"
	case p.String != nil:
		return "BYTES"
	}
	return "FP64"
}

// appendValue appends value i of p.
func (p *Predictions) appendValue(b []byte, i int) []byte {
	switch {
	case p.Int != nil:
		return strconv.AppendInt(b, p.Int[i], 10)
	case p.String != nil:
		return appendString(b, p.String[i])
	}
	return appendFloat(b, p.Float[i])
}

// appendList appends p as a JSON list of n rows.
func (p *Predictions) appendList(b []byte, n int) []byte {
	b = append(b, '[')
	for r := range n {
		if r > 0 {
			b = append(b, ',')
		}
		switch {
		case p.Width == 0:
			b = p.appendValue(b, r)
		case p.Columns != nil:
			b = append(b, '{')
			for c, name := range p.Columns {
				if c > 0 {
					b = append(b, ',')
				}
				b = appendString(b, name)
				b = append(b, ':')
				b = p.appendValue(b, r*p.Width+c)
			}
			b = append(b, '}')
		default:
			b = append(b, '[')
			for c := range p.Width {
				if c > 0 {
					b = append(b, ',')
				}
				b = p.appendValue(b, r*p.Width+c)
			}
			b = append(b, ']')
		}
	}
	return append(b, ']')
}

// appendV2 appends an Open Inference Protocol infer response.
func (p *Predictions) appendV2(b []byte, n int, m ModelInfo) []byte {
	b = append(b, `{"model_name":`...)
	b = appendString(b, m.Name)
	if m.Version != "" {
		b = append(b, `,"model_version":`...)
		b = appendString(b, m.Version)
	}
	if m.RequestID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, m.RequestID)
	}
	b = append(b, `,"outputs":[`...)
	output := func(b []byte, name string, col int) []byte {
		b = append(b, `{"name":`...)
		b = appendString(b, name)
		b = append(b, `,"shape":[`...)
		b = strconv.AppendInt(b, int64(n), 10)
		if col < 0 && p.Width > 0 {
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(p.Width), 10)
		}
		b = append(b, `],"datatype":"`...)
		b = append(b, p.datatype()...)
		b = append(b, `","data":[`...)
		if col < 0 {
			for i := range n * max(p.Width, 1) {
				if i > 0 {
					b = append(b, ',')
				}
				b = p.appendValue(b, i)
			}
		} else {
			for r := range n {
				if r > 0 {
					b = append(b, ',')
				}
				b = p.appendValue(b, r*p.Width+col)
			}
		}
		return append(b, "]}"...)
	}
	if p.Columns != nil {
		for c, name := range p.Columns {
			if c > 0 {
				b = append(b, ',')
			}
			b = output(b, name, c)
		}
	} else {
		name := p.Name
		if name == "" {
			name = "predict"
		}
		b = output(b, name, -1)
	}
	return append(b, "]}"...)
}

// appendFloat appends x as a JSON number, choosing between plain and
// exponent notation by magnitude the way encoding/json does; NaN and
// infinities become null.
func appendFloat(b []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, x, format, -1, 64)
	if format == 'e' {
		// Shorten e-07 to e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string, replacing invalid UTF-8 with
// U+FFFD so the response always parses.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
