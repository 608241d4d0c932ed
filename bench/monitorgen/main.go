// Command monitorgen writes a reference and a current Parquet file for
// bench/monitoring.sh: the same columns, drawn from the same
// distributions but for the shifted ones, deterministically from a seed.
//
//	monitorgen -rows 1000000 -numerical 15 -categorical 5 -shift-numerical 3 -shift-categorical 2 -out DIR
//
// Numerical column nI is normal with mean I and standard deviation 1+I/10;
// a shifted one's current mean is half a standard deviation higher.
// Categorical column cJ takes one of 12 values, geometrically weighted;
// a shifted one's current weights are reversed. The shifted columns are
// the first of each kind. It prints the shifted column names, one a line.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/wharfml/wharf/tabular"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows in each file")
	numerical := flag.Int("numerical", 15, "numerical columns")
	categorical := flag.Int("categorical", 5, "categorical columns")
	shiftNum := flag.Int("shift-numerical", 3, "numerical columns shifted in the current file")
	shiftCat := flag.Int("shift-categorical", 2, "categorical columns shifted in the current file")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", ".", "folder for reference.parquet and current.parquet")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	var cols []string
	var numeric []bool
	for i := 0; i < *numerical; i++ {
		cols = append(cols, fmt.Sprintf("n%d", i))
		numeric = append(numeric, true)
	}
	for j := 0; j < *categorical; j++ {
		cols = append(cols, fmt.Sprintf("c%d", j))
		numeric = append(numeric, false)
	}
	levels := make([]string, 12)
	for k := range levels {
		levels[k] = fmt.Sprintf("level_%02d", k)
	}
	for f, name := range []string{"reference", "current"} {
		current := f == 1
		w, err := tabular.CreateParquet(filepath.Join(*out, name+".parquet"), cols, numeric)
		if err != nil {
			fail(err)
		}
		r := rand.New(rand.NewPCG(*seed, uint64(f)))
		const batch = 65536
		for done := 0; done < *rows; done += batch {
			n := min(batch, *rows-done)
			fr := &tabular.Frame{Columns: cols, Num: make([][]float64, len(cols)), Text: make([][]string, len(cols)), Len: n}
			for i := 0; i < *numerical; i++ {
				mean, sd := float64(i), 1+float64(i)/10
				if current && i < *shiftNum {
					mean += sd / 2
				}
				v := make([]float64, n)
				for k := range v {
					v[k] = mean + sd*r.NormFloat64()
				}
				fr.Num[i] = v
			}
			for j := 0; j < *categorical; j++ {
				v := make([]string, n)
				for k := range v {
					l := min(int(r.ExpFloat64()*3), len(levels)-1)
					if current && j < *shiftCat {
						l = len(levels) - 1 - l
					}
					v[k] = levels[l]
				}
				fr.Text[*numerical+j] = v
			}
			if err := w.Write(fr); err != nil {
				w.Abort()
				fail(err)
			}
		}
		if err := w.Close(); err != nil {
			fail(err)
		}
	}
	for i := 0; i < min(*shiftNum, *numerical); i++ {
		fmt.Printf("n%d\n", i)
	}
	for j := 0; j < min(*shiftCat, *categorical); j++ {
		fmt.Printf("c%d\n", j)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "monitorgen:", err)
	os.Exit(1)
}
