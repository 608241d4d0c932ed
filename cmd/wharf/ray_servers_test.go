package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// balancer is the load balancer in front of several servers that a
// cluster reaches them through: each request goes to the next server in
// turn, or to another when that one does not take the connection.
type balancer struct {
	servers atomic.Pointer[[]string] // base URLs
	next    atomic.Uint32
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	servers := *b.servers.Load()
	first := int(b.next.Add(1))
	for i := range servers {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, servers[(first+i)%len(servers)]+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			continue
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	http.Error(w, "no server answers", http.StatusBadGateway)
}

// TestRayStepOutlivesItsSchedulersServer: three servers over PostgreSQL
// behind one load balancer, which the Ray cluster reaches them through.
// The server that runs the scheduler is SIGKILLed while a step runs on
// Ray; the second takes the scheduler over, follows the step on the same
// driver, records itself as the attempt's server, and records the step
// Completed, run once. The CLI talks to the third server, which holds no
// log and runs no scheduler: it streams the log, the part after the
// fail-over included, from the server the attempt now names.
func TestRayStepOutlivesItsSchedulersServer(t *testing.T) {
	addr := rayAddress(t)
	lb := &balancer{}
	lbURL := serveOnLoopback(t, lb)
	// Every server's --url is the balancer's; each listens on its own
	// address, which the balancer sends to.
	own := []string{"http://127.0.0.1:" + freePort(t), "http://127.0.0.1:" + freePort(t), "http://127.0.0.1:" + freePort(t)}
	lb.servers.Store(&own)
	db, servers := startSharedServersWith(t, 3, nil, func(i int) []string {
		return []string{"--unsafe-run-steps-as-server-user", "--warm-python=false", "--url", lbURL,
			"--addr", strings.TrimPrefix(own[i], "http://")}
	})
	if holder, _ := leaseHolder(t, db); !strings.Contains(holder, own[0]) {
		t.Fatalf("the scheduler's lease is held by %q, want the first server %s", holder, own[0])
	}
	cli := cliAgainst(t, servers[0].dataDir, own[2])
	cli("ml", "workspace", "create", "-n", "mlw")
	cli("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-cluster", "-w", "mlw", "--sandbox=false")
	deleteRayClusterAtEnd(t, "mlw")
	job, started := followedStep(t, t.TempDir(), "after the move")
	name := strings.TrimSpace(cli("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	waitForFile(t, started)
	server := func() string {
		return strings.TrimSpace(cli("ml", "job", "show", "-n", name, "-w", "mlw", "--query", "attempts[0].server", "-o", "tsv"))
	}
	if got := server(); got != own[0] {
		t.Fatalf("the running attempt's server is %q, want the scheduler's %s", got, own[0])
	}
	if err := syscall.Kill(-servers[0].cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = servers[0].cmd.Wait()
	for giveUp := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if holder, _ := leaseHolder(t, db); strings.Contains(holder, own[1]) {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatal("the second server did not take the scheduler's lease")
		}
	}
	for giveUp := time.Now().Add(30 * time.Second); server() != own[1]; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(giveUp) {
			t.Fatalf("the followed attempt's server is %q, want the new scheduler's %s", server(), own[1])
		}
	}
	releaseFollowedStep(t, cli, filepath.Dir(job), name, "after the move")
	if got := server(); got != own[1] {
		t.Errorf("the completed attempt's server is %q, want %s, which holds its log", got, own[1])
	}
}
