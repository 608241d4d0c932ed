package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func testSealer(t *testing.T) *Sealer {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := testSealer(t)
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		ad := []byte("secrets/project-1/db-password")
		ct, err := s.Seal(pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + 12 + len(pt) + 16; len(ct) != want {
			t.Fatalf("sealed length %d, want %d", len(ct), want)
		}
		if ct[0] != formatV1 {
			t.Fatalf("version byte %#x", ct[0])
		}
		if len(pt) > 8 && bytes.Contains(ct, pt) {
			t.Fatal("plaintext visible in sealed output")
		}
		got, err := s.Open(ct, ad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip mismatch")
		}
	}
}

func TestNonceIsFresh(t *testing.T) {
	s := testSealer(t)
	a, _ := s.Seal([]byte("same"), nil)
	b, _ := s.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestTamperDetection(t *testing.T) {
	s := testSealer(t)
	ad := []byte("ad")
	ct, err := s.Seal([]byte("top secret value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		for _, bit := range []byte{0x01, 0x80} {
			mod := bytes.Clone(ct)
			mod[i] ^= bit
			if _, err := s.Open(mod, ad); !errors.Is(err, ErrOpen) {
				t.Fatalf("flip at byte %d bit %#x: got %v, want ErrOpen", i, bit, err)
			}
		}
	}
	for n := 0; n < len(ct); n++ {
		if _, err := s.Open(ct[:n], ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("truncated to %d: got %v, want ErrOpen", n, err)
		}
	}
	if _, err := s.Open(append(bytes.Clone(ct), 0), ad); !errors.Is(err, ErrOpen) {
		t.Fatalf("extended: got %v, want ErrOpen", err)
	}
	if _, err := s.Open(nil, ad); !errors.Is(err, ErrOpen) {
		t.Fatalf("nil: got %v, want ErrOpen", err)
	}
}

func TestWrongAdditionalData(t *testing.T) {
	s := testSealer(t)
	ct, err := s.Seal([]byte("value"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{nil, []byte("row-2"), []byte("row-1 "), []byte("Row-1")} {
		if _, err := s.Open(ct, ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("ad %q: got %v, want ErrOpen", ad, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	ct, err := testSealer(t).Seal([]byte("value"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testSealer(t).Open(ct, nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("got %v, want ErrOpen", err)
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Fatalf("accepted %d-byte key", n)
		}
	}
}

func TestKeyFileCreatedAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	s1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	if info.Size() != KeySize {
		t.Fatalf("key file size %d", info.Size())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("leftover files next to key: %v", entries)
	}

	ct, err := s1.Seal([]byte("persisted"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Open(ct, []byte("ad"))
	if err != nil {
		t.Fatalf("second load did not reuse the key: %v", err)
	}
	if string(got) != "persisted" {
		t.Fatalf("got %q", got)
	}
}

func TestKeyFileRejectsLoosePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(path); err == nil {
			t.Fatalf("accepted key file with mode %04o", mode)
		}
	}
	// Refusal must not replace the key either.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err != nil {
		t.Fatalf("0600 rejected after restoring mode: %v", err)
	}
}

func TestKeyFileRejectsWrongSize(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 16, 31, 33, 64} {
		path := filepath.Join(dir, "bad.key")
		if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(path); err == nil {
			t.Fatalf("accepted %d-byte key file", n)
		}
		after, err := os.ReadFile(path)
		if err != nil || len(after) != n {
			t.Fatalf("bad key file was modified")
		}
		os.Remove(path)
	}
}

func TestKeyFileRejectsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("accepted a directory as key file")
	}
}

func TestKeyFileErrorsDoNotLeakKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	key := bytes.Repeat([]byte("K"), KeySize)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateKey(path)
	if err == nil {
		if runtime.GOOS == "windows" {
			t.Skip("POSIX permissions")
		}
		t.Fatal("accepted 0644 key file")
	}
	if bytes.Contains([]byte(err.Error()), key) {
		t.Fatal("error text contains key bytes")
	}
}

func TestKeyFileConcurrentCreateAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	sealers := make([]*Sealer, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := 0; i < n; i++ {
		go func(i int) {
			sealers[i], errs[i] = LoadOrCreateKey(path)
			done <- i
		}(i)
	}
	for i := 0; i < n; i++ {
		<-done
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("loader %d: %v", i, err)
		}
	}
	ct, err := sealers[0].Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sealers {
		if _, err := s.Open(ct, nil); err != nil {
			t.Fatalf("loader %d ended up with a different key", i)
		}
	}
}
