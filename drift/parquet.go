package drift

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// parquetData is a Dataset of Parquet files with the same columns, read
// in place one column at a time.
type parquetData struct {
	files []string
	cols  []Column
	rows  int64
}

func openParquetFile(path string) (*file.Reader, *pqarrow.FileReader, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a readable Parquet file: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return pf, fr, nil
}

func openParquet(files []string) (Dataset, error) {
	d := &parquetData{files: files}
	var ints []int
	for fi, path := range files {
		pf, fr, err := openParquetFile(path)
		if err != nil {
			return nil, err
		}
		d.rows += pf.NumRows()
		sc, err := fr.Schema()
		pf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if fi > 0 {
			for _, c := range d.cols {
				if len(sc.FieldIndices(c.Name)) == 0 {
					return nil, fmt.Errorf("%s: no column %s, which %s has", path, c.Name, files[0])
				}
			}
			continue
		}
		for i, f := range sc.Fields() {
			t := f.Type
			if dt, ok := t.(*arrow.DictionaryType); ok {
				t = dt.ValueType
			}
			c := Column{Name: f.Name}
			switch t.ID() {
			case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
				c.Type, c.Kind = TypeDouble, Numerical
			case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
				c.Type = TypeInteger
				ints = append(ints, i)
			case arrow.BOOL:
				c.Type, c.Kind = TypeBoolean, Categorical
			case arrow.STRING, arrow.LARGE_STRING:
				c.Type, c.Kind = TypeString, Categorical
			default:
				return nil, fmt.Errorf("%s: column %s has type %s; numbers, booleans and strings are supported", path, f.Name, f.Type)
			}
			d.cols = append(d.cols, c)
		}
	}
	// Azure's heuristic for integers needs their distinct values.
	for _, i := range ints {
		distinct := map[float64]struct{}{}
		err := d.ScanFloat(context.Background(), d.cols[i].Name, func(b Floats) error {
			if distinct == nil {
				return nil
			}
			for _, v := range b.Values {
				if v == v {
					distinct[v] = struct{}{}
				}
			}
			if len(distinct) > distinctCap {
				distinct = nil
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		d.cols[i].Kind = integerKind(distinct, d.rows)
	}
	return d, nil
}

func (d *parquetData) Columns() []Column { return append([]Column(nil), d.cols...) }

func (d *parquetData) Rows() int64 { return d.rows }

// scan reads one column of every file as Arrow arrays.
func (d *parquetData) scan(ctx context.Context, name string, fn func(arrow.Array) error) error {
	for _, path := range d.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		pf, fr, err := openParquetFile(path)
		if err != nil {
			return err
		}
		err = func() error {
			defer pf.Close()
			idx := pf.MetaData().Schema.ColumnIndexByName(name)
			if idx < 0 {
				return fmt.Errorf("%s: no column %s", path, name)
			}
			rr, err := fr.GetRecordReader(ctx, []int{idx}, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			defer rr.Release()
			for rr.Next() {
				if err := fn(rr.RecordBatch().Column(0)); err != nil {
					return err
				}
			}
			if err := rr.Err(); err != nil {
				return fmt.Errorf("%s: column %s: %w", path, name, err)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *parquetData) ScanFloat(ctx context.Context, name string, fn func(Floats) error) error {
	var buf []float64
	return d.scan(ctx, name, func(a arrow.Array) error {
		if f, ok := a.(*array.Float64); ok && f.NullN() == 0 {
			return fn(Floats{Values: f.Float64Values()})
		}
		n := a.Len()
		if cap(buf) < n {
			buf = make([]float64, n)
		}
		buf = buf[:n]
		var invalid []bool
		get, ok := floatGetter(a)
		if !ok {
			// Not numbers: parse text, anything else is invalid.
			text, _ := stringGetter(a)
			for i := range buf {
				buf[i] = math.NaN()
				if a.IsNull(i) {
					continue
				}
				if text != nil {
					if v, err := strconv.ParseFloat(text(i), 64); err == nil {
						buf[i] = v
						continue
					}
				}
				if invalid == nil {
					invalid = make([]bool, n)
				}
				invalid[i] = true
			}
			return fn(Floats{Values: buf, Invalid: invalid})
		}
		for i := range buf {
			if a.IsNull(i) {
				buf[i] = math.NaN()
			} else {
				buf[i] = get(i)
			}
		}
		return fn(Floats{Values: buf})
	})
}

func (d *parquetData) ScanString(ctx context.Context, name string, fn func(Strings) error) error {
	var buf []string
	return d.scan(ctx, name, func(a arrow.Array) error {
		n := a.Len()
		if cap(buf) < n {
			buf = make([]string, n)
		}
		buf = buf[:n]
		var null []bool
		if a.NullN() > 0 {
			null = make([]bool, n)
		}
		text, ok := stringGetter(a)
		if !ok {
			num, _ := floatGetter(a)
			if num == nil {
				return fmt.Errorf("column %s: unsupported type %s", name, a.DataType())
			}
			text = func(i int) string { return formatNumber(num(i)) }
		}
		for i := range buf {
			if null != nil && a.IsNull(i) {
				null[i] = true
				buf[i] = ""
				continue
			}
			buf[i] = text(i)
		}
		return fn(Strings{Values: buf, Null: null})
	})
}

// floatGetter reads a numeric Arrow array's values as float64.
func floatGetter(a arrow.Array) (func(int) float64, bool) {
	switch x := a.(type) {
	case *array.Float64:
		return x.Value, true
	case *array.Float32:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Float16:
		return func(i int) float64 { return float64(x.Value(i).Float32()) }, true
	case *array.Int64:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Int32:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Int16:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Int8:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Uint64:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Uint32:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Uint16:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Uint8:
		return func(i int) float64 { return float64(x.Value(i)) }, true
	case *array.Decimal128:
		dt := x.DataType().(*arrow.Decimal128Type)
		return func(i int) float64 { return x.Value(i).ToFloat64(dt.Scale) }, true
	case *array.Decimal256:
		dt := x.DataType().(*arrow.Decimal256Type)
		return func(i int) float64 { return x.Value(i).ToFloat64(dt.Scale) }, true
	case *array.Dictionary:
		get, ok := floatGetter(x.Dictionary())
		if !ok {
			return nil, false
		}
		return func(i int) float64 { return get(x.GetValueIndex(i)) }, true
	}
	return nil, false
}

// stringGetter reads a text or boolean Arrow array's values as strings.
func stringGetter(a arrow.Array) (func(int) string, bool) {
	switch x := a.(type) {
	case *array.String:
		return x.Value, true
	case *array.LargeString:
		return x.Value, true
	case *array.Boolean:
		return func(i int) string { return strconv.FormatBool(x.Value(i)) }, true
	case *array.Dictionary:
		get, ok := stringGetter(x.Dictionary())
		if !ok {
			return nil, false
		}
		return func(i int) string { return get(x.GetValueIndex(i)) }, true
	}
	return nil, false
}
