package ray

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/wharfml/wharf"
)

// ExecutablePath is where the server serves its own executable to the
// nodes of Ray-backed clusters, under its URL.
const ExecutablePath = "/api/v1/ray/wharf"

// Executable is the server's own program as Ray nodes fetch it, so that
// steps there run the same built-in components ($WHARF) and build their
// Python environments with the same builder as on local compute.
type Executable struct {
	// Path is the program's file; empty means os.Executable().
	Path string

	mu sync.Mutex
	// seen is the file the digest was computed from, by size and
	// modification time: a program replaced on disk (an upgrade) is
	// hashed again.
	seenSize int64
	seenMod  time.Time
	info     *wharf.ClusterExecutable
}

func (x *Executable) path() (string, error) {
	if x.Path != "" {
		return x.Path, nil
	}
	return os.Executable()
}

// Info describes the program, hashing it the first time and whenever
// the file changed since.
func (x *Executable) Info() (*wharf.ClusterExecutable, error) {
	f, info, err := x.Open()
	if err != nil {
		return nil, err
	}
	f.Close()
	return info, nil
}

// Open opens the program and describes what was opened: the digest is of
// the open file's bytes even when the path is replaced meanwhile.
func (x *Executable) Open() (io.ReadSeekCloser, *wharf.ClusterExecutable, error) {
	p, err := x.path()
	if err != nil {
		return nil, nil, fmt.Errorf("finding the server's executable: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the server's executable: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.info == nil || st.Size() != x.seenSize || !st.ModTime().Equal(x.seenMod) {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reading the server's executable: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, err
		}
		x.info = &wharf.ClusterExecutable{Path: ExecutablePath, SHA256: hex.EncodeToString(h.Sum(nil)), Size: st.Size(),
			GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
		x.seenSize, x.seenMod = st.Size(), st.ModTime()
	}
	info := *x.info
	return f, &info, nil
}
