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
