// Package tabular reads and writes tables a batch of rows at a time, from
// and to CSV and Parquet files, so the built-in components and batch
// scoring stream datasets larger than memory.
//
// A batch is a Frame: columns held as float64 slices when numeric (all
// Parquet integer and floating types, and CSV columns whose first batch
// holds only numbers) and as strings otherwise. Numeric is what the
// built-in models consume; keeping those columns unboxed is what makes
// scoring and training fast.
package tabular

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultBatchRows is the batch size when Options leaves it zero.
const DefaultBatchRows = 65536

// Frame is a batch of rows, column by column.
type Frame struct {
	Columns []string
	// Num holds column i's values when it is numeric (NaN for a null),
	// Text when it is not; exactly one of Num[i] and Text[i] is non-nil.
	Num  [][]float64
	Text [][]string
	// Len is the number of rows.
	Len int
	// FirstRow is the number of the batch's first row in its file,
	// counting data rows from 1 (a CSV header is not counted).
	FirstRow int64
	// RowNumbers numbers every row when the batch's rows are not
	// consecutive in the file (a bad row between them was skipped).
	RowNumbers []int64
}

// RowNumber is the number of row r in its file, counting data rows from 1.
func (f *Frame) RowNumber(r int) int64 {
	if f.RowNumbers != nil {
		return f.RowNumbers[r]
	}
	return f.FirstRow + int64(r)
}

// Index returns the position of the named column, or -1.
func (f *Frame) Index(name string) int {
	for i, c := range f.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Numeric returns column i as numbers. A text column is parsed; the error
// names the first row that is not a number.
func (f *Frame) Numeric(i int) ([]float64, error) {
	if f.Num[i] != nil {
		return f.Num[i], nil
	}
	out := make([]float64, f.Len)
	for r, s := range f.Text[i] {
		v, err := parseFloat(s)
		if err != nil {
			return nil, fmt.Errorf("row %d column %s: %q is not a number", f.RowNumber(r), f.Columns[i], s)
		}
		out[r] = v
	}
	return out, nil
}

// Value returns the value of column i in row r as text.
func (f *Frame) Value(i, r int) string {
	if f.Num[i] != nil {
		return strconv.FormatFloat(f.Num[i][r], 'g', -1, 64)
	}
	return f.Text[i][r]
}

// Select returns a frame of the named columns, in that order, sharing
// their values. The error lists every missing column.
func (f *Frame) Select(names []string) (*Frame, error) {
	out := &Frame{Columns: names, Num: make([][]float64, len(names)), Text: make([][]string, len(names)), Len: f.Len, FirstRow: f.FirstRow, RowNumbers: f.RowNumbers}
	var missing []string
	for j, n := range names {
		i := f.Index(n)
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		out.Num[j], out.Text[j] = f.Num[i], f.Text[i]
	}
	if len(missing) > 0 {
		return nil, &ColumnsError{Missing: missing, Have: f.Columns}
	}
	return out, nil
}

// ColumnsError is data that lacks columns a consumer needs.
type ColumnsError struct {
	Missing []string
	Have    []string
}

func (e *ColumnsError) Error() string {
	return fmt.Sprintf("missing column(s) %s (the data has %s)", strings.Join(e.Missing, ", "), strings.Join(e.Have, ", "))
}

// Options tune a Reader.
type Options struct {
	// BatchRows is the most rows a Next call returns.
	BatchRows int
	// BadRow, when set, is told about a CSV row that cannot be read (a
	// wrong number of fields, a non-number in a numeric column) and the
	// row is skipped; when nil such a row ends reading with an error.
	// row counts data rows from 1.
	BadRow func(row int64, err error)
}

// Reader returns a table's rows a batch at a time.
type Reader interface {
	// Columns names the table's columns in order.
	Columns() []string
	// Next returns the next batch, or io.EOF after the last one. The
	// frame stays valid after later calls.
	Next() (*Frame, error)
	Close() error
}

// Format is a file format this package reads.
type Format string

// The formats.
const (
	CSV     Format = "csv"
	Parquet Format = "parquet"
)

// FormatOf tells a file's format by its name, then by its first bytes
// (Parquet files start with PAR1).
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return Parquet
	case ".csv", ".txt":
		return CSV
	}
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		var magic [4]byte
		if _, err := io.ReadFull(f, magic[:]); err == nil && string(magic[:]) == "PAR1" {
			return Parquet
		}
	}
	return CSV
}

// Open opens a CSV or Parquet file for reading.
func Open(path string, opt Options) (Reader, error) {
	if opt.BatchRows <= 0 {
		opt.BatchRows = DefaultBatchRows
	}
	if FormatOf(path) == Parquet {
		return openParquet(path, opt)
	}
	return openCSV(path, opt)
}

// Files lists the data files of path: the file itself, or the CSV and
// Parquet files of a folder in name order, skipping hidden ones.
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != path && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			switch strings.ToLower(filepath.Ext(name)) {
			case ".csv", ".parquet", ".pq":
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no .csv or .parquet file", path)
	}
	sort.Strings(files)
	return files, nil
}

// MultiReader reads several files with the same columns as one table.
type MultiReader struct {
	files []string
	opt   Options
	cur   Reader
	next  int
	cols  []string
}

// OpenAll opens a file, or every data file of a folder, as one table.
// Every file must have the first file's columns, in any order; later
// files' frames are reordered to match.
func OpenAll(path string, opt Options) (*MultiReader, error) {
	files, err := Files(path)
	if err != nil {
		return nil, err
	}
	m := &MultiReader{files: files, opt: opt}
	if err := m.advance(); err != nil {
		return nil, err
	}
	m.cols = m.cur.Columns()
	return m, nil
}

func (m *MultiReader) advance() error {
	if m.cur != nil {
		m.cur.Close()
		m.cur = nil
	}
	if m.next >= len(m.files) {
		return io.EOF
	}
	r, err := Open(m.files[m.next], m.opt)
	if err != nil {
		return err
	}
	m.cur = r
	m.next++
	return nil
}

// Columns names the columns of the first file.
func (m *MultiReader) Columns() []string { return m.cols }

// Next returns the next batch of the current file, moving on to the next
// file at the end of one.
func (m *MultiReader) Next() (*Frame, error) {
	for {
		if m.cur == nil {
			return nil, io.EOF
		}
		f, err := m.cur.Next()
		if err == io.EOF {
			if err := m.advance(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.files[m.next-1], err)
		}
		if m.next > 1 && !sameColumns(f.Columns, m.cols) {
			if f, err = f.Select(m.cols); err != nil {
				return nil, fmt.Errorf("%s: %w", m.files[m.next-1], err)
			}
		}
		return f, nil
	}
}

// Close closes the current file.
func (m *MultiReader) Close() error {
	if m.cur != nil {
		return m.cur.Close()
	}
	return nil
}

func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Take returns a frame of the rows at idx, in that order.
func (f *Frame) Take(idx []int) *Frame {
	out := &Frame{Columns: f.Columns, Num: make([][]float64, len(f.Columns)), Text: make([][]string, len(f.Columns)), Len: len(idx)}
	for i := range f.Columns {
		if f.Num[i] != nil {
			col := make([]float64, len(idx))
			for k, r := range idx {
				col[k] = f.Num[i][r]
			}
			out.Num[i] = col
		} else {
			col := make([]string, len(idx))
			for k, r := range idx {
				col[k] = f.Text[i][r]
			}
			out.Text[i] = col
		}
	}
	if len(idx) > 0 {
		out.RowNumbers = make([]int64, len(idx))
		for k, r := range idx {
			out.RowNumbers[k] = f.RowNumber(r)
		}
		out.FirstRow = out.RowNumbers[0]
	}
	return out
}
