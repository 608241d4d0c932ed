package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/tabular"
)

// prepCommand holds the built-in data preparation steps.
func (a *app) prepCommand() *cobra.Command {
	prep := &cobra.Command{Use: "prep", Short: "Built-in data preparation steps (run as pipeline steps)"}
	var raw, trainOut, valOut, testOut, format string
	var seed uint64
	var trainFrac, valFrac float64
	split := &cobra.Command{
		Use:   "split",
		Short: "Split CSV or Parquet data into train, validation and test sets, streaming, by a seeded draw per row",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if trainFrac <= 0 || valFrac < 0 || trainFrac+valFrac > 1 {
				return usagef("--train-fraction %g and --val-fraction %g must be positive and sum to at most 1", trainFrac, valFrac)
			}
			if format != "parquet" && format != "csv" {
				return usagef("--format must be parquet or csv")
			}
			r, err := tabular.OpenAll(raw, tabular.Options{})
			if err != nil {
				return wharf.Errorf(wharf.EINVALID, "%v", err)
			}
			defer r.Close()
			outs := []string{trainOut, valOut, testOut}
			names := []string{"train", "val", "test"}
			writers := make([]frameWriter, 3)
			defer func() {
				for _, w := range writers {
					if w != nil {
						w.Abort()
					}
				}
			}()
			// Each row draws its set from one seeded stream, so the split
			// is the same for the same data and seed whatever the batch
			// sizes, and needs no shuffle of the whole data.
			rng := rand.New(rand.NewPCG(seed, 0x7761726670726570))
			counts := make([]int64, 3)
			for {
				f, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return wharf.Errorf(wharf.EINVALID, "%s: %v", raw, err)
				}
				idx := make([][]int, 3)
				for row := 0; row < f.Len; row++ {
					u := rng.Float64()
					set := 2
					if u < trainFrac {
						set = 0
					} else if u < trainFrac+valFrac {
						set = 1
					}
					idx[set] = append(idx[set], row)
				}
				for s := range writers {
					if writers[s] == nil {
						if writers[s], err = newFrameWriter(outs[s], names[s], format, f); err != nil {
							return err
						}
					}
					if err := writers[s].Write(f.Take(idx[s])); err != nil {
						return fmt.Errorf("%s: %w", outs[s], err)
					}
					counts[s] += int64(len(idx[s]))
				}
			}
			if writers[0] == nil {
				return wharf.Errorf(wharf.EINVALID, "%s has no rows", raw)
			}
			for s, w := range writers {
				if err := w.Close(); err != nil {
					return err
				}
				writers[s] = nil
			}
			metrics := map[string]float64{"train_rows": float64(counts[0]), "val_rows": float64(counts[1]), "test_rows": float64(counts[2])}
			if err := logToTracking(cmd.Context(), metrics, map[string]string{"split_seed": fmt.Sprint(seed)}); err != nil {
				fmt.Fprintf(a.stderr, "warning: metrics not logged to tracking: %v\n", err)
			}
			return a.print(map[string]any{"train_rows": counts[0], "val_rows": counts[1], "test_rows": counts[2], "format": format})
		},
	}
	f := split.Flags()
	f.StringVar(&raw, "raw-data", "", "CSV or Parquet file, or a folder of them")
	f.StringVar(&trainOut, "train-data", "", "folder for the training set")
	f.StringVar(&valOut, "val-data", "", "folder for the validation set")
	f.StringVar(&testOut, "test-data", "", "folder for the test set")
	f.StringVar(&format, "format", "parquet", "output format: parquet or csv")
	f.Uint64Var(&seed, "seed", 42, "random seed of the split")
	f.Float64Var(&trainFrac, "train-fraction", 0.7, "share of rows for training")
	f.Float64Var(&valFrac, "val-fraction", 0.15, "share of rows for validation (the rest is the test set)")
	for _, n := range []string{"raw-data", "train-data", "val-data", "test-data"} {
		_ = split.MarkFlagRequired(n)
	}
	prep.AddCommand(split)
	return prep
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
