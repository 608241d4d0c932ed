package drift

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
)

// ChunkValues is the most values of one column a sorter holds in memory;
// beyond it, sorted runs go to temporary files. A variable so that tests
// can make runs small.
var ChunkValues = 1 << 21

// MaxMergeRuns is the most runs merged at once: more are first merged
// into longer runs, so that the merge's buffers (32 KiB a run) do not
// grow with the number of rows.
var MaxMergeRuns = 32

// chunkPool recycles sort buffers (and their scratch) between
// columns, so that memory stays at the buffers in flight.
var chunkPool sync.Pool

func getChunk() []float64 {
	if b, ok := chunkPool.Get().(*[]float64); ok && cap(*b) >= ChunkValues {
		return (*b)[:0]
	}
	return make([]float64, 0, ChunkValues)
}

func putChunk(b []float64) {
	if b != nil && cap(b) >= ChunkValues {
		chunkPool.Put(&b)
	}
}

// sorter gathers one column's values and gives them back in order, with
// their count, bounds and the moments the metrics need.
type sorter struct {
	dir     string
	buf     []float64
	scratch []float64
	runs    []string
	n       int64
	min     float64
	max     float64
	mean    float64 // Welford's running mean and sum of squared deviations
	m2      float64
}

func newSorter(dir string) *sorter {
	return &sorter{dir: dir, min: math.Inf(1), max: math.Inf(-1)}
}

func (s *sorter) add(v float64) error {
	if s.buf == nil {
		s.buf = getChunk()
	}
	if len(s.buf) >= ChunkValues {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, v)
	s.n++
	if v < s.min {
		s.min = v
	}
	if v > s.max {
		s.max = v
	}
	d := v - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (v - s.mean)
	return nil
}

// stddev is the sample standard deviation (n-1), Spark's stddev.
func (s *sorter) stddev() float64 {
	if s.n < 2 {
		return math.NaN()
	}
	return math.Sqrt(s.m2 / float64(s.n-1))
}

func (s *sorter) sortBuf() {
	if cap(s.scratch) < len(s.buf) {
		putChunk(s.scratch)
		s.scratch = getChunk()
		if cap(s.scratch) < len(s.buf) {
			s.scratch = make([]float64, len(s.buf))
		}
	}
	sortFloats(s.buf, s.scratch[:len(s.buf)])
}

// spill writes the buffer as a sorted run.
func (s *sorter) spill() error {
	s.sortBuf()
	f, err := os.CreateTemp(s.dir, "run-*.f64")
	if err != nil {
		return fmt.Errorf("sorting a column: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	var b [8]byte
	for _, v := range s.buf {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		w.Write(b[:])
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.runs = append(s.runs, f.Name())
	if err != nil {
		return fmt.Errorf("sorting a column: %w", err)
	}
	s.buf = s.buf[:0]
	return nil
}

// stream returns the values in ascending order. It may be called once.
func (s *sorter) stream() (stream, error) {
	if len(s.runs) == 0 {
		s.sortBuf()
		return &sliceStream{v: s.buf}, nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	putChunk(s.buf)
	putChunk(s.scratch)
	s.buf, s.scratch = nil, nil
	for len(s.runs) > MaxMergeRuns {
		if err := s.mergeRuns(MaxMergeRuns); err != nil {
			return nil, err
		}
	}
	return openRuns(s.runs)
}

// mergeRuns merges the first n runs into one run at the end of the list.
func (s *sorter) mergeRuns(n int) error {
	m, err := openRuns(s.runs[:n])
	if err != nil {
		return err
	}
	defer m.close()
	f, err := os.CreateTemp(s.dir, "run-*.f64")
	if err != nil {
		return fmt.Errorf("sorting a column: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<15)
	var b [8]byte
	for {
		v, ok, err := m.next()
		if err != nil {
			f.Close()
			return err
		}
		if !ok {
			break
		}
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		w.Write(b[:])
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sorting a column: %w", err)
	}
	for _, p := range s.runs[:n] {
		os.Remove(p)
	}
	s.runs = append(s.runs[n:], f.Name())
	return nil
}

// openRuns starts merging run files.
func openRuns(paths []string) (*mergeStream, error) {
	m := &mergeStream{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			m.close()
			return nil, err
		}
		r := &runReader{f: f}
		m.open = append(m.open, r)
		if ok, err := r.fill(); err != nil {
			m.close()
			return nil, err
		} else if ok {
			m.h = append(m.h, r)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// close returns the buffers and removes the runs.
func (s *sorter) close() {
	putChunk(s.buf)
	putChunk(s.scratch)
	s.buf, s.scratch = nil, nil
	for _, p := range s.runs {
		os.Remove(p)
	}
	s.runs = nil
}

// stream yields values in ascending order.
type stream interface {
	// next returns the next value, or false at the end.
	next() (float64, bool, error)
	close()
}

type sliceStream struct {
	v []float64
	i int
}

func (s *sliceStream) next() (float64, bool, error) {
	if s.i >= len(s.v) {
		return 0, false, nil
	}
	s.i++
	return s.v[s.i-1], true, nil
}

func (s *sliceStream) close() {}

// runReader reads one sorted run file, a block at a time.
type runReader struct {
	f   *os.File
	raw [4096 * 8]byte
	i   int
	n   int
}

func (r *runReader) head() float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(r.raw[r.i*8:]))
}

// fill reads the next block; false at the end of the run.
func (r *runReader) fill() (bool, error) {
	n, err := io.ReadFull(r.f, r.raw[:])
	if err == io.EOF {
		return false, nil
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		return false, err
	}
	r.n = n / 8
	r.i = 0
	return r.n > 0, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].head() < h[j].head() }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeStream merges sorted runs.
type mergeStream struct {
	h    runHeap
	open []*runReader
}

func (m *mergeStream) next() (float64, bool, error) {
	if len(m.h) == 0 {
		return 0, false, nil
	}
	top := m.h[0]
	v := top.head()
	top.i++
	if top.i == top.n {
		ok, err := top.fill()
		if err != nil {
			return 0, false, err
		}
		if !ok {
			heap.Pop(&m.h)
			return v, true, nil
		}
	}
	heap.Fix(&m.h, 0)
	return v, true, nil
}

func (m *mergeStream) close() {
	for _, r := range m.open {
		r.f.Close()
	}
	m.open, m.h = nil, nil
}

// sortFloats sorts v (no NaN) with a bucket sort over its range: one
// pass counts the values of each of len(v)/4 equal-width buckets, one
// moves them into scratch bucket by bucket, and each bucket (a few values
// when the data are not heavily skewed) is sorted alone, by insertion or,
// when large, by the standard library. scratch has v's length.
func sortFloats(v, scratch []float64) {
	n := len(v)
	if n < 64 {
		insertionSort(v)
		return
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	buckets := n / 4
	scale := float64(buckets) / (hi - lo)
	if !(hi > lo) || math.IsInf(scale, 0) || math.IsNaN(scale) || scale == 0 {
		slices.Sort(v)
		return
	}
	bucket := func(x float64) int { return min(int((x-lo)*scale), buckets-1) }
	starts := make([]int32, buckets+1)
	for _, x := range v {
		starts[bucket(x)+1]++
	}
	for i := 1; i <= buckets; i++ {
		starts[i] += starts[i-1]
	}
	next := make([]int32, buckets)
	copy(next, starts[:buckets])
	for _, x := range v {
		b := bucket(x)
		scratch[next[b]] = x
		next[b]++
	}
	for b := 0; b < buckets; b++ {
		part := scratch[starts[b]:starts[b+1]]
		if len(part) > 32 {
			slices.Sort(part)
		} else {
			insertionSort(part)
		}
	}
	copy(v, scratch)
}

func insertionSort(v []float64) {
	for i := 1; i < len(v); i++ {
		x := v[i]
		j := i
		for j > 0 && v[j-1] > x {
			v[j] = v[j-1]
			j--
		}
		v[j] = x
	}
}
