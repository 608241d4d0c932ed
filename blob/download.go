package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Download tuning. A blob is fetched in ranges, partConcurrency at a time,
// as the SDKs' own parallel downloads do, and each range is read and
// written to the file in chunks of downloadChunk. Every chunk stays in
// memory until the hash, which follows the part of the file complete from
// its start, has read it: the hash never reads the file back. What that
// holds is bounded by a window: a chunk that starts downloadWindow bytes or
// more past what is hashed waits for the hash before it is read, so a range
// that lags, or a hash that gets less CPU than the transfer, holds back the
// ranges ahead instead of letting them pile up in memory or spill to the
// file, and the hash finishes moments after the last range lands rather
// than working alone through a backlog.
const (
	downloadChunk = 128 << 10
	// downloadWindow is twice the ranges in flight at the SDKs' part
	// size, so that ranges that finish at different times rarely wait;
	// smaller ranges get twice theirs (see windowFor).
	downloadWindow = 2 * partConcurrency * partSize
	// rangeRetryDelay is the pause before a range whose connection
	// dropped is asked for again from where it stopped, growing with each
	// try.
	rangeRetryDelay = 200 * time.Millisecond
)

// windowFor is the window of a download in ranges of rangeSize: twice the
// ranges in flight, up to downloadWindow, and at least a chunk.
func windowFor(rangeSize int64) int64 {
	return max(downloadChunk, min(downloadWindow, 2*partConcurrency*rangeSize))
}

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
	a := newAssembler(f, size, windowFor(rangeSize))
	// A chunk waiting for the hash stops waiting when the download is
	// cancelled or has failed elsewhere.
	stop := context.AfterFunc(ctx, a.wakeWaiting)
	defer stop()
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
	if errors.Is(err, errHashFailed) {
		// The ranges stopped because the hash did: its error says why.
		return herr
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
		n, err := a.copyRange(ctx, body, off+got, count-got)
		body.Close()
		got += n
		var fileErr *fileError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errHashFailed):
			return err
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

// errHashFailed is what a chunk waiting for the hash gets when the hash
// has stopped: it will never make room again.
var errHashFailed = errors.New("blob: the download's hash stopped")

// copyRange reads count bytes from body into the file at off, a chunk at a
// time, each once it is within the window, and returns how many it wrote.
// A body that ends early, whose response promised the whole range, is a
// connection that dropped.
func (a *assembler) copyRange(ctx context.Context, body io.Reader, off, count int64) (int64, error) {
	var done int64
	for done < count {
		if err := a.reserve(ctx, off+done); err != nil {
			return done, err
		}
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
// reading each chunk from memory, where it stays until then.
type assembler struct {
	f      *os.File
	size   int64
	window int64

	mu sync.Mutex
	// landedCond is signalled when the part complete from the start
	// grows or the download ends; hashedCond when the hash moves on or
	// the chunks waiting for it should look at the context again.
	landedCond, hashedCond *sync.Cond
	complete               int64            // bytes from the start all written
	hashed                 int64            // bytes from the start hashed
	pending                map[int64]int64  // the end of each write past complete, by its start
	held                   map[int64][]byte // written chunks not yet hashed, by offset
	waiting                int              // chunks waiting for the window
	free                   [][]byte         // chunk buffers for reuse
	done                   bool
	hashStopped            bool
	err                    error
}

func newAssembler(f *os.File, size, window int64) *assembler {
	a := &assembler{f: f, size: size, window: window, pending: map[int64]int64{}, held: map[int64][]byte{}}
	a.landedCond = sync.NewCond(&a.mu)
	a.hashedCond = sync.NewCond(&a.mu)
	return a
}

// reserve waits until a chunk at off is within the window, that is less
// than window bytes past what is hashed. The chunk at the start of the
// part not yet complete never waits, so the hash always gets what it needs
// to move on.
func (a *assembler) reserve(ctx context.Context, off int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for off >= a.hashed+a.window {
		if err := ctx.Err(); err != nil {
			return err
		}
		if a.hashStopped {
			return errHashFailed
		}
		a.waiting++
		a.hashedCond.Wait()
		a.waiting--
	}
	return nil
}

// wakeWaiting has the chunks waiting for the window look again at why
// they wait.
func (a *assembler) wakeWaiting() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hashedCond.Broadcast()
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

// landed notes that b is written to the file at off, and keeps it for the
// hash.
func (a *assembler) landed(off int64, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[off] = b
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
	a.landedCond.Signal()
}

// finish says the download ended, with err or complete.
func (a *assembler) finish(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done, a.err = true, err
	a.landedCond.Signal()
}

// hash follows the download, hashing the chunks complete from the start
// as they land, and once the download has finished checks that it holds
// size bytes whose SHA-256 is want. A download that failed ends the
// hashing, and its error is the one that counts.
func (a *assembler) hash(want string) (err error) {
	defer func() {
		// Whatever ended the hash, no chunk waits for it any more.
		a.mu.Lock()
		a.hashStopped = true
		a.hashedCond.Broadcast()
		a.mu.Unlock()
	}()
	h := sha256.New()
	var hashed int64
	for {
		a.mu.Lock()
		for a.complete == hashed && !a.done {
			a.landedCond.Wait()
		}
		if a.err != nil || a.complete == hashed {
			failed := a.err != nil
			a.mu.Unlock()
			if failed {
				return nil
			}
			break
		}
		b, ok := a.held[hashed]
		delete(a.held, hashed)
		a.mu.Unlock()
		if !ok {
			// Every chunk written stays held until it is hashed, and
			// the chunks of a range follow each other.
			return fmt.Errorf("blob: download: no chunk at %d for the hash", hashed)
		}
		h.Write(b)
		hashed += int64(len(b))
		a.mu.Lock()
		a.hashed = hashed
		a.free = append(a.free, b[:cap(b)])
		if a.waiting > 0 {
			a.hashedCond.Broadcast()
		}
		a.mu.Unlock()
	}
	if hashed != a.size || hex.EncodeToString(h.Sum(nil)) != want {
		return errDigestMismatch
	}
	return nil
}
