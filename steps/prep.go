package steps

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/tabular"
)

// SplitConfig is one run of Split (`wharf prep split`).
type SplitConfig struct {
	RawData string // CSV or Parquet file, or a folder of them
	// TrainData, ValData and TestData are the folders the three sets are
	// written to, as train.<format>, val.<format> and test.<format>.
	TrainData, ValData, TestData string
	Format                       string // parquet or csv
	Seed                         uint64
	// TrainFraction and ValFraction are the shares of rows drawn for
	// training and validation; the rest is the test set.
	TrainFraction, ValFraction float64
	Tracking                   *Tracking
}

// SplitResult counts the rows of each set.
type SplitResult struct {
	TrainRows int64  `json:"train_rows"`
	ValRows   int64  `json:"val_rows"`
	TestRows  int64  `json:"test_rows"`
	Format    string `json:"format"`
}

// Split splits data into train, validation and test sets, streaming, by a
// seeded draw per row, and logs the row counts and the seed to the step's
// run. Warnings go to log.
func Split(ctx context.Context, cfg SplitConfig, log io.Writer) (*SplitResult, error) {
	if cfg.TrainFraction <= 0 || cfg.ValFraction < 0 || cfg.TrainFraction+cfg.ValFraction > 1 {
		return nil, wharf.Errorf(wharf.EINVALID, "train fraction %g and validation fraction %g must be positive and sum to at most 1", cfg.TrainFraction, cfg.ValFraction)
	}
	if cfg.Format != "parquet" && cfg.Format != "csv" {
		return nil, wharf.Errorf(wharf.EINVALID, "format %q is not parquet or csv", cfg.Format)
	}
	r, err := tabular.OpenAll(cfg.RawData, tabular.Options{})
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%v", err)
	}
	defer r.Close()
	outs := []string{cfg.TrainData, cfg.ValData, cfg.TestData}
	names := []string{"train", "val", "test"}
	writers := make([]frameWriter, 3)
	defer func() {
		for _, w := range writers {
			if w != nil {
				w.Abort()
			}
		}
	}()
	// Each row draws its set from one seeded stream, so the split is the
	// same for the same data and seed whatever the batch sizes, and needs
	// no shuffle of the whole data.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7761726670726570))
	counts := make([]int64, 3)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "%s: %v", cfg.RawData, err)
		}
		idx := make([][]int, 3)
		for row := 0; row < f.Len; row++ {
			u := rng.Float64()
			set := 2
			if u < cfg.TrainFraction {
				set = 0
			} else if u < cfg.TrainFraction+cfg.ValFraction {
				set = 1
			}
			idx[set] = append(idx[set], row)
		}
		for s := range writers {
			if writers[s] == nil {
				if writers[s], err = newFrameWriter(outs[s], names[s], cfg.Format, f); err != nil {
					return nil, err
				}
			}
			if err := writers[s].Write(f.Take(idx[s])); err != nil {
				return nil, fmt.Errorf("%s: %w", outs[s], err)
			}
			counts[s] += int64(len(idx[s]))
		}
	}
	if writers[0] == nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%s has no rows", cfg.RawData)
	}
	for s, w := range writers {
		if err := w.Close(); err != nil {
			return nil, err
		}
		writers[s] = nil
	}
	metrics := map[string]float64{"train_rows": float64(counts[0]), "val_rows": float64(counts[1]), "test_rows": float64(counts[2])}
	cfg.Tracking.logOrWarn(ctx, orDiscard(log), "metrics not logged to tracking", metrics, map[string]string{"split_seed": fmt.Sprint(cfg.Seed)})
	return &SplitResult{TrainRows: counts[0], ValRows: counts[1], TestRows: counts[2], Format: cfg.Format}, nil
}

// frameWriter writes frames to a CSV or Parquet file that appears only
// once complete.
type frameWriter interface {
	Write(*tabular.Frame) error
	Close() error
	Abort()
}

// newFrameWriter starts dir/name.parquet or dir/name.csv with the columns
// and types of the first frame.
func newFrameWriter(dir, name, format string, first *tabular.Frame) (frameWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+"."+format)
	if format == "parquet" {
		numeric := make([]bool, len(first.Columns))
		for i := range numeric {
			numeric[i] = first.Num[i] != nil
		}
		return tabular.CreateParquet(path, first.Columns, numeric)
	}
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	return &csvFileWriter{CSVWriter: tabular.NewCSVWriter(fh, first.Columns), f: fh, path: path, tmp: tmp}, nil
}

// csvFileWriter writes a CSV file under a temporary name and renames it
// when complete, so a crash never leaves half a set behind.
type csvFileWriter struct {
	*tabular.CSVWriter
	f         *os.File
	path, tmp string
}

func (c *csvFileWriter) Close() error {
	if err := c.CSVWriter.Close(); err != nil {
		c.Abort()
		return err
	}
	if err := c.f.Close(); err != nil {
		os.Remove(c.tmp)
		return err
	}
	return os.Rename(c.tmp, c.path)
}

func (c *csvFileWriter) Abort() {
	c.f.Close()
	os.Remove(c.tmp)
}
