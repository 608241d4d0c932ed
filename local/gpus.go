package local

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// gpuQueryTimeout bounds the one nvidia-smi call that lists the host's
// GPUs, so a wedged driver cannot hold up every step.
const gpuQueryTimeout = 30 * time.Second

// GPUs hands the host's GPUs to the attempts that ask for them, each GPU
// to one attempt at a time. The GPUs are found once, on first use, with
// nvidia-smi; a host without it has none. The zero value is ready to use
// and safe for concurrent use.
type GPUs struct {
	// NvidiaSMI is the program that lists the GPUs; "" is nvidia-smi,
	// looked up on the server's PATH.
	NvidiaSMI string

	once sync.Once
	ids  []string // GPU UUIDs, in nvidia-smi's order
	none string   // why there are none, when there are none

	mu    sync.Mutex
	busy  map[string]bool
	freed chan struct{} // closed, and replaced, whenever GPUs are released
}

// Host returns the host's GPUs as the UUIDs CUDA_VISIBLE_DEVICES accepts,
// and, when there are none, why.
func (g *GPUs) Host() (ids []string, none string) {
	g.once.Do(g.discover)
	return g.ids, g.none
}

func (g *GPUs) discover() {
	prog := g.NvidiaSMI
	if prog == "" {
		p, err := exec.LookPath("nvidia-smi")
		if err != nil {
			g.none = "nvidia-smi was not found on the server's PATH, so the server sees no GPU"
			return
		}
		prog = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), gpuQueryTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, "--query-gpu=uuid", "--format=csv,noheader").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(exit.Stderr)))
		}
		g.none = fmt.Sprintf("listing the GPUs with %s failed (%v), so the server sees no GPU", prog, err)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if id := strings.TrimSpace(line); id != "" {
			g.ids = append(g.ids, id)
		}
	}
	if len(g.ids) == 0 {
		g.none = prog + " lists no GPU"
	}
}

// TryAcquire takes n free GPUs if there are that many now.
func (g *GPUs) TryAcquire(n int) ([]string, bool) {
	all, _ := g.Host()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy == nil {
		g.busy = map[string]bool{}
	}
	var got []string
	for _, id := range all {
		if len(got) == n {
			break
		}
		if !g.busy[id] {
			got = append(got, id)
		}
	}
	if len(got) < n {
		return nil, false
	}
	for _, id := range got {
		g.busy[id] = true
	}
	return got, true
}

// Acquire waits until n GPUs are free and takes them, or returns ctx's
// error. Asking for more GPUs than the host has is an error at once.
func (g *GPUs) Acquire(ctx context.Context, n int) ([]string, error) {
	if all, none := g.Host(); n > len(all) {
		if none == "" {
			none = fmt.Sprintf("the host has %d", len(all))
		}
		return nil, fmt.Errorf("%d GPUs asked for: %s", n, none)
	}
	for {
		g.mu.Lock()
		if g.freed == nil {
			g.freed = make(chan struct{})
		}
		freed := g.freed
		g.mu.Unlock()
		if ids, ok := g.TryAcquire(n); ok {
			return ids, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-freed:
		}
	}
}

// Release gives back GPUs that TryAcquire or Acquire took.
func (g *GPUs) Release(ids []string) {
	if len(ids) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		delete(g.busy, id)
	}
	if g.freed != nil {
		close(g.freed)
		g.freed = nil
	}
}
