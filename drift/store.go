package drift

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A store holds rows read from text formats (CSV, JSONL) as one file per
// column, written in one pass over the rows, so that each column can
// then be read alone, any number of times, without parsing the rows
// again and without holding them in memory.
//
// A column file is a sequence of cells, each a tag byte and its payload.
const (
	cellNull   = 0 // no payload
	cellNumber = 1 // 8 bytes, a little-endian float64
	cellText   = 2 // a uvarint length, then the bytes
	cellTrue   = 3
	cellFalse  = 4
)

// distinctCap is how many distinct integers a column's kind inference
// tracks; an integer column with more is numerical.
const distinctCap = 1 << 16

const scanBatch = 8192

type storeColumn struct {
	name  string
	path  string
	f     *os.File
	w     *bufio.Writer
	rows  int64
	nulls int64
	nums  int64
	texts int64
	bools int64
	// fraction: some number was written with a fraction or exponent.
	fraction bool
	distinct map[float64]struct{}
	buf      [binary.MaxVarintLen64 + 8]byte
}

func (c *storeColumn) null() {
	c.w.WriteByte(cellNull)
	c.rows++
	c.nulls++
}

func (c *storeColumn) number(v float64, text string) {
	c.w.WriteByte(cellNumber)
	binary.LittleEndian.PutUint64(c.buf[:8], math.Float64bits(v))
	c.w.Write(c.buf[:8])
	c.rows++
	c.nums++
	if !c.fraction && (v != math.Trunc(v) || strings.ContainsAny(text, ".eE")) {
		c.fraction = true
	}
	if !c.fraction && c.distinct != nil {
		c.distinct[v] = struct{}{}
		if len(c.distinct) > distinctCap {
			c.distinct = nil
		}
	}
}

func (c *storeColumn) text(s string) {
	c.w.WriteByte(cellText)
	n := binary.PutUvarint(c.buf[:], uint64(len(s)))
	c.w.Write(c.buf[:n])
	c.w.WriteString(s)
	c.rows++
	c.texts++
}

func (c *storeColumn) boolean(b bool) {
	if b {
		c.w.WriteByte(cellTrue)
	} else {
		c.w.WriteByte(cellFalse)
	}
	c.rows++
	c.bools++
}

// parseCell writes a text cell of a CSV file: empty is null, a number is
// a number, true/false a boolean, anything else text.
func (c *storeColumn) parseCell(s string) {
	if s == "" {
		c.null()
		return
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(v) {
			c.null()
			return
		}
		c.number(v, s)
		return
	}
	switch s {
	case "true", "True", "TRUE":
		c.boolean(true)
	case "false", "False", "FALSE":
		c.boolean(false)
	default:
		c.text(s)
	}
}

// column decides the column's type and kind from what was written.
func (c *storeColumn) column() Column {
	col := Column{Name: c.name}
	present := c.rows - c.nulls
	switch {
	case c.texts > 0 || (c.bools > 0 && c.nums > 0) || present == 0:
		col.Type, col.Kind = TypeString, Categorical
	case c.bools > 0:
		col.Type, col.Kind = TypeBoolean, Categorical
	case c.fraction:
		col.Type, col.Kind = TypeDouble, Numerical
	default:
		col.Type, col.Kind = TypeInteger, integerKind(c.distinct, c.rows)
	}
	return col
}

// integerKind is Azure's heuristic: an integer column is categorical
// when its distinct values are fewer than 5% of its rows. distinct is nil
// when there were more than distinctCap.
func integerKind(distinct map[float64]struct{}, rows int64) Kind {
	if distinct != nil && float64(len(distinct)) < 0.05*float64(rows) {
		return Categorical
	}
	return Numerical
}

// store is a Dataset of column files in a temporary folder.
type store struct {
	dir   string
	cols  []*storeColumn
	index map[string]int
	info  []Column
	rows  int64
}

func newStore() (*store, error) {
	dir, err := os.MkdirTemp("", "wharf-drift-data-*")
	if err != nil {
		return nil, err
	}
	return &store{dir: dir, index: map[string]int{}}, nil
}

// buildStore makes a store of n files, read into it in order by read.
func buildStore(n int, read func(s *store, i int) error) (*store, error) {
	s, err := newStore()
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := read(s, i); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.finish(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// column returns the named column, adding it (null in every row so far)
// when it is new.
func (s *store) column(name string) (*storeColumn, error) {
	if i, ok := s.index[name]; ok {
		return s.cols[i], nil
	}
	p := filepath.Join(s.dir, fmt.Sprintf("c%d", len(s.cols)))
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	c := &storeColumn{name: name, path: p, f: f, w: bufio.NewWriterSize(f, 1<<16), distinct: map[float64]struct{}{}}
	for c.rows < s.rows {
		c.null()
	}
	s.index[name] = len(s.cols)
	s.cols = append(s.cols, c)
	return c, nil
}

// endRow pads the columns a row did not mention with a null.
func (s *store) endRow() {
	s.rows++
	for _, c := range s.cols {
		if c.rows < s.rows {
			c.null()
		}
	}
}

// finish flushes the column files and infers the columns' kinds.
func (s *store) finish() error {
	s.info = make([]Column, len(s.cols))
	for i, c := range s.cols {
		err := c.w.Flush()
		if cerr := c.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		s.info[i] = c.column()
		c.distinct = nil
	}
	return nil
}

// Close removes the column files.
func (s *store) Close() error {
	for _, c := range s.cols {
		if c.f != nil {
			c.f.Close()
		}
	}
	return os.RemoveAll(s.dir)
}

func (s *store) Columns() []Column { return append([]Column(nil), s.info...) }

func (s *store) Rows() int64 { return s.rows }

func (s *store) open(name string) (*os.File, *bufio.Reader, error) {
	i, ok := s.index[name]
	if !ok {
		return nil, nil, fmt.Errorf("no column %q", name)
	}
	f, err := os.Open(s.cols[i].path)
	if err != nil {
		return nil, nil, err
	}
	return f, bufio.NewReaderSize(f, 1<<16), nil
}

// cells reads a column file, calling cell for each cell with its tag,
// its number and (for text) its bytes, valid until the next call.
func readCells(r *bufio.Reader, cell func(tag byte, v float64, text []byte) bool) error {
	var num [8]byte
	var text []byte
	for {
		tag, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var v float64
		text = text[:0]
		switch tag {
		case cellNumber:
			if _, err := io.ReadFull(r, num[:]); err != nil {
				return err
			}
			v = math.Float64frombits(binary.LittleEndian.Uint64(num[:]))
		case cellText:
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return err
			}
			if cap(text) < int(n) {
				text = make([]byte, n)
			}
			text = text[:n]
			if _, err := io.ReadFull(r, text); err != nil {
				return err
			}
		}
		if !cell(tag, v, text) {
			return nil
		}
	}
}

func (s *store) ScanFloat(ctx context.Context, name string, fn func(Floats) error) error {
	return scanCells(ctx, s, name, func(tag byte, v float64, _ []byte) (float64, bool) {
		switch tag {
		case cellNumber:
			return v, false
		case cellNull:
			return math.NaN(), false
		}
		return math.NaN(), true
	}, func(vals []float64, invalid []bool) error {
		return fn(Floats{Values: vals, Invalid: invalid})
	})
}

func (s *store) ScanString(ctx context.Context, name string, fn func(Strings) error) error {
	return scanCells(ctx, s, name, func(tag byte, v float64, text []byte) (string, bool) {
		switch tag {
		case cellNumber:
			return formatNumber(v), false
		case cellText:
			return string(text), false
		case cellTrue:
			return "true", false
		case cellFalse:
			return "false", false
		}
		return "", true
	}, func(vals []string, null []bool) error {
		return fn(Strings{Values: vals, Null: null})
	})
}

// scanCells reads a column in batches: conv turns a cell into a value
// and whether it is flagged (null or invalid); emit gets each batch with
// its flags, nil when none is flagged.
func scanCells[T any](ctx context.Context, s *store, name string, conv func(tag byte, v float64, text []byte) (T, bool), emit func([]T, []bool) error) error {
	f, r, err := s.open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	vals := make([]T, 0, scanBatch)
	var flags []bool
	var ferr error
	flush := func() bool {
		if ferr = ctx.Err(); ferr == nil {
			ferr = emit(vals, flags)
		}
		vals, flags = vals[:0], nil
		return ferr == nil
	}
	err = readCells(r, func(tag byte, v float64, text []byte) bool {
		x, flag := conv(tag, v, text)
		if flag && flags == nil {
			flags = make([]bool, len(vals), scanBatch)
		}
		vals = append(vals, x)
		if flags != nil {
			flags = append(flags, flag)
		}
		if len(vals) == scanBatch {
			return flush()
		}
		return true
	})
	if err == nil && ferr == nil && len(vals) > 0 {
		flush()
	}
	if ferr != nil {
		return ferr
	}
	return err
}

// formatNumber is a number as category text: integers without a
// fraction, others in Go's shortest form.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
