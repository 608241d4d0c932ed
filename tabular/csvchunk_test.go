package tabular

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCSVChunksCutWholeRecords cuts a file whose second record spans
// lines and is longer than the read buffer, and parses each chunk.
func TestCSVChunksCutWholeRecords(t *testing.T) {
	long := strings.Repeat("word ", 400_000) // 2 MB, more than the 1 MiB buffer
	data := "\ufeffa, b\n1,2\n3,\"" + long + "\n" + long + "\"\n\n5,6\n7,x\n8"
	path := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCSVChunks(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := strings.Join(c.Columns(), "|"); got != "a|b" {
		t.Fatalf("columns %q", got)
	}
	var bad []string
	var got []string
	for {
		ch, err := c.Next(2)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Ends) != ch.Rows {
			t.Fatalf("%d ends for %d rows", len(ch.Ends), ch.Rows)
		}
		f, err := ch.Parse(c.Columns(), []string{"b", "a"}, nil, func(row int64, err error) {
			bad = append(bad, strings.Split(err.Error(), ":")[0]+"@"+string(rune('0'+row)))
		})
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < f.Len; r++ {
			got = append(got, f.Value(1, r)+"→"+f.Value(0, r)+"@"+string(rune('0'+f.RowNumber(r))))
		}
	}
	if strings.Join(got, " ") != "1→2@1 5→6@3" {
		t.Errorf("rows %q", got)
	}
	// Row 2 (the long text in column b), row 4 (x), row 5 (one field).
	if strings.Join(bad, " ") != "column b@2 column b@4 has 1 fields, the header has 2@5" {
		t.Errorf("bad rows %q", bad)
	}
	if _, err := openCSVText(t, "no-header.csv", ""); err == nil || !strings.Contains(err.Error(), "empty file") {
		t.Errorf("empty file: %v", err)
	}
}

func openCSVText(t *testing.T, name, data string) (*CSVChunker, error) {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return OpenCSVChunks(path)
}

// TestCSVChunksEndAMalformedRecordAtItsLine: a quote where RFC 4180 allows
// none (inside an unquoted field, or after a closing quote) fails that
// record alone; the records after it are cut and parsed as usual, the
// way the whole-file reader (encoding/csv) reads them. Quotes split across
// the read buffer are followed too.
func TestCSVChunksEndAMalformedRecordAtItsLine(t *testing.T) {
	long := strings.Repeat("w", 1<<20-3) // puts the "" below across the 1 MiB buffer's edge
	data := "a,b\n" +
		"1,5\" screen\n" + // row 1: bare quote
		"2,\"ok, \"\"quoted\"\"\"\n" + // row 2: fine
		"\"3\"x,4\n" + // row 3: text after a closing quote
		"5,\"spans\nlines\"\n" + // row 4: fine
		"6,\"" + long + "\"\"" + long + "\"\n" + // row 5: fine, long
		"7,8\n" // row 6
	c, err := openCSVText(t, "in.csv", data)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var bad []int64
	var rows []string
	for {
		ch, err := c.Next(10)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f, err := ch.Parse(c.Columns(), []string{"a", "b"}, []bool{false, true}, func(row int64, err error) { bad = append(bad, row) })
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < f.Len; r++ {
			v := f.Value(1, r)
			if len(v) > 20 {
				v = v[:5] + "…"
			}
			rows = append(rows, f.Value(0, r)+"="+v)
		}
	}
	if got := strings.Join(rows, " | "); got != `2=ok, "quoted" | 5=spans`+"\n"+`lines | 6=wwwww… | 7=8` {
		t.Errorf("rows %q", got)
	}
	if len(bad) != 2 || bad[0] != 1 || bad[1] != 3 {
		t.Errorf("bad rows %v, want 1 and 3", bad)
	}
}
