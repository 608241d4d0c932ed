package drift

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/wharfml/wharf/internal/testneed"
)

// synthetic is a Dataset generated as it is read, so that only what the
// computation holds takes memory.
type synthetic struct {
	rows  int64
	seed  uint64
	shift float64
}

func (s synthetic) Columns() []Column {
	return []Column{{"a", Numerical, TypeDouble}, {"b", Numerical, TypeDouble}, {"c", Categorical, TypeString}}
}

func (s synthetic) Rows() int64 { return s.rows }

func (s synthetic) gen(name string, fn func(r *rand.Rand, n int) error) error {
	r := rand.New(rand.NewPCG(s.seed, uint64(name[0])))
	for done := int64(0); done < s.rows; done += scanBatch {
		if err := fn(r, int(min(scanBatch, s.rows-done))); err != nil {
			return err
		}
	}
	return nil
}

func (s synthetic) ScanFloat(ctx context.Context, name string, fn func(Floats) error) error {
	buf := make([]float64, scanBatch)
	return s.gen(name, func(r *rand.Rand, n int) error {
		for i := range buf[:n] {
			buf[i] = r.NormFloat64() + s.shift
		}
		return fn(Floats{Values: buf[:n]})
	})
}

var categoryNames = []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}

func (s synthetic) ScanString(ctx context.Context, name string, fn func(Strings) error) error {
	buf := make([]string, scanBatch)
	return s.gen(name, func(r *rand.Rand, n int) error {
		for i := range buf[:n] {
			buf[i] = categoryNames[min(int(r.ExpFloat64()*2+s.shift), len(categoryNames)-1)]
		}
		return fn(Strings{Values: buf[:n]})
	})
}

// TestMemoryDoesNotGrowWithRows computes drift over 3,000,000 and
// 9,000,000 rows, each in a child process, with sort chunks of 131,072
// values merged 4 runs at a time: both sort in runs on disk, and the larger
// one's peak resident memory (VmHWM) is no larger than the smaller one's
// but for a margin far below the 96 MB its two numerical columns' extra
// 6 M rows would take in memory. (Below about 3 M rows the peak still
// climbs a few MB to where the merge's buffers settle, so a smaller run
// would not be a fair baseline.)
func TestMemoryDoesNotGrowWithRows(t *testing.T) {
	if os.Getenv("DRIFT_MEMORY_CHILD_ROWS") != "" {
		return
	}
	if testing.Short() {
		t.Skip("computes drift over 12 M generated rows")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		testneed.Missing(t, "no /proc to read peak memory from")
	}
	peaks := map[int64]int64{}
	for _, rows := range []int64{3_000_000, 9_000_000} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$", "-test.v")
		cmd.Env = append(os.Environ(), "DRIFT_MEMORY_CHILD_ROWS="+strconv.FormatInt(rows, 10))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`peak (\d+) kB`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("child said no peak:\n%s", out)
		}
		peaks[rows], _ = strconv.ParseInt(string(m[1]), 10, 64)
		t.Logf("%d rows: peak RSS %d kB", rows, peaks[rows])
	}
	if small, large := peaks[3_000_000], peaks[9_000_000]; large > small+8<<10 {
		t.Errorf("peak RSS %d kB at 9 M rows, %d kB at 3 M: memory grows with rows", large, small)
	}
}

// TestMemoryChild is the child of TestMemoryDoesNotGrowWithRows.
func TestMemoryChild(t *testing.T) {
	rows, _ := strconv.ParseInt(os.Getenv("DRIFT_MEMORY_CHILD_ROWS"), 10, 64)
	if rows == 0 {
		t.Skip("run by TestMemoryDoesNotGrowWithRows")
	}
	ChunkValues, MaxMergeRuns = 1<<17, 4
	debug.SetMemoryLimit(32 << 20)
	s := Signal{Type: DataDrift, Thresholds: map[string]float64{
		"numerical.normalized_wasserstein_distance": 0.1, "numerical.jensen_shannon_distance": 0.1,
		"categorical.jensen_shannon_distance": 0.1}}
	res, err := Evaluate(context.Background(), s, synthetic{rows, 1, 0}, synthetic{rows, 2, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r.Passed {
			t.Errorf("a shift of half a standard deviation passed: %+v", r)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/self/status")
	}
	fmt.Printf("peak %s kB\n", m[1])
}
