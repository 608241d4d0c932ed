package tabular

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// parquetReader reads a Parquet file's flat columns through Arrow record
// batches; numbers of every width become float64, strings stay strings.
type parquetReader struct {
	pf   *file.Reader
	rr   pqarrow.RecordReader
	cols []string
	row  int64
}

func openParquet(path string, opt Options) (*parquetReader, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable Parquet file: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(opt.BatchRows), Parallel: true}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cols := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		cols[i] = f.Name
		if !supported(f.Type) {
			pf.Close()
			return nil, fmt.Errorf("%s: column %s has type %s; numbers, booleans and strings are supported", path, f.Name, f.Type)
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &parquetReader{pf: pf, rr: rr, cols: cols}, nil
}

func supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL, arrow.STRING, arrow.LARGE_STRING:
		return true
	case arrow.DICTIONARY:
		return supported(t.(*arrow.DictionaryType).ValueType)
	}
	return false
}

func (p *parquetReader) Columns() []string { return p.cols }

func (p *parquetReader) Close() error {
	p.rr.Release()
	return p.pf.Close()
}

func (p *parquetReader) Next() (*Frame, error) {
	rec, err := p.rr.Read()
	if err == io.EOF || (err == nil && rec == nil) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	f := &Frame{Columns: p.cols, Num: make([][]float64, len(p.cols)), Text: make([][]string, len(p.cols)), Len: n, FirstRow: p.row + 1}
	for i := range p.cols {
		if err := fill(f, i, rec.Column(i)); err != nil {
			return nil, fmt.Errorf("column %s: %w", p.cols[i], err)
		}
	}
	p.row += int64(n)
	return f, nil
}

// fill copies an Arrow column into the frame; the record is reused by
// the reader, so nothing may point into it afterwards.
func fill(f *Frame, i int, col arrow.Array) error {
	n := col.Len()
	num := func(get func(int) float64) {
		out := make([]float64, n)
		for r := 0; r < n; r++ {
			if col.IsNull(r) {
				out[r] = math.NaN()
			} else {
				out[r] = get(r)
			}
		}
		f.Num[i] = out
	}
	switch a := col.(type) {
	case *array.Float64:
		if a.NullN() == 0 {
			f.Num[i] = append([]float64(nil), a.Float64Values()...)
			return nil
		}
		num(a.Value)
	case *array.Float32:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Int64:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Int32:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Int16:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Int8:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Uint64:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Uint32:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Uint16:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Uint8:
		num(func(r int) float64 { return float64(a.Value(r)) })
	case *array.Boolean:
		num(func(r int) float64 {
			if a.Value(r) {
				return 1
			}
			return 0
		})
	case *array.String:
		out := make([]string, n)
		for r := range out {
			out[r] = a.Value(r)
		}
		f.Text[i] = out
	case *array.LargeString:
		out := make([]string, n)
		for r := range out {
			out[r] = a.Value(r)
		}
		f.Text[i] = out
	case *array.Dictionary:
		values := a.Dictionary()
		tmp := &Frame{Num: make([][]float64, 1), Text: make([][]string, 1)}
		if err := fill(tmp, 0, values); err != nil {
			return err
		}
		if tmp.Num[0] != nil {
			out := make([]float64, n)
			for r := range out {
				if a.IsNull(r) {
					out[r] = math.NaN()
				} else {
					out[r] = tmp.Num[0][a.GetValueIndex(r)]
				}
			}
			f.Num[i] = out
		} else {
			out := make([]string, n)
			for r := range out {
				if !a.IsNull(r) {
					out[r] = tmp.Text[0][a.GetValueIndex(r)]
				}
			}
			f.Text[i] = out
		}
	default:
		return fmt.Errorf("unsupported type %s", col.DataType())
	}
	return nil
}

// ParquetWriter writes frames as a Parquet file: numeric columns as
// DOUBLE, text columns as UTF-8 strings, Snappy-compressed, one row group
// per RowGroupRows rows.
type ParquetWriter struct {
	f      *os.File
	w      *pqarrow.FileWriter
	schema *arrow.Schema
	path   string
	tmp    string
}

// CreateParquet starts a Parquet file of the given columns; numeric[i]
// tells whether column i holds numbers. The file appears at path only
// when Close succeeds.
func CreateParquet(path string, cols []string, numeric []bool) (*ParquetWriter, error) {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		t := arrow.DataType(arrow.PrimitiveTypes.Float64)
		if !numeric[i] {
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: c, Type: t, Nullable: true}
	}
	sc := arrow.NewSchema(fields, nil)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(1<<20))
	w, err := pqarrow.NewFileWriter(sc, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &ParquetWriter{f: f, w: w, schema: sc, path: path, tmp: tmp}, nil
}

// Write appends a frame whose columns are the writer's, in order.
func (p *ParquetWriter) Write(fr *Frame) error {
	if fr.Len == 0 {
		return nil
	}
	if len(fr.Columns) != p.schema.NumFields() {
		return fmt.Errorf("frame has %d columns, the file %d", len(fr.Columns), p.schema.NumFields())
	}
	cols := make([]arrow.Array, len(fr.Columns))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range fr.Columns {
		if p.schema.Field(i).Type.ID() == arrow.FLOAT64 {
			vals, err := fr.Numeric(i)
			if err != nil {
				return err
			}
			b := array.NewFloat64Builder(memory.DefaultAllocator)
			var valid []bool
			for r, v := range vals {
				if math.IsNaN(v) {
					if valid == nil {
						valid = make([]bool, len(vals))
						for k := 0; k < r; k++ {
							valid[k] = true
						}
					}
				} else if valid != nil {
					valid[r] = true
				}
			}
			b.AppendValues(vals, valid)
			cols[i] = b.NewArray()
			b.Release()
			continue
		}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		for r := 0; r < fr.Len; r++ {
			b.Append(fr.Value(i, r))
		}
		cols[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(p.schema, cols, int64(fr.Len))
	defer rec.Release()
	return p.w.WriteBuffered(rec)
}

// Close finishes the file and moves it into place.
func (p *ParquetWriter) Close() error {
	// The Arrow writer closes the file too.
	if err := p.w.Close(); err != nil {
		os.Remove(p.tmp)
		return err
	}
	return os.Rename(p.tmp, p.path)
}

// Abort drops a file being written.
func (p *ParquetWriter) Abort() {
	p.w.Close()
	os.Remove(p.tmp)
}
