package tabular

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// CSVChunker cuts a CSV file into chunks of whole records without parsing
// their fields, so the parsing, the costly part, can be spread over
// workers. A line ends a record unless it ends inside a quoted field (one
// that starts with a quote; RFC 4180 doubles a quote inside it). A quote
// anywhere else is malformed, as encoding/csv says too: such a record
// ends with its line, so it fails alone instead of swallowing the lines
// after it.
type CSVChunker struct {
	f    *os.File
	r    *bufio.Reader
	cols []string
	row  int64 // data records cut so far
}

// CSVChunk is a run of whole records of a CSV file, unparsed.
type CSVChunk struct {
	Data     []byte
	Ends     []int // where each record ends in Data, its line end included
	FirstRow int64 // number of the first record, counting data rows from 1
	Rows     int
}

// OpenCSVChunks opens a CSV file and reads its header row.
func OpenCSVChunks(path string) (*CSVChunker, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c := &CSVChunker{f: f, r: bufio.NewReaderSize(f, 1<<20)}
	head, err := c.record(nil)
	if err != nil && (err != io.EOF || len(head) == 0) {
		f.Close()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty file, no header row", path)
		}
		return nil, fmt.Errorf("%s: header row: %w", path, err)
	}
	rec, err := csv.NewReader(bytes.NewReader(head)).Read()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: header row: %w", path, err)
	}
	c.cols = make([]string, len(rec))
	for i, h := range rec {
		c.cols[i] = strings.TrimSpace(h)
	}
	if len(c.cols) > 0 {
		c.cols[0] = strings.TrimPrefix(c.cols[0], "\ufeff")
	}
	return c, nil
}

// Columns names the header's columns.
func (c *CSVChunker) Columns() []string { return c.cols }

// Close closes the file.
func (c *CSVChunker) Close() error { return c.f.Close() }

// record appends the next non-blank record, with its line end, to buf.
func (c *CSVChunker) record(buf []byte) ([]byte, error) {
	start := len(buf)
	q := quoteState{fieldStart: true}
	for {
		line, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // a line longer than the buffer: keep reading it
		}
		if len(buf) == start && isBlank(line) && err == nil {
			continue // encoding/csv skips blank lines, so they are not rows
		}
		q.scan(line)
		buf = append(buf, line...)
		if err != nil {
			if len(buf) > start && !isBlank(buf[start:]) {
				return buf, nil // a last record without a line end
			}
			return buf[:start], err
		}
		if line[len(line)-1] == '\n' {
			if !q.inQuote || q.bad {
				return buf, nil
			}
		}
	}
}

// quoteState follows the quotes of one record, piece by piece.
type quoteState struct {
	inQuote    bool // inside a quoted field
	fieldStart bool // at the start of a field (outside quotes)
	closing    bool // a quote inside a quoted field ended the last piece: it closes the field or starts "" (an escaped quote)
	bad        bool // a quote where RFC 4180 allows none
}

func (q *quoteState) scan(p []byte) {
	if !q.inQuote && !q.closing && bytes.IndexByte(p, '"') < 0 {
		// The common case: no quotes to follow.
		if n := len(p); n > 0 {
			q.fieldStart = p[n-1] == ','
		}
		return
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		if q.closing {
			q.closing = false
			if b == '"' {
				continue // "" inside quotes
			}
			q.inQuote = false
			if b != ',' && b != '\r' && b != '\n' {
				q.bad = true // text after a closing quote
			}
			q.fieldStart = b == ','
			continue
		}
		switch {
		case q.inQuote:
			if b == '"' {
				q.closing = true
			}
		case b == '"':
			if q.fieldStart {
				q.inQuote = true
			} else {
				q.bad = true // a quote inside an unquoted field
			}
			q.fieldStart = false
		default:
			q.fieldStart = b == ','
		}
	}
}

func isBlank(line []byte) bool {
	for _, c := range line {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Next returns up to n records, or io.EOF after the last one.
func (c *CSVChunker) Next(n int) (*CSVChunk, error) {
	ch := &CSVChunk{FirstRow: c.row + 1}
	var err error
	for ch.Rows < n {
		var grown []byte
		grown, err = c.record(ch.Data)
		if len(grown) == len(ch.Data) {
			break
		}
		ch.Data = grown
		ch.Ends = append(ch.Ends, len(grown))
		ch.Rows++
		c.row++
		if err != nil {
			break
		}
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if ch.Rows == 0 {
		return nil, io.EOF
	}
	return ch, nil
}

// Parse reads the chunk's records into a frame of the named columns of
// header: as text where text[j] is set (text may be nil), else as
// numbers. A record that cannot be read, has the wrong number of fields or
// holds a non-number in a numeric column is told to bad, with its row
// number, and left out; the frame's RowNumbers then say which rows it
// holds. An empty field is a missing value (NaN), as pandas reads it.
func (ch *CSVChunk) Parse(header, names []string, text []bool, bad func(row int64, err error)) (*Frame, error) {
	idx := make([]int, len(names))
	var missing []string
	for j, n := range names {
		idx[j] = -1
		for i, h := range header {
			if h == n {
				idx[j] = i
				break
			}
		}
		if idx[j] < 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, &ColumnsError{Missing: missing, Have: header}
	}
	f := &Frame{Columns: names, Num: make([][]float64, len(names)), Text: make([][]string, len(names)), FirstRow: ch.FirstRow}
	isText := func(j int) bool { return text != nil && text[j] }
	for j := range names {
		if isText(j) {
			f.Text[j] = make([]string, 0, ch.Rows)
		} else {
			f.Num[j] = make([]float64, 0, ch.Rows)
		}
	}
	kept := make([]int64, 0, ch.Rows)
	vals := make([]float64, len(names))
	var fields []string
	start := 0
	for k, end := range ch.Ends {
		row := ch.FirstRow + int64(k)
		rec := ch.Data[start:end]
		start = end
		var err error
		if fields, err = splitRecord(rec, fields[:0]); err != nil {
			bad(row, err)
			continue
		}
		if len(fields) != len(header) {
			bad(row, fmt.Errorf("has %d fields, the header has %d", len(fields), len(header)))
			continue
		}
		var rowErr error
		for j, i := range idx {
			if isText(j) {
				continue
			}
			v, err := parseFloat(fields[i])
			if err != nil {
				rowErr = fmt.Errorf("column %s: %q is not a number", names[j], fields[i])
				break
			}
			vals[j] = v
		}
		if rowErr != nil {
			bad(row, rowErr)
			continue
		}
		for j, v := range vals {
			if isText(j) {
				f.Text[j] = append(f.Text[j], strings.Clone(fields[idx[j]]))
			} else {
				f.Num[j] = append(f.Num[j], v)
			}
		}
		kept = append(kept, row)
	}
	f.Len = len(kept)
	if len(kept) > 0 {
		f.FirstRow = kept[0]
		if kept[len(kept)-1]-kept[0] != int64(len(kept)-1) {
			f.RowNumbers = kept
		}
	}
	return f, nil
}

// splitRecord splits one record into fields. A record without quotes, the
// common case, is cut at its commas; one with quotes goes through
// encoding/csv, which also reports a malformed one.
func splitRecord(rec []byte, fields []string) ([]string, error) {
	for len(rec) > 0 && (rec[len(rec)-1] == '\n' || rec[len(rec)-1] == '\r') {
		rec = rec[:len(rec)-1]
	}
	if bytes.IndexByte(rec, '"') >= 0 {
		r := csv.NewReader(bytes.NewReader(rec))
		r.FieldsPerRecord = -1
		out, err := r.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, err
		}
		return append(fields, out...), nil
	}
	line := string(rec) // one allocation; the fields share it
	for {
		i := strings.IndexByte(line, ',')
		if i < 0 {
			return append(fields, line), nil
		}
		fields = append(fields, line[:i])
		line = line[i+1:]
	}
}
