package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreateKey returns a Sealer for the master key stored at path,
// generating the key first if the file does not exist.
//
// A new key is written to a temporary file in the same directory, synced,
// and only then published under path, so a crash never leaves a truncated
// key behind. Publishing refuses to overwrite, so when two processes race
// to create the key both end up using the same one.
//
// An existing key file must be a regular file of exactly KeySize bytes with
// no group or other permission bits; anything else is refused rather than
// silently used, because a readable master key exposes every secret.
func LoadOrCreateKey(path string) (*Sealer, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
		if errors.Is(err, fs.ErrExist) {
			// Someone else created it first; use theirs.
			key, err = readKeyFile(path)
		}
	}
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return NewSealer(key)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("seal: open key file: %w", err)
	}
	defer f.Close()

	// Stat the open descriptor, not the path, so the checks apply to the
	// file actually read.
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: stat key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("seal: key file %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, info.Mode().Perm())
	}
	if info.Size() != KeySize {
		return nil, fmt.Errorf("seal: key file %s has size %d, want %d", path, info.Size(), KeySize)
	}

	key := make([]byte, KeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	// Guard against the file growing between Stat and read.
	var extra [1]byte
	if n, _ := f.Read(extra[:]); n != 0 {
		clear(key)
		return nil, fmt.Errorf("seal: key file %s has unexpected size", path)
	}
	return key, nil
}

func createKeyFile(path string) (key []byte, err error) {
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: generate key: %w", err)
	}
	defer func() {
		if err != nil {
			clear(key)
			key = nil
		}
	}()

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	tmpName := tmp.Name()
	// The temp name never outlives this function: on success it has been
	// linked or renamed into place, on failure it is garbage.
	defer os.Remove(tmpName)

	if err := writeAndSync(tmp, key); err != nil {
		return nil, err
	}

	// A hard link publishes atomically and fails if path already exists,
	// which a rename would not. Fall back to rename only on filesystems
	// that do not support links.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := os.Rename(tmpName, path); err != nil {
			return nil, fmt.Errorf("seal: publish key file: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return key, nil
}

func writeAndSync(f *os.File, key []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("seal: chmod key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return fmt.Errorf("seal: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("seal: sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal: close key file: %w", err)
	}
	return nil
}

// syncDir makes the new directory entry durable; without it a crash can
// lose the key file even though its contents were synced.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seal: open key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seal: sync key directory: %w", err)
	}
	return nil
}
