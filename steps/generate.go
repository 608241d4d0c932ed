package steps

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wharfml/wharf/taxigen"
)

// progressRows is the row count from which GenerateTaxi reports its
// progress: smaller files are written before a line would be read.
const progressRows = 1_000_000

// GenerateConfig is one run of GenerateTaxi (`wharf generate taxi`).
type GenerateConfig struct {
	Out       string // folder the files are written into (created if missing)
	Rows      int64  // trips in the data file
	BatchRows int64  // trips in the batch file
	// Spec is the seed, period, format and worker count of the trips.
	Spec taxigen.Spec
}

// GenerateResult lists what GenerateTaxi wrote.
type GenerateResult struct {
	Files       []string `json:"files"`
	Rows        int64    `json:"rows"`
	BatchRows   int64    `json:"batch_rows"`
	RequestRows int      `json:"request_rows"`
	// Drifted lists the features --drift shifted.
	Drifted []string `json:"drifted_features,omitempty"`
	Format  string   `json:"format"`
	Seed    uint64   `json:"seed"`
	Start   string   `json:"start"` // the first pickup day, 2016-01-01
	Days    int      `json:"days"`
	Seconds float64  `json:"seconds"`
}

// GenerateTaxi writes synthetic taxi trips, the same bytes for the same
// spec, with taxigen.Generate. From a million rows on, it reports each
// file's progress on log every tenth of the file, with the rate.
func GenerateTaxi(ctx context.Context, cfg GenerateConfig, log io.Writer) (*GenerateResult, error) {
	log = orDiscard(log)
	began := time.Now()
	var progress taxigen.Progress
	if cfg.Rows >= progressRows {
		var cur string
		var next int64
		var fileBegan time.Time
		progress = func(file string, done, total int64) {
			if file != cur {
				cur, next, fileBegan = file, total/10, time.Now()
			}
			if total < progressRows || done < next && done < total {
				return
			}
			for next <= done {
				next += total / 10
			}
			fmt.Fprintf(log, "%s: %d of %d rows (%d%%), %.1fM rows/s\n",
				file, done, total, done*100/total, float64(done)/time.Since(fileBegan).Seconds()/1e6)
		}
	}
	paths, err := taxigen.Generate(ctx, cfg.Out, cfg.Spec, cfg.Rows, cfg.BatchRows, progress)
	if err != nil {
		return nil, err
	}
	s := cfg.Spec
	if s.Start.IsZero() {
		s.Start = taxigen.DefaultStart
	}
	if s.Days == 0 {
		s.Days = taxigen.DefaultDays
	}
	if s.Format == "" {
		s.Format = taxigen.CSV
	}
	requestRows, drifted := cfg.Spec.RequestRows, []string(nil)
	if requestRows < 1 {
		requestRows = taxigen.RequestRows
	}
	if cfg.Spec.Drift {
		drifted = taxigen.DriftedFeatures
	}
	return &GenerateResult{Files: paths, Rows: cfg.Rows, BatchRows: cfg.BatchRows, RequestRows: requestRows, Drifted: drifted,
		Format: string(s.Format), Seed: s.Seed, Start: s.Start.Format(time.DateOnly), Days: s.Days,
		Seconds: time.Since(began).Round(time.Millisecond).Seconds()}, nil
}
