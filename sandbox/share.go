package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Share is a folder whose later contents reach sandboxes already running:
// a sandbox that mounts one of its subfolders (Mount.Source) sees every
// folder the server exposes there (Expose) from then on, until it is
// withdrawn. It is how a warm process, started once in its own sandbox,
// reaches the files of each job that forks workers from it, and only
// those. It is a shared-propagation bind mount, so it needs a root server.
type Share struct {
	// Dir is the folder; its subfolders are what sandboxes mount.
	Dir string
}

// sharePrefix names shares under their base folder; a pid file in each
// tells which server made it.
const sharePrefix = "wharf-share-"

// NewShare makes a share in base (an empty base means /run, or the
// temporary folder where there is no /run). Shares of servers that are
// gone are taken down first.
func NewShare(base string) (*Share, error) {
	if base == "" {
		base = "/run"
		if info, err := os.Stat(base); err != nil || !info.IsDir() {
			base = os.TempDir()
		}
	}
	sweepShares(base)
	dir, err := os.MkdirTemp(base, sharePrefix)
	if err != nil {
		return nil, fmt.Errorf("sandbox: share: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox: share: %w", err)
	}
	if err := bindMount(dir, dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox: share %s: %w", dir, err)
	}
	if err := makeShared(dir); err != nil {
		_ = detach(dir)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox: share %s: %w", dir, err)
	}
	return &Share{Dir: dir}, nil
}

// Expose shows the host folder src at Dir/name, and so at the matching
// place in every sandbox that mounts a folder above it, until withdraw is
// called.
func (s *Share) Expose(src, name string) (withdraw func(), err error) {
	target := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: share: %w", err)
	}
	if err := bindMount(src, target); err != nil {
		os.Remove(target)
		return nil, fmt.Errorf("sandbox: share %s at %s: %w", src, target, err)
	}
	return func() {
		_ = detach(target)
		_ = os.Remove(target)
	}, nil
}

// Close takes the share down with everything exposed in it.
func (s *Share) Close() error {
	if s == nil {
		return nil
	}
	err := detach(s.Dir)
	if rerr := os.RemoveAll(s.Dir); err == nil {
		err = rerr
	}
	return err
}

// sweepShares takes down the shares in base whose server is gone (killed,
// so it never closed them).
func sweepShares(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, sharePrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		_ = detach(d)
		_ = os.RemoveAll(d)
	}
}
