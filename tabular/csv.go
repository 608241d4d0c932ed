package tabular

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// csvReader reads a CSV file with a header row. Column types are decided
// by the first batch: a column whose values there all parse as numbers
// (or are empty) is numeric from then on.
type csvReader struct {
	f       *os.File
	r       *csv.Reader
	opt     Options
	cols    []string
	numeric []bool
	row     int64 // data rows read so far, bad ones included
	pending [][]string
	done    bool
}

func openCSV(path string, opt Options) (*csvReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		f.Close()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty file, no header row", path)
		}
		return nil, fmt.Errorf("%s: header row: %w", path, err)
	}
	cols := make([]string, len(header))
	for i, h := range header {
		cols[i] = strings.TrimSpace(h)
	}
	if len(cols) > 0 {
		cols[0] = strings.TrimPrefix(cols[0], "\ufeff")
	}
	return &csvReader{f: f, r: r, opt: opt, cols: cols}, nil
}

func (c *csvReader) Columns() []string { return c.cols }

func (c *csvReader) Close() error { return c.f.Close() }

// bad reports an unreadable row, or returns the error that ends reading.
func (c *csvReader) bad(row int64, err error) error {
	if c.opt.BadRow == nil {
		return fmt.Errorf("row %d: %w", row, err)
	}
	c.opt.BadRow(row, err)
	return nil
}

// readRows reads up to n well-formed records as string slices.
func (c *csvReader) readRows(n int) ([][]string, []int64, error) {
	var rows [][]string
	var nums []int64
	for len(rows) < n {
		rec, err := c.r.Read()
		if err == io.EOF {
			c.done = true
			break
		}
		c.row++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			if err := c.bad(c.row, err); err != nil {
				return nil, nil, err
			}
			continue
		}
		if len(rec) != len(c.cols) {
			if err := c.bad(c.row, fmt.Errorf("has %d fields, the header has %d", len(rec), len(c.cols))); err != nil {
				return nil, nil, err
			}
			continue
		}
		nums = append(nums, c.row)
		rows = append(rows, append([]string(nil), rec...))
	}
	return rows, nums, nil
}

func (c *csvReader) Next() (*Frame, error) {
	if c.numeric == nil {
		rows, nums, err := c.readRows(c.opt.BatchRows)
		if err != nil {
			return nil, err
		}
		c.numeric = make([]bool, len(c.cols))
		for i := range c.cols {
			c.numeric[i] = true
			for _, r := range rows {
				if _, err := parseFloat(r[i]); err != nil {
					c.numeric[i] = false
					break
				}
			}
		}
		return c.frame(rows, nums)
	}
	if c.done {
		return nil, io.EOF
	}
	rows, nums, err := c.readRows(c.opt.BatchRows)
	if err != nil {
		return nil, err
	}
	return c.frame(rows, nums)
}

// frame turns records into columns; a row with a non-number in a numeric
// column is a bad row.
func (c *csvReader) frame(rows [][]string, nums []int64) (*Frame, error) {
	if len(rows) == 0 && c.done {
		return nil, io.EOF
	}
	f := &Frame{Columns: c.cols, Num: make([][]float64, len(c.cols)), Text: make([][]string, len(c.cols))}
	kept := make([]int64, 0, len(rows))
	for i, num := range c.numeric {
		if num {
			f.Num[i] = make([]float64, 0, len(rows))
		} else {
			f.Text[i] = make([]string, 0, len(rows))
		}
	}
	for k, r := range rows {
		var rowErr error
		for i, num := range c.numeric {
			if !num {
				continue
			}
			if _, err := parseFloat(r[i]); err != nil {
				rowErr = fmt.Errorf("column %s: %q is not a number", c.cols[i], r[i])
				break
			}
		}
		if rowErr != nil {
			if err := c.bad(nums[k], rowErr); err != nil {
				return nil, err
			}
			continue
		}
		for i, num := range c.numeric {
			if num {
				v, _ := parseFloat(r[i])
				f.Num[i] = append(f.Num[i], v)
			} else {
				f.Text[i] = append(f.Text[i], r[i])
			}
		}
		f.Len++
		kept = append(kept, nums[k])
	}
	if len(kept) > 0 {
		f.FirstRow = kept[0]
		if kept[len(kept)-1]-kept[0] != int64(len(kept)-1) {
			f.RowNumbers = kept // a skipped row left a gap
		}
	}
	return f, nil
}

// parseFloat reads a number; an empty field is a missing value (NaN), as
// pandas reads it.
func parseFloat(s string) (float64, error) {
	if s == "" {
		return math.NaN(), nil
	}
	if s[0] <= ' ' || s[len(s)-1] <= ' ' { // trimming costs more than parsing a plain field
		s = strings.TrimSpace(s)
	}
	return strconv.ParseFloat(s, 64)
}

// CSVWriter writes frames to w as CSV with a header row.
type CSVWriter struct {
	w      *bufio.Writer
	header bool
	cols   []string
}

// NewCSVWriter returns a writer of the given columns.
func NewCSVWriter(w io.Writer, cols []string) *CSVWriter {
	return &CSVWriter{w: bufio.NewWriterSize(w, 1<<20), cols: cols}
}

// Write appends a frame's rows; its columns must be the writer's.
func (c *CSVWriter) Write(f *Frame) error {
	if !c.header {
		for i, col := range c.cols {
			if i > 0 {
				c.w.WriteByte(',')
			}
			c.w.WriteString(QuoteCSV(col))
		}
		c.w.WriteByte('\n')
		c.header = true
	}
	if !sameColumns(f.Columns, c.cols) {
		return fmt.Errorf("frame columns %v differ from the writer's %v", f.Columns, c.cols)
	}
	var buf []byte
	for r := 0; r < f.Len; r++ {
		buf = buf[:0]
		for i := range f.Columns {
			if i > 0 {
				buf = append(buf, ',')
			}
			if f.Num[i] != nil {
				v := f.Num[i][r]
				if !math.IsNaN(v) {
					buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
				}
			} else {
				buf = append(buf, QuoteCSV(f.Text[i][r])...)
			}
		}
		buf = append(buf, '\n')
		if _, err := c.w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes the writer.
func (c *CSVWriter) Close() error {
	if !c.header {
		if err := c.Write(&Frame{Columns: c.cols, Num: make([][]float64, len(c.cols)), Text: make([][]string, len(c.cols))}); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// QuoteCSV quotes s for a CSV field when it needs quoting.
func QuoteCSV(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
