package blob

import (
	"context"
	"io"
	"sync/atomic"
)

// ReadCounter counts what reading datastore paths into the content store
// has read, for a client waiting on it: the objects and bytes to read,
// as each path's listing finds them, and those read so far. Objects
// already held in the version listed are not counted: they cost nothing.
// Its methods may be called from several goroutines.
type ReadCounter struct {
	files, filesTotal atomic.Int64
	bytes, bytesTotal atomic.Int64
}

// ReadCount is a ReadCounter's count at one moment.
type ReadCount struct {
	// Files and Bytes are what was read so far.
	Files int64 `json:"files_read"`
	Bytes int64 `json:"bytes_read"`
	// FilesTotal and BytesTotal are what the paths listed so far hold
	// to be read; a later path of the same job adds to them.
	FilesTotal int64 `json:"files_total"`
	BytesTotal int64 `json:"bytes_total"`
}

// Count returns what was read so far, of what is to be read.
func (c *ReadCounter) Count() ReadCount {
	return ReadCount{Files: c.files.Load(), Bytes: c.bytes.Load(), FilesTotal: c.filesTotal.Load(), BytesTotal: c.bytesTotal.Load()}
}

type readCounterKey struct{}

// WithReadCounter returns a context under which every Container.Read
// counts into c.
func WithReadCounter(ctx context.Context, c *ReadCounter) context.Context {
	return context.WithValue(ctx, readCounterKey{}, c)
}

// readCounterOf is the context's ReadCounter; one counting nothing where
// it has none.
func readCounterOf(ctx context.Context) *ReadCounter {
	if c, ok := ctx.Value(readCounterKey{}).(*ReadCounter); ok {
		return c
	}
	return &ReadCounter{}
}

// tallyReader adds the bytes read through it to a ReadCounter's.
type tallyReader struct {
	r io.Reader
	c *ReadCounter
}

func (cr tallyReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.c.bytes.Add(int64(n))
	return n, err
}
