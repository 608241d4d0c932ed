package drift

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Close releases what a Dataset opened by OpenFiles or OpenCollected
// holds (temporary column files); other Datasets are left alone.
func Close(d Dataset) error {
	if c, ok := d.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type format int

const (
	formatCSV format = iota
	formatJSONL
	formatParquet
)

func formatOf(path string) (format, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return formatCSV, true
	case ".jsonl", ".json", ".ndjson":
		return formatJSONL, true
	case ".parquet", ".pq":
		return formatParquet, true
	}
	return 0, false
}

// dataFiles expands folders into their CSV, JSONL and Parquet files (in
// name order, hidden ones skipped, any depth).
func dataFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if _, ok := formatOf(p); !ok {
				return nil, fmt.Errorf("%s: not a .csv, .jsonl or .parquet file", p)
			}
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if q != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if _, ok := formatOf(q); ok && d.Type().IsRegular() {
				found = append(found, q)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s holds no .csv, .jsonl or .parquet file", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// OpenFiles opens CSV, JSONL and Parquet files (by extension; a folder
// means all its data files) as one Dataset. Parquet is read in place a
// column at a time; CSV and JSONL are read once into column files in a
// temporary folder, which Close removes. JSONL lines may be plain rows
// (flat objects) or the data collector's records, whose "data" array
// holds the rows. Parquet cannot be mixed with the text formats.
func OpenFiles(paths []string) (Dataset, error) {
	files, err := dataFiles(paths)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no data files given")
	}
	parquets := 0
	for _, f := range files {
		if k, _ := formatOf(f); k == formatParquet {
			parquets++
		}
	}
	if parquets == len(files) {
		return openParquet(files)
	}
	if parquets > 0 {
		return nil, errors.New("Parquet files cannot be mixed with CSV or JSONL files in one dataset")
	}
	return buildStore(len(files), func(s *store, i int) error {
		if k, _ := formatOf(files[i]); k == formatCSV {
			return s.readCSV(files[i])
		}
		return s.readJSONL(files[i], nil)
	})
}

// readCSV adds a CSV file with a header row; its columns are matched by
// name.
func (s *store) readCSV(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: empty file, no header row", path)
	}
	if err != nil {
		return fmt.Errorf("%s: header row: %w", path, err)
	}
	cols := make([]*storeColumn, len(head))
	seen := map[string]bool{}
	for i, h := range head {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" || seen[h] {
			return fmt.Errorf("%s: line 1, column %d: header %q is empty or repeated", path, i+1, h)
		}
		seen[h] = true
		if cols[i], err = s.column(h); err != nil {
			return err
		}
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) > len(cols) {
			line, _ := r.FieldPos(len(cols))
			return fmt.Errorf("%s: line %d: %d fields, the header has %d", path, line, len(rec), len(cols))
		}
		for i, v := range rec {
			cols[i].parseCell(v)
		}
		s.endRow()
	}
}

// maxLine is the longest JSONL line read (a record of a batch of rows).
const maxLine = 256 << 20

// readJSONL adds a JSONL file: each line a row object, or a data
// collector record whose "data" holds an array of row objects. keep, when
// set, decides from a record whether its rows are wanted, and may add
// fields of the record to each row.
func (s *store) readJSONL(path string, keep func(rec map[string]json.RawMessage) (extra map[string]any, ok bool, err error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("%s: line %d: not a JSON object: %v", path, line, err)
		}
		data, isRecord := rec["data"]
		_, hasSpec := rec["specversion"]
		_, hasCorr := rec["correlationid"]
		isRecord = isRecord && (hasSpec || hasCorr)
		var extra map[string]any
		if keep != nil {
			var ok bool
			if extra, ok, err = keep(rec); err != nil {
				return fmt.Errorf("%s: line %d: %v", path, line, err)
			} else if !ok {
				continue
			}
		}
		if !isRecord {
			if err := s.addRow(b, extra); err != nil {
				return fmt.Errorf("%s: line %d: %v", path, line, err)
			}
			continue
		}
		if string(rec["datainblob"]) == `"true"` {
			return fmt.Errorf("%s: line %d: field data: the rows are in a blob, which is not read", path, line)
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(data, &rows); err != nil {
			return fmt.Errorf("%s: line %d: field data: not an array of row objects: %v", path, line, err)
		}
		for i, row := range rows {
			if err := s.addRow(row, extra); err != nil {
				return fmt.Errorf("%s: line %d: field data[%d]: %v", path, line, i, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: line %d: %w", path, line+1, err)
	}
	return nil
}

// addRow adds one JSON row object, its keys in order of appearance.
func (s *store) addRow(b []byte, extra map[string]any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	t, err := d.Token()
	if err != nil || t != json.Delim('{') {
		return errors.New("a row is not a JSON object")
	}
	for d.More() {
		kt, err := d.Token()
		if err != nil {
			return err
		}
		key := kt.(string)
		var v any
		if err := d.Decode(&v); err != nil {
			return fmt.Errorf("field %s: %v", key, err)
		}
		c, err := s.column(key)
		if err != nil {
			return err
		}
		if c.rows > s.rows {
			return fmt.Errorf("field %s appears twice", key)
		}
		writeJSONValue(c, v)
	}
	for _, k := range sortedKeys(extra) {
		c, err := s.column(k)
		if err != nil {
			return err
		}
		if c.rows == s.rows {
			writeJSONValue(c, extra[k])
		}
	}
	s.endRow()
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func writeJSONValue(c *storeColumn, v any) {
	switch x := v.(type) {
	case nil:
		c.null()
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsNaN(f) {
			c.text(x.String())
			return
		}
		c.number(f, x.String())
	case float64:
		c.number(x, "")
	case bool:
		c.boolean(x)
	case string:
		c.text(x)
	default:
		b, _ := json.Marshal(x)
		c.text(string(b))
	}
}
