package linear

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/tabular"
)

// TestTrainIsReproducible trains on the same file again and again with
// more workers than cores: however the goroutines are scheduled, the model
// must be the same to the last bit, with either solver.
func TestTrainIsReproducible(t *testing.T) {
	_, cols, y := collinearData(60000, 0.5)
	var b strings.Builder
	b.WriteString("a,b,c,y\n")
	for i := range y {
		fmt.Fprintf(&b, "%v,%v,%v,%v\n", cols[0][i], cols[1][i], cols[2][i], y[i])
	}
	path := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() (tabular.Reader, error) { return tabular.Open(path, tabular.Options{BatchRows: 1000}) }
	for _, solver := range []string{SolverCholesky, SolverQR} {
		var first []uint64
		for run := range 8 {
			m, _, err := Train(open, TrainOptions{Target: "y", Solver: solver, Workers: 5})
			if err != nil {
				t.Fatal(err)
			}
			bits := []uint64{math.Float64bits(m.Intercept)}
			for _, c := range m.Coef {
				bits = append(bits, math.Float64bits(c))
			}
			if run == 0 {
				first = bits
				continue
			}
			for i := range bits {
				if bits[i] != first[i] {
					t.Fatalf("%s, run %d: parameter %d is %v, was %v in the first run", solver, run,
						i, math.Float64frombits(bits[i]), math.Float64frombits(first[i]))
				}
			}
		}
	}
}
