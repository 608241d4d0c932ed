package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf/scoring"
)

// The environment variables of an online deployment that set its
// micro-batching. They are Wharf's own: Azure ML passes a deployment's
// environment_variables to its container and reads none of these, so a
// YAML that sets them deploys to Azure unchanged.
const (
	// EnvMicroBatch is "on" or "off". On is the default for an MLflow
	// model deployed without code; a score.py deployment is off unless it
	// says on, and then its run() gets a list of request bodies and
	// returns a list of answers.
	EnvMicroBatch = "WHARF_MICRO_BATCH"
	// EnvMicroBatchMaxWaitMS is how long, in milliseconds, a request may
	// wait for others to join its batch while the deployment is busy
	// (DefaultMicroBatchMaxWait). A request that finds the deployment
	// idle never waits.
	EnvMicroBatchMaxWaitMS = "WHARF_MICRO_BATCH_MAX_WAIT_MS"
	// EnvMicroBatchMaxRows caps the rows of one batch (requests, for a
	// score.py) (DefaultMicroBatchMaxRows).
	EnvMicroBatchMaxRows = "WHARF_MICRO_BATCH_MAX_ROWS"
)

// Micro-batching defaults.
const (
	DefaultMicroBatchMaxWait = time.Millisecond
	DefaultMicroBatchMaxRows = 512
)

// MicroBatch is a deployment's micro-batching.
type MicroBatch struct {
	On      bool
	MaxWait time.Duration
	MaxRows int
}

// MicroBatchError is a micro-batching variable with a value it cannot
// take.
type MicroBatchError struct {
	// Var is the environment variable, e.g. WHARF_MICRO_BATCH.
	Var string
	Msg string
}

func (e *MicroBatchError) Error() string {
	return "environment_variables." + e.Var + ": " + e.Msg
}

// ParseMicroBatch reads a deployment's micro-batching from its
// environment_variables; scoringScript says whether it has a score.py.
// Errors are *MicroBatchError.
func ParseMicroBatch(env map[string]string, scoringScript bool) (MicroBatch, error) {
	mb := MicroBatch{On: !scoringScript, MaxWait: DefaultMicroBatchMaxWait, MaxRows: DefaultMicroBatchMaxRows}
	if v, ok := env[EnvMicroBatch]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "1":
			mb.On = true
		case "off", "false", "0":
			mb.On = false
		default:
			return mb, &MicroBatchError{Var: EnvMicroBatch, Msg: fmt.Sprintf("%q is neither on nor off", v)}
		}
	}
	if v, ok := env[EnvMicroBatchMaxWaitMS]; ok {
		ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || ms < 0 || ms > 60_000 {
			return mb, &MicroBatchError{Var: EnvMicroBatchMaxWaitMS, Msg: fmt.Sprintf("%q is not a number of milliseconds from 0 to 60000", v)}
		}
		mb.MaxWait = time.Duration(ms * float64(time.Millisecond))
	}
	if v, ok := env[EnvMicroBatchMaxRows]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return mb, &MicroBatchError{Var: EnvMicroBatchMaxRows, Msg: fmt.Sprintf("%q is not a whole number of rows of at least 1", v)}
		}
		mb.MaxRows = n
	}
	return mb, nil
}

// table is a pyfunc request as the workers take it: its rows already
// written as JSON, so that merging requests is copying bytes.
type table struct {
	columns []byte // the column names as a JSON list, or null
	rows    []byte // the rows, "[..],[..]", without the enclosing brackets
	n       int
	params  []byte // the params object, or nil
	// float is set when every value is a number written with a decimal
	// point or exponent: the worker then builds the frame from one
	// float64 array, which pandas does far faster than row by row.
	float bool
	// key is equal for tables that can be merged with each other: the
	// same columns, and in each column the same kinds of JSON values, so
	// that pandas gives each column the same dtype merged as alone. It is
	// empty for a table that is never merged (one with params or no rows).
	key string
}

// Kinds of JSON values in a column, as bits of table's key.
const (
	kindFloat = 1 << iota
	kindInt
	kindBigInt // a whole number beyond int64, which pandas keeps as object
	kindString
	kindBool
	kindNull
	kindOther // lists and objects
)

// newTable writes a frame as the workers' table, row by row. Numbers in
// columns the signature types as double or float are written with a
// decimal point: JSON has one number type, and pandas would otherwise read
// 3 as an integer, which MLflow refuses for a double column.
func newTable(f *scoring.Frame) (*table, error) {
	floatCol := make([]bool, len(f.Data))
	for c := range f.Data {
		if c < len(f.Types) {
			floatCol[c] = f.Types[c] == "double" || f.Types[c] == "float"
		}
	}
	cols, err := json.Marshal(f.Columns)
	if err != nil {
		return nil, err
	}
	t := &table{columns: cols, n: f.Rows}
	kinds := make([]byte, len(f.Data))
	var b bytes.Buffer
	for r := 0; r < f.Rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for c := range f.Data {
			if c > 0 {
				b.WriteByte(',')
			}
			v := f.Data[c][r]
			switch v := v.(type) {
			case json.Number:
				s := v.String()
				b.WriteString(s)
				switch {
				case strings.ContainsAny(s, ".eE"):
					kinds[c] |= kindFloat
				case floatCol[c]:
					b.WriteString(".0")
					kinds[c] |= kindFloat
				default:
					if _, err := strconv.ParseInt(s, 10, 64); err == nil {
						kinds[c] |= kindInt
					} else {
						kinds[c] |= kindBigInt
					}
				}
				continue
			case string:
				kinds[c] |= kindString
			case bool:
				kinds[c] |= kindBool
			case nil:
				kinds[c] |= kindNull
			default:
				kinds[c] |= kindOther
			}
			enc, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b.Write(enc)
		}
		b.WriteByte(']')
	}
	t.rows = b.Bytes()
	t.float = len(kinds) > 0
	for _, k := range kinds {
		t.float = t.float && k == kindFloat
	}
	if f.Params != nil {
		if t.params, err = json.Marshal(f.Params); err != nil {
			return nil, err
		}
	}
	if t.params == nil && t.n > 0 {
		t.key = string(cols) + "\x00" + string(kinds)
	}
	return t, nil
}

// floatHint marks a table whose values are all floats.
const floatHint = `,"dtype":"float64"`

// payload is the table alone: {"columns": [...], "data": [...]} and its
// params.
func (t *table) payload() []byte {
	b := make([]byte, 0, len(t.columns)+len(t.rows)+len(t.params)+40)
	b = append(b, `{"columns":`...)
	b = append(b, t.columns...)
	b = append(b, `,"data":[`...)
	b = append(b, t.rows...)
	b = append(b, ']')
	if t.float {
		b = append(b, floatHint...)
	}
	if t.params != nil {
		b = append(b, `,"params":`...)
		b = append(b, t.params...)
	}
	return append(b, '}')
}

// mergeTables writes tables with equal keys as one, with "sizes" giving
// each one's row count, in order.
func mergeTables(tables []*table) []byte {
	size := len(tables[0].columns) + 40
	for _, t := range tables {
		size += len(t.rows) + 12
	}
	b := make([]byte, 0, size)
	b = append(b, `{"columns":`...)
	b = append(b, tables[0].columns...)
	b = append(b, `,"data":[`...)
	for i, t := range tables {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t.rows...)
	}
	b = append(b, ']')
	if tables[0].float {
		b = append(b, floatHint...)
	}
	b = append(b, `,"sizes":[`...)
	for i, t := range tables {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(t.n), 10)
	}
	return append(b, "]}"...)
}
