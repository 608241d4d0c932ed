package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"
)

// Download tuning. A blob is fetched in ranges, partConcurrency at a time,
// as the SDKs' own parallel downloads do, and each range is read
// and written to the file in chunks of downloadChunk, small enough to be
// still in the CPU's cache when they are written and hashed. A chunk that
// lands ahead of the hash is kept in memory, up to downloadHeldBytes in all,
// so that the hash reads it from there instead of from the file; past that,
// the hash reads the file, which is slower but bounds the memory whatever
// the range size or how far the ranges run ahead.
const (
	downloadChunk     = 128 << 10
	downloadHeldBytes = partSize * partConcurrency
	// rangeRetryDelay is the pause before a range whose connection
	// dropped is asked for again from where it stopped, growing with each
	// try.
	rangeRetryDelay = 200 * time.Millisecond
)

// errShortObject is what a range that ends early reports: the object holds
// fewer bytes than its size said, which for a blob is damage.
var errShortObject = errors.New("the object is shorter than its size")

// downloadFile writes size bytes of key into f in ranges of rangeSize
// fetched concurrently and checks, while they land, that their SHA-256 is wantSum:
// it returns errDigestMismatch (or errShortObject) for content that is not
// what its name says, and the first error of the download otherwise.
// Whatever it returns, nothing of the download is still running.
func downloadFile(ctx context.Context, api objectAPI, key string, f *os.File, size, rangeSize int64, wantSum string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := newAssembler(f, size)
	hashed := make(chan error, 1)
	go func() { hashed <- a.hash(wantSum) }()

	ranges := make(chan int64)
	errs := make(chan error, partConcurrency)
	for range partConcurrency {
		go func() {
			var first error
			for off := range ranges {
				if first != nil {
					continue // drain, so that the feeder is never left blocked
				}
				if first = a.fetch(ctx, api, key, off, min(rangeSize, size-off)); first != nil {
					cancel()
				}
			}
			errs <- first
		}()
	}
feed:
	for off := int64(0); off < size; off += rangeSize {
		select {
		case ranges <- off:
		case <-ctx.Done():
			break feed
		}
	}
	close(ranges)
	var err error
	for range partConcurrency {
		if werr := <-errs; werr != nil && (err == nil || errors.Is(err, context.Canceled) && !errors.Is(werr, context.Canceled)) {
			// The first real failure, not the cancellation it caused
			// in the others.
			err = werr
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	a.finish(err)
	herr := <-hashed
	if errors.Is(err, errShortObject) {
		return errShortObject
	}
	if err != nil {
		return err
	}
	return herr
}

// fetch downloads count bytes of key from off into the file, chunk by
// chunk, handing each to the hash. A connection that drops is resumed from
// where it stopped, a few times.
func (a *assembler) fetch(ctx context.Context, api objectAPI, key string, off, count int64) error {
	var got int64
	for attempt := 1; ; attempt++ {
		body, length, err := api.getRange(ctx, key, off+got, count-got)
		if err != nil {
			return err
		}
		if length < count-got {
			body.Close()
			return errShortObject
		}
		n, err := a.copyRange(body, off+got, count-got)
		body.Close()
		got += n
		var fileErr *fileError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fileErr):
			return fileErr.err
		case attempt >= retryAttempts:
			return api.describe(fmt.Errorf("range at %d: %w", off+got, err), "read "+key)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * rangeRetryDelay):
		}
	}
}

// fileError is a failure to write the destination file, which asking the
// service again would not mend.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }

// copyRange reads count bytes from body into the file at off, a chunk at a
// time, and returns how many it wrote. A body that ends early, whose
// response promised the whole range, is a connection that dropped.
func (a *assembler) copyRange(body io.Reader, off, count int64) (int64, error) {
	var done int64
	for done < count {
		buf := a.buffer()
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), count-done)])
		if n == 0 {
			a.release(buf)
		} else if _, werr := a.f.WriteAt(buf[:n], off+done); werr != nil {
			a.release(buf)
			return done, &fileError{werr}
		} else {
			a.landed(off+done, buf[:n])
			done += int64(n)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
	}
	return done, nil
}

// assembler is a download's file and its hash: ranges land in any order,
// and the hash follows the part of the file complete from its start,
// reading the chunks it holds in memory and the rest from the file.
type assembler struct {
	f    *os.File
	size int64

	mu       sync.Mutex
	changed  *sync.Cond
	complete int64            // bytes from the start all written
	pending  map[int64]int64  // the end of each write past complete, by its start
	held     map[int64][]byte // written chunks not yet hashed, by offset
	heldSize int
	free     [][]byte // chunk buffers for reuse
	done     bool
	err      error
}

func newAssembler(f *os.File, size int64) *assembler {
	a := &assembler{f: f, size: size, pending: map[int64]int64{}, held: map[int64][]byte{}}
	a.changed = sync.NewCond(&a.mu)
	return a
}

// buffer returns a chunk buffer to read into.
func (a *assembler) buffer() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.free); n > 0 {
		buf := a.free[n-1]
		a.free = a.free[:n-1]
		return buf
	}
	return make([]byte, downloadChunk)
}

// release takes back a chunk buffer no longer used.
func (a *assembler) release(buf []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free = append(a.free, buf[:cap(buf)])
}

// landed notes that b is written to the file at off. The hash gets b from
// memory if there is room to hold it; its buffer is released otherwise.
func (a *assembler) landed(off int64, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heldSize+len(b) <= downloadHeldBytes {
		a.held[off] = b
		a.heldSize += len(b)
	} else {
		a.free = append(a.free, b[:cap(b)])
	}
	end := off + int64(len(b))
	if off > a.complete {
		a.pending[off] = end
		return
	}
	a.complete = max(a.complete, end)
	for {
		next, ok := a.pending[a.complete]
		if !ok {
			break
		}
		delete(a.pending, a.complete)
		a.complete = next
	}
	a.changed.Broadcast()
}

// finish says the download ended, with err or complete.
func (a *assembler) finish(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done, a.err = true, err
	a.changed.Broadcast()
}

// hash follows the download, hashing the file from its start as it
// completes, and once the download has finished checks that it holds size
// bytes whose SHA-256 is want. A download that failed ends the hashing,
// and its error is the one that counts.
func (a *assembler) hash(want string) error {
	h := sha256.New()
	var hashed int64
	var buf []byte
	for {
		a.mu.Lock()
		for a.complete == hashed && !a.done {
			a.changed.Wait()
		}
		if a.err != nil || a.complete == hashed {
			failed := a.err != nil
			a.mu.Unlock()
			if failed {
				return nil
			}
			break
		}
		if b, ok := a.held[hashed]; ok {
			delete(a.held, hashed)
			a.mu.Unlock()
			h.Write(b)
			hashed += int64(len(b))
			a.mu.Lock()
			a.heldSize -= len(b)
			a.free = append(a.free, b[:cap(b)])
			a.mu.Unlock()
			continue
		}
		// Not in memory: read the file up to the next chunk that is.
		upTo := a.complete
		for off := range a.held {
			if off > hashed && off < upTo {
				upTo = off
			}
		}
		a.mu.Unlock()
		if buf == nil {
			buf = make([]byte, copyBufSize)
		}
		n, err := hashFileRange(h, a.f, hashed, upTo-hashed, buf)
		hashed += n
		if err != nil {
			return err
		}
	}
	if hashed != a.size || hex.EncodeToString(h.Sum(nil)) != want {
		return errDigestMismatch
	}
	return nil
}

// hashFileRange adds count bytes of f from off to h.
func hashFileRange(h hash.Hash, f *os.File, off, count int64, buf []byte) (int64, error) {
	return io.CopyBuffer(h, io.NewSectionReader(f, off, count), buf)
}
