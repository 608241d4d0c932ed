// Package batch scores whole datasets: it splits the input into
// mini-batches (files, or row ranges of one large file), scores them with
// a pool of workers, retries failures, counts failed items against an
// error threshold, and appends the predictions to one output file.
//
// A Scorer gets rows and returns one prediction per row, written as
// file_name,row,prediction; a FileScorer (an Azure ML batch driver) gets
// each mini-batch as a list of files and returns the output rows itself,
// written as they are.
//
// Finished mini-batches are kept in a state folder that outlives an
// attempt, so a job re-run after a crash scores only what was not done,
// and the output is assembled once, in mini-batch order, so no row is
// written twice.
package batch

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfml/wharf/tabular"
)

// Scorer scores the rows of one mini-batch. header names the columns of
// rows; it returns one prediction per row, or an error for a row it could
// not score (counted as a failed item), or a whole-batch error.
type Scorer interface {
	Score(ctx context.Context, header []string, rows [][]string) (preds []string, rowErrs []error, err error)
}

// FrameScorer is a Scorer that also takes rows column by column, as
// numbers, straight from the CSV or Parquet reader: no text round trip,
// and CSV parsing done by the workers rather than by the reader.
type FrameScorer interface {
	Scorer
	// Inputs names the columns the scorer reads, and which of them it
	// reads as text (text may be nil: all numbers). In a CSV file, a row
	// where a numeric one is not a number is a failed item; an input
	// without them all is refused before scoring starts.
	Inputs() (names []string, text []bool)
	// ScoreFrame returns one prediction per row of f, whose columns are
	// the inputs, and an error for each row it could not score (nil when
	// there is none).
	ScoreFrame(ctx context.Context, f *tabular.Frame) (Predictions, []error, error)
}

// Predictions are a FrameScorer's answers, numbers or text (written as a
// CSV field).
type Predictions struct {
	Num  []float64
	Text []string
}

// Len is the number of predictions.
func (p Predictions) Len() int { return max(len(p.Num), len(p.Text)) }

// FileScorer scores whole mini-batches of files, as an Azure ML batch
// driver's run(mini_batch) does: it gets the local paths of the
// mini-batch's files and returns the output rows, each of which is written
// to the output file as it is, followed by a newline. An error fails the
// attempt, which is retried; a mini-batch that fails every attempt counts
// all its items (files, or rows of a range) as failed.
type FileScorer interface {
	ScoreFiles(ctx context.Context, files []string) (lines []string, err error)
}

// TableScorer is a FileScorer that can take a row range as a table rather
// than as a list of one file: an Azure ML parallel job's run() gets the
// rows of tabular input as a pandas DataFrame. path is the range written
// as CSV, with its header row.
type TableScorer interface {
	FileScorer
	ScoreTable(ctx context.Context, path string) (lines []string, err error)
}

// Config is one batch scoring run.
type Config struct {
	// Input is a file (split into row ranges of RowsPerBatch) or a folder
	// (its files, MiniBatchSize to a mini-batch).
	Input         string
	Output        string // folder the output file and summary go to
	OutputFile    string // default predictions.csv
	SummaryOnly   bool   // output_action: summary_only
	StateDir      string // finished mini-batches; survives retries of the job
	MiniBatchSize int
	RowsPerBatch  int
	// BytesPerBatch, when set, cuts a file into row ranges of about that
	// many bytes of input (a row range holds at least one row) instead of
	// RowsPerBatch rows.
	BytesPerBatch int64
	// Tabular reads a folder as the rows of its CSV and Parquet files,
	// each cut into row ranges of its own, instead of as a list of files;
	// a TableScorer then gets each range as a table.
	Tabular    bool
	Workers    int
	MaxRetries int
	Timeout    time.Duration // per mini-batch attempt; 0 is none
	// ErrorThreshold is how many failed items end the run; -1 never.
	ErrorThreshold int
	// MiniBatchLimits, when set, apply an Azure ML parallel job's rules
	// for failed mini-batches.
	MiniBatchLimits *MiniBatchLimits
	// Progress receives a line now and then.
	Progress io.Writer
	// Label starts every progress line, in brackets; default batch.
	Label string
}

// MiniBatchLimits are an Azure ML parallel job's rules for failed
// mini-batches. A mini-batch fails when run() raises in every attempt or
// returns fewer rows than it was given items (files, or rows of a range);
// the rows it is short count as failed items, and a progress line names
// each mini-batch as it finishes.
type MiniBatchLimits struct {
	// ErrorThreshold is how many failed mini-batches end the run
	// (mini_batch_error_threshold); -1 never.
	ErrorThreshold int
	// AllowedFailedPercent (0 to 100) is the share of failed mini-batches
	// beyond which a run that scored them all fails anyway
	// (--allowed_failed_percent); 100 never.
	AllowedFailedPercent int
}

// Summary is the result of a run, written as summary.json. Rows counts
// the rows written: predictions of a Scorer, or the rows a FileScorer
// returned.
type Summary struct {
	MiniBatches int `json:"mini_batches"`
	Reused      int `json:"mini_batches_reused"`
	Succeeded   int `json:"mini_batches_succeeded"`
	FailedItems int `json:"failed_items"`
	// FailedMiniBatches counts mini-batches that failed under
	// MiniBatchLimits' rules (0 without them).
	FailedMiniBatches int      `json:"mini_batches_failed"`
	Rows              int64    `json:"rows_scored"`
	Errors            []string `json:"first_errors"`
	// Started is when the input began to be read and scored (after the
	// model was loaded), so the delay from an invocation can be measured.
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
}

// miniBatch is one unit of work.
type miniBatch struct {
	index  int
	file   string     // the one file of a row range, or "" for a file list
	files  []string   // the files of a file mini-batch
	header []string   // for a row range
	rows   [][]string // for a row range
	first  int        // the number of the range's first row in its file (1-based, after the header)
	// With a FrameScorer, a row range is unparsed CSV records or a
	// Parquet frame instead of rows.
	chunk *tabular.CSVChunk
	frame *tabular.Frame
}

// Run scores the input. It returns an error when the error threshold was
// crossed or the input cannot be read at all. The output file starts with
// the header file_name,row,prediction.
func Run(ctx context.Context, cfg Config, s Scorer) (*Summary, error) {
	fs, _ := s.(FrameScorer)
	return run(ctx, cfg, &runner{scorer: s, frames: fs})
}

// RunFiles is Run with a FileScorer. A folder's files go to it
// MiniBatchSize at a time. A single file is still read in row ranges of
// RowsPerBatch: each range is written, with the input's header row, to a
// CSV file of the input's name in a temporary folder of its own, and that
// one path is the mini-batch. The output file has no header row, as Azure
// ML's append_row writes none, and holds the rows in mini-batch order.
func RunFiles(ctx context.Context, cfg Config, s FileScorer) (*Summary, error) {
	ranges, err := os.MkdirTemp("", "wharf-batch-ranges-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(ranges)
	return run(ctx, cfg, &runner{files: s, ranges: ranges})
}

func run(ctx context.Context, cfg Config, r *runner) (*Summary, error) {
	if cfg.OutputFile == "" {
		cfg.OutputFile = "predictions.csv"
	}
	if cfg.MiniBatchSize <= 0 {
		cfg.MiniBatchSize = 10
	}
	if cfg.RowsPerBatch <= 0 {
		cfg.RowsPerBatch = 100000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Label == "" {
		cfg.Label = "batch"
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	start := time.Now()
	r.cfg, r.sum = cfg, &Summary{Started: start.UTC()}
	r.total.Store(-1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *miniBatch, cfg.Workers)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for mb := range work {
				if err := r.do(ctx, mb); err != nil {
					cancel(err)
				}
			}
		}()
	}
	stopProgress := r.progress(ctx)
	n, err := r.split(ctx, work)
	close(work)
	wg.Wait()
	stopProgress()
	r.sum.MiniBatches = n
	r.sum.Rows = r.rows.Load()
	r.sum.Seconds = time.Since(start).Seconds()
	if err != nil {
		return r.sum, err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return r.sum, cause
	}
	if err := ctx.Err(); err != nil {
		return r.sum, err
	}
	if err := r.failedShare(n); err != nil {
		return r.sum, err
	}
	return r.sum, r.assemble(n)
}

// failedShare refuses a finished run whose failed mini-batches are more
// than MiniBatchLimits.AllowedFailedPercent of them all.
func (r *runner) failedShare(n int) error {
	l := r.cfg.MiniBatchLimits
	if l == nil || n == 0 || l.AllowedFailedPercent >= 100 {
		return nil
	}
	if failed := r.sum.FailedMiniBatches; failed*100 > l.AllowedFailedPercent*n {
		return fmt.Errorf("%d of %d mini-batches failed (%d%%), more than allowed_failed_percent %d",
			failed, n, failed*100/n, l.AllowedFailedPercent)
	}
	return nil
}

type runner struct {
	cfg    Config
	scorer Scorer      // nil with files
	frames FrameScorer // scorer, when it takes frames
	files  FileScorer  // nil with scorer
	ranges string      // where row ranges are written for files
	mu     sync.Mutex
	sum    *Summary
	rows   atomic.Int64
	done   atomic.Int64
	// total is the number of mini-batches once known, else -1.
	total atomic.Int64
}

// split feeds the mini-batches to the workers and returns how many there
// were. A single file is streamed in row ranges, never loaded whole.
func (r *runner) split(ctx context.Context, work chan<- *miniBatch) (int, error) {
	st, err := os.Stat(r.cfg.Input)
	if err != nil {
		return 0, fmt.Errorf("input %s: %w", r.cfg.Input, err)
	}
	send := func(mb *miniBatch) bool {
		select {
		case work <- mb:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if st.IsDir() && r.cfg.Tabular {
		files, err := tabular.Files(r.cfg.Input)
		if err != nil {
			return 0, fmt.Errorf("input %w", err)
		}
		n := 0
		for _, f := range files {
			if n, err = r.splitFile(ctx, f, n, send); err != nil || ctx.Err() != nil {
				return n, err
			}
		}
		r.total.Store(int64(n))
		return n, nil
	}
	if st.IsDir() {
		var files []string
		err := filepath.WalkDir(r.cfg.Input, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return 0, err
		}
		sort.Strings(files)
		r.total.Store(int64((len(files) + r.cfg.MiniBatchSize - 1) / r.cfg.MiniBatchSize))
		n := 0
		for i := 0; i < len(files); i += r.cfg.MiniBatchSize {
			mb := &miniBatch{index: n, files: files[i:min(i+r.cfg.MiniBatchSize, len(files))]}
			n++
			if !send(mb) {
				return n, nil
			}
		}
		return n, nil
	}
	n, err := r.splitFile(ctx, r.cfg.Input, 0, send)
	if err == nil {
		r.total.Store(int64(n))
	}
	return n, err
}

// splitFile sends the row ranges of one CSV or Parquet file, numbered
// from n, and returns the number after the last.
func (r *runner) splitFile(ctx context.Context, path string, n int, send func(*miniBatch) bool) (int, error) {
	if tabular.FormatOf(path) == tabular.Parquet {
		return r.splitParquet(path, n, send)
	}
	if r.frames != nil {
		return r.splitCSVChunks(path, n, send)
	}
	f, err := os.Open(path)
	if err != nil {
		return n, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	cr.ReuseRecord = false
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return n, fmt.Errorf("input %s: no header row: %w", path, err)
	}
	line := 1
	var rows [][]string
	rangeStart := cr.InputOffset()
	flush := func() bool {
		if len(rows) == 0 {
			return true
		}
		mb := &miniBatch{index: n, file: path, header: header, rows: rows, first: line - len(rows)}
		n++
		rows = nil
		rangeStart = cr.InputOffset()
		return send(mb)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			// An unreadable row is a failed item of its own; reading goes
			// on with the next one.
			r.fail(1, fmt.Sprintf("%s row %d: %v", filepath.Base(path), line-1, err))
			if err := r.overLimit(); err != nil {
				return n, err
			}
			continue
		}
		rows = append(rows, rec)
		if r.rangeFull(len(rows), cr.InputOffset()-rangeStart) && !flush() {
			return n, nil
		}
	}
	flush()
	return n, nil
}

// rangeFull reports whether a row range of rows rows and size bytes is
// as large as a mini-batch gets.
func (r *runner) rangeFull(rows int, size int64) bool {
	if r.cfg.BytesPerBatch > 0 {
		return size >= r.cfg.BytesPerBatch
	}
	return rows >= r.cfg.RowsPerBatch
}

func (r *runner) statePath(i int) string {
	return filepath.Join(r.cfg.StateDir, fmt.Sprintf("mb-%08d.csv", i))
}

// do scores one mini-batch, unless an earlier attempt of the job already
// did, with retries.
func (r *runner) do(ctx context.Context, mb *miniBatch) error {
	if _, err := os.Stat(r.statePath(mb.index)); err == nil {
		// Done by an earlier attempt of the job; its failed items still
		// count against the threshold.
		var prev failures
		if b, err := os.ReadFile(r.statePath(mb.index) + ".failed"); err == nil {
			_ = json.Unmarshal(b, &prev)
		}
		r.fail(prev.Count, prev.Errors...)
		r.mu.Lock()
		r.sum.Reused++
		if prev.MiniBatch {
			r.sum.FailedMiniBatches++
		}
		r.mu.Unlock()
		r.done.Add(1)
		return r.overLimit()
	}
	var lastErr error
	for attempt := 0; attempt <= r.cfg.MaxRetries; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if r.cfg.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		}
		out, failed, errs, scored, err := r.score(actx, mb)
		cancel()
		if err == nil {
			// Under a parallel job's rules a mini-batch whose run()
			// returned too few rows failed, though it is not retried.
			mbFailed := r.cfg.MiniBatchLimits != nil && failed > 0
			// The failures are written first: a mini-batch counts as done
			// only once both files are there.
			if failed > 0 {
				b, _ := json.Marshal(failures{Count: failed, Errors: errs, MiniBatch: mbFailed})
				if err := writeAtomic(r.statePath(mb.index)+".failed", b); err != nil {
					return err
				}
			}
			if err := writeAtomic(r.statePath(mb.index), out); err != nil {
				return err
			}
			r.fail(failed, errs...)
			r.rows.Add(scored)
			r.mu.Lock()
			if mbFailed {
				r.sum.FailedMiniBatches++
			} else {
				r.sum.Succeeded++
			}
			r.mu.Unlock()
			r.done.Add(1)
			if mbFailed {
				r.finished(mb, "failed: "+strings.Join(errs, "; "))
			} else {
				r.finished(mb, "done")
			}
			return r.overLimit()
		}
		lastErr = err
		fmt.Fprintf(r.cfg.Progress, "[%s] mini-batch %d attempt %d failed: %v\n", r.cfg.Label, mb.index, attempt+1, err)
	}
	r.fail(mb.items(), fmt.Sprintf("mini-batch %d failed after %d attempts: %v", mb.index, r.cfg.MaxRetries+1, lastErr))
	if r.cfg.MiniBatchLimits != nil {
		r.mu.Lock()
		r.sum.FailedMiniBatches++
		r.mu.Unlock()
		r.done.Add(1)
		r.finished(mb, fmt.Sprintf("failed after %d attempts", r.cfg.MaxRetries+1))
	}
	return r.overLimit()
}

// items is how many items a mini-batch holds: files, or rows of a range.
func (mb *miniBatch) items() int {
	if mb.file != "" {
		return len(mb.rows)
	}
	return len(mb.files)
}

// finished logs, under a parallel job's rules, how a mini-batch ended and
// how many are done and failed of all of them.
func (r *runner) finished(mb *miniBatch, how string) {
	if r.cfg.MiniBatchLimits == nil {
		return
	}
	total := "?"
	if n := r.total.Load(); n >= 0 {
		total = strconv.FormatInt(n, 10)
	}
	r.mu.Lock()
	failed := r.sum.FailedMiniBatches
	r.mu.Unlock()
	fmt.Fprintf(r.cfg.Progress, "[%s] mini-batch %d %s; %d of %s mini-batches done, %d failed\n",
		r.cfg.Label, mb.index, how, r.done.Load(), total, failed)
}

// score returns the output lines of a mini-batch, its failed items and
// their messages; an error means the whole attempt failed.
func (r *runner) score(ctx context.Context, mb *miniBatch) ([]byte, int, []string, int64, error) {
	if r.files != nil {
		return r.scoreFiles(ctx, mb)
	}
	var out strings.Builder
	failed := 0
	var msgs []string
	var scored int64
	emit := func(name string, first int, header []string, rows [][]string) error {
		preds, rowErrs, err := r.scorer.Score(ctx, header, rows)
		if err != nil {
			return err
		}
		bad := 0
		for i := range rows {
			if i < len(rowErrs) && rowErrs[i] != nil {
				bad++
				failed++
				msgs = append(msgs, fmt.Sprintf("%s row %d: %v", name, first+i, rowErrs[i]))
				continue
			}
			out.WriteString(tabular.QuoteCSV(name))
			out.WriteByte(',')
			out.WriteString(strconv.Itoa(first + i))
			out.WriteByte(',')
			out.WriteString(preds[i])
			out.WriteByte('\n')
		}
		scored += int64(len(rows) - bad)
		return nil
	}
	if r.frames != nil {
		fo := &frameOutput{}
		if err := r.scoreFrames(ctx, mb, fo); err != nil {
			return nil, 0, nil, 0, err
		}
		return fo.buf, fo.failed, fo.msgs, fo.scored, nil
	}
	if mb.file != "" {
		if err := emit(filepath.Base(mb.file), mb.first, mb.header, mb.rows); err != nil {
			return nil, 0, nil, 0, err
		}
		return []byte(out.String()), failed, msgs, scored, nil
	}
	for _, f := range mb.files {
		header, rows, err := readTable(f)
		if err != nil {
			// A file that cannot be read is one failed item; its batch
			// mates are still scored.
			failed++
			msgs = append(msgs, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		if err := emit(filepath.Base(f), 1, header, rows); err != nil {
			var ce *ColumnsError
			if errors.As(err, &ce) {
				failed++
				msgs = append(msgs, fmt.Sprintf("%s: %v", filepath.Base(f), err))
				continue
			}
			return nil, 0, nil, 0, err
		}
	}
	return []byte(out.String()), failed, msgs, scored, nil
}

// scoreFiles hands a mini-batch to the FileScorer: its files, or its row
// range written to a file of its own (as a table, in tabular mode). Under
// MiniBatchLimits the rows run() returned short of the items it was given
// are failed items.
func (r *runner) scoreFiles(ctx context.Context, mb *miniBatch) ([]byte, int, []string, int64, error) {
	var lines []string
	var err error
	if mb.file != "" {
		p, werr := r.writeRange(mb)
		if werr != nil {
			return nil, 0, nil, 0, werr
		}
		defer os.RemoveAll(filepath.Dir(p))
		if ts, ok := r.files.(TableScorer); ok && r.cfg.Tabular {
			lines, err = ts.ScoreTable(ctx, p)
		} else {
			lines, err = r.files.ScoreFiles(ctx, []string{p})
		}
	} else {
		lines, err = r.files.ScoreFiles(ctx, mb.files)
	}
	if err != nil {
		return nil, 0, nil, 0, err
	}
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l)
		out.WriteByte('\n')
	}
	failed := 0
	var msgs []string
	if short := mb.items() - len(lines); r.cfg.MiniBatchLimits != nil && short > 0 {
		failed = short
		msgs = []string{fmt.Sprintf("mini-batch %d: run() returned %d rows for %d items", mb.index, len(lines), mb.items())}
	}
	return []byte(out.String()), failed, msgs, int64(len(lines)), nil
}

// writeRange writes a row range, with its header, to a CSV file named as
// its input in a folder of the mini-batch's own, and returns its path.
func (r *runner) writeRange(mb *miniBatch) (string, error) {
	dir := filepath.Join(r.ranges, fmt.Sprintf("mb-%08d", mb.index))
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, filepath.Base(mb.file))
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := csv.NewWriter(bw)
	if err := cw.Write(mb.header); err != nil {
		f.Close()
		return "", err
	}
	if err := cw.WriteAll(mb.rows); err != nil {
		f.Close()
		return "", fmt.Errorf("writing rows %d to %d of %s: %w", mb.first, mb.first+len(mb.rows)-1, filepath.Base(mb.file), err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}

// failures are a finished mini-batch's failed items, kept beside its
// output in the state folder.
type failures struct {
	Count  int      `json:"count"`
	Errors []string `json:"errors"`
	// MiniBatch is set when the mini-batch itself failed (MiniBatchLimits).
	MiniBatch bool `json:"mini_batch_failed,omitempty"`
}

// ColumnsError is a file whose columns the model cannot use: the file is
// a failed item, not a reason to retry.
type ColumnsError struct{ Msg string }

func (e *ColumnsError) Error() string { return e.Msg }

// splitParquet sends row ranges of a Parquet file, read a range at a
// time, numbered from n.
func (r *runner) splitParquet(path string, n int, send func(*miniBatch) bool) (int, error) {
	if r.cfg.BytesPerBatch > 0 && r.frames == nil {
		return r.splitParquetBytes(path, n, send)
	}
	pr, err := tabular.Open(path, tabular.Options{BatchRows: r.cfg.RowsPerBatch})
	if err != nil {
		return n, fmt.Errorf("input %w", err)
	}
	defer pr.Close()
	var names []string
	if r.frames != nil {
		if err := r.checkInputs(path, pr.Columns()); err != nil {
			return n, err
		}
		names, _ = r.frames.Inputs()
	}
	for {
		f, err := pr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("input %s: %w", path, err)
		}
		mb := &miniBatch{index: n, file: path, first: int(f.FirstRow)}
		if r.frames != nil {
			if mb.frame, err = f.Select(names); err != nil {
				return n, fmt.Errorf("input %s: %w", path, err)
			}
		} else {
			mb.header, mb.rows = f.Columns, FrameRows(f)
		}
		n++
		if !send(mb) {
			return n, nil
		}
	}
}

// checkInputs refuses, before any scoring, a single input file that lacks
// columns the scorer needs: every mini-batch of it would fail alike.
func (r *runner) checkInputs(path string, have []string) error {
	var missing []string
	names, _ := r.frames.Inputs()
	for _, c := range names {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("input %s: %w", filepath.Base(path), &tabular.ColumnsError{Missing: missing, Have: have})
	}
	return nil
}

// splitParquetBytes sends row ranges of a Parquet file of about
// BytesPerBatch bytes each, counted as the rows' values take as text.
func (r *runner) splitParquetBytes(path string, n int, send func(*miniBatch) bool) (int, error) {
	pr, err := tabular.Open(path, tabular.Options{BatchRows: 1024})
	if err != nil {
		return n, fmt.Errorf("input %w", err)
	}
	defer pr.Close()
	var rows [][]string
	var size int64
	first := int64(1)
	flush := func() bool {
		if len(rows) == 0 {
			return true
		}
		mb := &miniBatch{index: n, file: path, header: pr.Columns(), rows: rows, first: int(first)}
		n++
		first += int64(len(rows))
		rows, size = nil, 0
		return send(mb)
	}
	for {
		f, err := pr.Next()
		if err == io.EOF {
			flush()
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("input %s: %w", path, err)
		}
		for _, row := range FrameRows(f) {
			rows = append(rows, row)
			for _, v := range row {
				size += int64(len(v)) + 1
			}
			if r.rangeFull(len(rows), size) && !flush() {
				return n, nil
			}
		}
	}
}

// splitCSVChunks sends row ranges of a CSV file as unparsed records,
// numbered from n: the workers parse them, in parallel.
func (r *runner) splitCSVChunks(path string, n int, send func(*miniBatch) bool) (int, error) {
	c, err := tabular.OpenCSVChunks(path)
	if err != nil {
		return n, fmt.Errorf("input %w", err)
	}
	defer c.Close()
	if err := r.checkInputs(path, c.Columns()); err != nil {
		return n, err
	}
	for {
		ch, err := c.Next(r.cfg.RowsPerBatch)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("input %s: %w", path, err)
		}
		mb := &miniBatch{index: n, file: path, header: c.Columns(), chunk: ch, first: int(ch.FirstRow)}
		n++
		if !send(mb) {
			return n, nil
		}
	}
}

// frameOutput collects a mini-batch's output lines and failed items.
type frameOutput struct {
	buf    []byte
	failed int
	msgs   []string
	scored int64
}

func (o *frameOutput) bad(name string) func(row int64, err error) {
	return func(row int64, err error) {
		o.failed++
		o.msgs = append(o.msgs, fmt.Sprintf("%s row %d: %v", name, row, err))
	}
}

// scoreFrames scores a mini-batch with the FrameScorer: a row range
// (CSV records parsed here, or a Parquet frame), or files read whole.
func (r *runner) scoreFrames(ctx context.Context, mb *miniBatch, o *frameOutput) error {
	if mb.file != "" {
		name := filepath.Base(mb.file)
		f := mb.frame
		if mb.chunk != nil {
			var err error
			names, text := r.frames.Inputs()
			if f, err = mb.chunk.Parse(mb.header, names, text, o.bad(name)); err != nil {
				return err
			}
		}
		return r.emitFrame(ctx, name, f, o)
	}
	for _, path := range mb.files {
		name := filepath.Base(path)
		err := r.scoreFile(ctx, path, o)
		var ce *ColumnsError
		var tce *tabular.ColumnsError
		var ue unreadable
		if errors.As(err, &ce) || errors.As(err, &tce) || errors.As(err, &ue) {
			// One failed item; its batch mates are still scored.
			o.failed++
			o.msgs = append(o.msgs, fmt.Sprintf("%s: %v", name, err))
		} else if err != nil {
			return err
		}
	}
	return nil
}

// unreadable is a file of a file mini-batch that cannot be read: a failed
// item of its own, not a reason to retry the mini-batch.
type unreadable struct{ err error }

func (u unreadable) Error() string { return u.err.Error() }

// scoreFile scores one file of a file mini-batch, whole. Its output is
// added to o only once the whole file was scored.
func (r *runner) scoreFile(ctx context.Context, path string, o *frameOutput) error {
	name := filepath.Base(path)
	part := &frameOutput{}
	names, text := r.frames.Inputs()
	if tabular.FormatOf(path) == tabular.Parquet {
		pr, err := tabular.Open(path, tabular.Options{})
		if err != nil {
			return unreadable{err}
		}
		defer pr.Close()
		for {
			f, err := pr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return unreadable{err}
			}
			if f, err = f.Select(names); err != nil {
				return err
			}
			if err := r.emitFrame(ctx, name, f, part); err != nil {
				return err
			}
		}
	} else {
		c, err := tabular.OpenCSVChunks(path)
		if err != nil {
			return unreadable{err}
		}
		defer c.Close()
		ch, err := c.Next(math.MaxInt)
		if err == io.EOF {
			return nil // a header and no rows
		}
		if err != nil {
			return unreadable{err}
		}
		f, err := ch.Parse(c.Columns(), names, text, part.bad(name))
		if err != nil {
			return err
		}
		if err := r.emitFrame(ctx, name, f, part); err != nil {
			return err
		}
	}
	o.buf = append(o.buf, part.buf...)
	o.failed += part.failed
	o.msgs = append(o.msgs, part.msgs...)
	o.scored += part.scored
	return nil
}

// emitFrame scores a frame and appends file_name,row,prediction lines.
func (r *runner) emitFrame(ctx context.Context, name string, f *tabular.Frame, o *frameOutput) error {
	preds, rowErrs, err := r.frames.ScoreFrame(ctx, f)
	if err != nil {
		return err
	}
	if preds.Len() != f.Len {
		return fmt.Errorf("the scorer returned %d predictions for %d rows", preds.Len(), f.Len)
	}
	prefix := append([]byte(tabular.QuoteCSV(name)), ',')
	o.buf = slices.Grow(o.buf, f.Len*(len(prefix)+32))
	for i := range f.Len {
		row := f.RowNumber(i)
		if rowErrs != nil && rowErrs[i] != nil {
			o.bad(name)(row, rowErrs[i])
			continue
		}
		o.buf = append(o.buf, prefix...)
		o.buf = strconv.AppendInt(o.buf, row, 10)
		o.buf = append(o.buf, ',')
		if preds.Text != nil {
			o.buf = append(o.buf, tabular.QuoteCSV(preds.Text[i])...)
		} else {
			o.buf = strconv.AppendFloat(o.buf, preds.Num[i], 'g', -1, 64)
		}
		o.buf = append(o.buf, '\n')
		o.scored++
	}
	return nil
}

// FrameRows turns a frame into text rows, as a Scorer takes them.
func FrameRows(f *tabular.Frame) [][]string {
	rows := make([][]string, f.Len)
	for i := range rows {
		row := make([]string, len(f.Columns))
		for c := range row {
			row[c] = f.Value(c, i)
		}
		rows[i] = row
	}
	return rows
}

// readTable reads a whole CSV or Parquet file of a file mini-batch.
func readTable(path string) ([]string, [][]string, error) {
	if tabular.FormatOf(path) != tabular.Parquet {
		return readCSV(path)
	}
	pr, err := tabular.Open(path, tabular.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer pr.Close()
	var rows [][]string
	for {
		f, err := pr.Next()
		if err == io.EOF {
			return pr.Columns(), rows, nil
		}
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, FrameRows(f)...)
	}
}

func readCSV(path string) ([]string, [][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("no header row: %w", err)
	}
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, nil, err
	}
	return header, rows, nil
}

func (r *runner) fail(n int, msgs ...string) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.FailedItems += n
	for _, m := range msgs {
		if len(r.sum.Errors) < 20 {
			r.sum.Errors = append(r.sum.Errors, m)
		}
	}
}

// overLimit is the error that ends the run once its failed items cross
// the error threshold, or its failed mini-batches the mini-batch one;
// nil before.
func (r *runner) overLimit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := ""
	if len(r.sum.Errors) > 0 {
		first = "; first: " + strings.Join(r.sum.Errors[:min(3, len(r.sum.Errors))], "; ")
	}
	if t := r.cfg.ErrorThreshold; t >= 0 && r.sum.FailedItems > t {
		return fmt.Errorf("%d failed items exceed error_threshold %d%s", r.sum.FailedItems, t, first)
	}
	if l := r.cfg.MiniBatchLimits; l != nil && l.ErrorThreshold >= 0 && r.sum.FailedMiniBatches > l.ErrorThreshold {
		return fmt.Errorf("%d failed mini-batches exceed mini_batch_error_threshold %d%s", r.sum.FailedMiniBatches, l.ErrorThreshold, first)
	}
	return nil
}

// progress prints a line every second until stopped.
func (r *runner) progress(ctx context.Context) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				r.mu.Lock()
				failed := r.sum.FailedItems
				r.mu.Unlock()
				rows := r.rows.Load()
				fmt.Fprintf(r.cfg.Progress, "["+r.cfg.Label+"] %d mini-batches done, %d failed items, %d rows scored (%.0f rows/s)\n",
					r.done.Load(), failed, rows, float64(rows)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop); <-done }
}

// assemble writes the output file from the finished mini-batches in order.
func (r *runner) assemble(n int) error {
	if err := os.MkdirAll(r.cfg.Output, 0o755); err != nil {
		return err
	}
	if !r.cfg.SummaryOnly {
		tmp := filepath.Join(r.cfg.Output, "."+r.cfg.OutputFile+".tmp")
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if r.files == nil {
			w.WriteString("file_name,row,prediction\n")
		}
		for i := 0; i < n; i++ {
			err := appendFile(w, r.statePath(i))
			if errors.Is(err, os.ErrNotExist) {
				continue // a mini-batch that failed, counted in the summary
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(r.cfg.Output, r.cfg.OutputFile)); err != nil {
			return err
		}
	}
	return nil
}

// appendFile copies a finished mini-batch's output to w.
func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
