package local_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf/local"
)

// fakeNvidiaSMI writes a stand-in for nvidia-smi that lists ids as GPUs:
// the tests here are of how GPUs are shared out, which needs no GPU.
func fakeNvidiaSMI(t *testing.T, ids ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nvidia-smi")
	script := "#!/bin/sh\ntest \"$1\" = --query-gpu=uuid || exit 9\nprintf '%s\\n' " + strings.Join(ids, " ") + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGPUsAreHandedOutOnceEach(t *testing.T) {
	g := &local.GPUs{NvidiaSMI: fakeNvidiaSMI(t, "GPU-a", "GPU-b", "GPU-c")}
	if ids, none := g.Host(); !slices.Equal(ids, []string{"GPU-a", "GPU-b", "GPU-c"}) || none != "" {
		t.Fatalf("host GPUs %v (%q)", ids, none)
	}
	two, ok := g.TryAcquire(2)
	if !ok || len(two) != 2 {
		t.Fatalf("took %v, %v", two, ok)
	}
	if _, ok := g.TryAcquire(2); ok {
		t.Fatal("two more GPUs handed out of the one left")
	}
	if _, err := g.Acquire(t.Context(), 4); err == nil || !strings.Contains(err.Error(), "4 GPUs asked for") {
		t.Fatalf("asking for more than exist: %v", err)
	}
	got := make(chan []string)
	go func() {
		ids, err := g.Acquire(t.Context(), 2)
		if err != nil {
			t.Error(err)
		}
		got <- ids
	}()
	g.Release(two)
	ids := <-got
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("after the release: %v", ids)
	}
	one, ok := g.TryAcquire(1)
	if !ok || slices.Contains(ids, one[0]) {
		t.Errorf("the last free GPU: %v %v, while %v are taken", one, ok, ids)
	}
}

func TestGPUsWithoutNvidiaSMIAreNone(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	g := &local.GPUs{}
	ids, none := g.Host()
	if len(ids) != 0 || !strings.Contains(none, "nvidia-smi was not found") {
		t.Errorf("host GPUs %v, %q", ids, none)
	}
	if ids, ok := g.TryAcquire(0); !ok || len(ids) != 0 {
		t.Errorf("no GPUs asked for: %v %v", ids, ok)
	}
}

func TestGPUsWhenNvidiaSMIFailsAreNoneWithItsWords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nvidia-smi")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\nexit 9\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ids, none := (&local.GPUs{NvidiaSMI: p}).Host()
	if len(ids) != 0 || !strings.Contains(none, "could not communicate with the driver") {
		t.Errorf("host GPUs %v, %q", ids, none)
	}
}
