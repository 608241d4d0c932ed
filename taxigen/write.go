package taxigen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/wharfml/wharf/tabular"
)

// Files Generate writes into its folder: the data and batch files as
// CSV, or with Spec.Format Parquet as DataParquetFile and
// BatchParquetFile; the request file is JSON either way.
const (
	DataFile         = "taxi-data.csv"
	BatchFile        = "taxi-batch.csv"
	RequestFile      = "taxi-request.json"
	DataParquetFile  = "taxi-data.parquet"
	BatchParquetFile = "taxi-batch.parquet"
)

// Format is the file format of the data and batch files.
type Format string

// The formats Generate writes.
const (
	CSV     Format = "csv"
	Parquet Format = "parquet"
)

// RequestRows is how many trips Generate puts in the request file, as many
// as the sample's.
const RequestRows = 2

// chunkRows is how many consecutive rows share one random sequence; rows are
// generated and formatted a chunk at a time.
const chunkRows = 4096

// Trips calls fn with the first n trips of a stream, in order; fn must not
// keep t, which is reused. It stops early when fn returns false.
func (s Spec) Trips(stream Stream, n int64, fn func(i int64, t *Trip) bool) {
	c := s.calendar()
	var t Trip
	var r *rng
	for i := int64(0); i < n; i++ {
		if i%chunkRows == 0 {
			r = newRNG(s.Seed, stream, i/chunkRows)
		}
		r.trip(c, &t)
		s.shift(&t)
		if !fn(i, &t) {
			return
		}
	}
}

// Header is the CSV header row, without its newline: Target first when
// label is set (as in the sample's taxi-data.csv, less its index column),
// then Features.
func Header(label bool) string {
	h := strings.Join(Features, ",")
	if label {
		h = Target + "," + h
	}
	return h
}

// WriteCSV writes a header and the first n trips of a stream as CSV to w,
// with the cost column when label is set. progress, if not nil, is called
// with the number of rows written so far, from the calling goroutine.
func (s Spec) WriteCSV(ctx context.Context, w io.Writer, stream Stream, n int64, label bool, progress func(done int64)) error {
	if n < 0 {
		return fmt.Errorf("taxigen: negative row count %d", n)
	}
	bw := bufio.NewWriterSize(w, 64<<10) // chunks larger than this pass through uncopied
	if _, err := bw.WriteString(Header(label) + "\n"); err != nil {
		return err
	}
	encode := func(buf []byte, c *calendar, r *rng, rows int) []byte {
		if buf == nil {
			buf = make([]byte, 0, chunkRows*128)
		}
		var t Trip
		for range rows {
			r.trip(c, &t)
			s.shift(&t)
			buf = appendRow(buf, &t, label)
		}
		return buf
	}
	emit := func(buf []byte, _ int) ([]byte, error) {
		_, err := bw.Write(buf)
		return buf[:0], err
	}
	if err := produce(ctx, s, stream, n, encode, emit, progress); err != nil {
		return err
	}
	return bw.Flush()
}

// Columns are the columns of a data file (label set: Target, then
// Features) or of a batch file (Features only), in file order.
func Columns(label bool) []string {
	if label {
		return append([]string{Target}, Features...)
	}
	return slices.Clone(Features)
}

// WriteParquet writes the first n trips of a stream as a Parquet file at
// path, every column a DOUBLE, in Columns(label) order, with the same
// values a CSV reader parses from WriteCSV's output. Rows are written a
// chunk at a time as they are generated, so memory stays bounded (by the
// Parquet writer's row group) whatever n. The file appears only when
// complete. progress is as for WriteCSV.
func (s Spec) WriteParquet(ctx context.Context, path string, stream Stream, n int64, label bool, progress func(done int64)) error {
	if n < 0 {
		return fmt.Errorf("taxigen: negative row count %d", n)
	}
	cols := Columns(label)
	numeric := make([]bool, len(cols))
	for i := range numeric {
		numeric[i] = true
	}
	pw, err := tabular.CreateParquet(path, cols, numeric)
	if err != nil {
		return err
	}
	// encode fills one chunk column by column.
	encode := func(buf [][]float64, c *calendar, r *rng, rows int) [][]float64 {
		if buf == nil {
			buf = make([][]float64, len(cols))
			for j := range buf {
				buf[j] = make([]float64, 0, chunkRows)
			}
		}
		off := 0
		if label {
			off = 1
		}
		var t Trip
		var vals [20]float64
		for range rows {
			r.trip(c, &t)
			s.shift(&t)
			if label {
				buf[0] = append(buf[0], t.Cost)
			}
			for j, v := range t.Values(vals[:0]) {
				buf[off+j] = append(buf[off+j], v)
			}
		}
		return buf
	}
	text := make([][]string, len(cols))
	emit := func(buf [][]float64, rows int) ([][]float64, error) {
		// Write copies the values, so buf can be reused afterwards.
		err := pw.Write(&tabular.Frame{Columns: cols, Num: buf, Text: text, Len: rows})
		for j := range buf {
			buf[j] = buf[j][:0]
		}
		return buf, err
	}
	if err := produce(ctx, s, stream, n, encode, emit, progress); err != nil {
		pw.Abort()
		return err
	}
	return pw.Close()
}

// produce generates the first n trips of a stream a chunk at a time on
// s.Workers goroutines. encode turns the rows trips of one chunk, drawn
// from r, into a T, appending to buf: the zero T, or one that emit has
// given back to be reused. emit gets the chunks in stream order on the
// calling goroutine and gives back the T emptied for reuse. progress, if
// not nil, is told the rows emitted so far after each chunk.
func produce[T any](ctx context.Context, s Spec, stream Stream, n int64,
	encode func(buf T, c *calendar, r *rng, rows int) T, emit func(buf T, rows int) (T, error), progress func(done int64)) error {
	c := s.calendar()
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunks := (n + chunkRows - 1) / chunkRows

	// A producer hands chunks to workers and, in the same order, to this
	// goroutine, which emits each as soon as it and those before it are
	// done. The queue's capacity bounds the chunks in flight, and so memory.
	type job struct {
		chunk int64
		out   chan T
	}
	done := make(chan struct{})
	defer close(done)
	jobs := make(chan job)
	queue := make(chan job, 2*workers)
	free := make(chan T, 2*workers+2)
	go func() {
		defer close(jobs)
		defer close(queue)
		for ch := int64(0); ch < chunks; ch++ {
			j := job{chunk: ch, out: make(chan T, 1)}
			select {
			case queue <- j:
			case <-done:
				return
			}
			select {
			case jobs <- j:
			case <-done:
				return
			}
		}
	}()
	for range workers {
		go func() {
			for j := range jobs {
				var buf T
				select {
				case buf = <-free:
				default:
				}
				rows := min(int64(chunkRows), n-j.chunk*chunkRows)
				j.out <- encode(buf, c, newRNG(s.Seed, stream, j.chunk), int(rows))
			}
		}()
	}
	var written int64
	for j := range queue {
		buf := <-j.out
		if err := ctx.Err(); err != nil {
			return err
		}
		rows := min(int64(chunkRows), n-j.chunk*chunkRows)
		buf, err := emit(buf, int(rows))
		if err != nil {
			return err
		}
		select {
		case free <- buf:
		default:
		}
		written += rows
		if progress != nil {
			progress(written)
		}
	}
	return nil
}

// WriteRequest writes the first n trips of a stream as an online endpoint
// request, {"input_data": [[...], ...]}, each row's values in Features
// order.
func (s Spec) WriteRequest(w io.Writer, stream Stream, n int) error {
	if n < 1 {
		n = RequestRows
	}
	b := []byte(`{"input_data": [`)
	s.Trips(stream, int64(n), func(i int64, t *Trip) bool {
		if i > 0 {
			b = append(b, ",\n                "...)
		}
		b = append(b, '[')
		b = appendFeatures(b, t)
		b = append(b, ']')
		return true
	})
	b = append(b, "]\n}\n"...)
	_, err := w.Write(b)
	return err
}

// appendRow appends one CSV line.
func appendRow(b []byte, t *Trip, label bool) []byte {
	if label {
		b = appendFixed(b, t.Cost, 2)
		b = append(b, ',')
	}
	b = appendFeatures(b, t)
	return append(b, '\n')
}

// appendFeatures appends the trip's features in Features order, separated
// by commas.
func appendFeatures(b []byte, t *Trip) []byte {
	b = appendFixed(b, t.Distance, 2)
	b = append(b, ',')
	b = appendFixed(b, t.DropoffLatitude, 6)
	b = append(b, ',')
	b = appendFixed(b, t.DropoffLongitude, 6)
	b = append(b, ',')
	b = appendSmall(b, t.Passengers)
	b = append(b, ',')
	b = appendFixed(b, t.PickupLatitude, 6)
	b = append(b, ',')
	b = appendFixed(b, t.PickupLongitude, 6)
	b = append(b, ',')
	b = appendSmall(b, t.StoreForward)
	b = append(b, ',')
	b = appendSmall(b, t.Vendor)
	for _, w := range [2]*When{&t.Pickup, &t.Dropoff} {
		b = append(b, ',')
		b = appendSmall(b, w.Weekday)
		b = append(b, ',')
		b = appendSmall(b, w.Month)
		b = append(b, ',')
		b = appendSmall(b, w.Monthday)
		b = append(b, ',')
		b = appendSmall(b, w.Hour)
		b = append(b, ',')
		b = appendSmall(b, w.Minute)
		b = append(b, ',')
		b = appendSmall(b, w.Second)
	}
	return b
}

// appendSmall appends a non-negative integer below 100 quickly, and any
// other through strconv.
func appendSmall(b []byte, v int) []byte {
	switch {
	case v >= 0 && v < 10:
		return append(b, byte('0'+v))
	case v >= 10 && v < 100:
		return append(b, byte('0'+v/10), byte('0'+v%10))
	}
	return strconv.AppendInt(b, int64(v), 10)
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// appendFixed appends v rounded to dec decimals (1 to 8), dropping
// trailing zeros after the first decimal: 6.0, 1.8, 0.83, -73.976112.
func appendFixed(b []byte, v float64, dec int) []byte {
	n := int64(math.Round(v * pow10[dec]))
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var frac [8]byte
	for i := dec - 1; i >= 0; i-- {
		frac[i] = byte('0' + n%10)
		n /= 10
	}
	end := dec
	for end > 1 && frac[end-1] == '0' {
		end--
	}
	if n < 100 {
		b = appendSmall(b, int(n))
	} else {
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, '.')
	return append(b, frac[:end]...)
}

// Progress reports how far Generate has come writing one file.
type Progress func(file string, done, total int64)

// Generate writes DataFile (rows trips with their cost), BatchFile
// (batchRows other trips, features only) and RequestFile (RequestRows
// more) into dir, creating it if needed; with s.Format Parquet the first
// two are DataParquetFile and BatchParquetFile. Each file appears complete
// or not at all: it is written under a temporary name and renamed.
// progress may be nil. It returns the paths written.
func Generate(ctx context.Context, dir string, s Spec, rows, batchRows int64, progress Progress) ([]string, error) {
	if rows < 1 {
		return nil, errors.New("taxigen: at least one row is needed")
	}
	if batchRows < 0 {
		return nil, errors.New("taxigen: negative batch row count")
	}
	dataName, batchName := DataFile, BatchFile
	switch s.Format {
	case "", CSV:
	case Parquet:
		dataName, batchName = DataParquetFile, BatchParquetFile
	default:
		return nil, fmt.Errorf("taxigen: format %q is not csv or parquet", s.Format)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	progressOf := func(name string, n int64) func(int64) {
		if progress == nil {
			return nil
		}
		return func(done int64) { progress(name, done, n) }
	}
	table := func(name string, stream Stream, n int64, label bool) func(string) error {
		if s.Format == Parquet {
			return func(path string) error {
				return s.WriteParquet(ctx, path, stream, n, label, progressOf(name, n))
			}
		}
		return func(path string) error {
			return writeAtomically(path, func(w io.Writer) error {
				return s.WriteCSV(ctx, w, stream, n, label, progressOf(name, n))
			})
		}
	}
	files := []struct {
		name  string
		write func(path string) error
	}{
		{dataName, table(dataName, StreamData, rows, true)},
		{batchName, table(batchName, StreamBatch, batchRows, false)},
		{RequestFile, func(path string) error {
			return writeAtomically(path, func(w io.Writer) error { return s.WriteRequest(w, StreamRequest, s.RequestRows) })
		}},
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := f.write(p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeAtomically creates path through a temporary file in its folder,
// renamed into place once write has succeeded.
func writeAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
