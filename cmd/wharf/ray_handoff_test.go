package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// dropFirstAssignment is a fault injector between a Ray driver and the
// server: it passes every request on, but closes the connection of the
// first poll whose answer hands the driver an attempt, after the server
// wrote that answer and before the driver reads any of it. A real
// network drops such answers; nothing else here can be made to.
type dropFirstAssignment struct {
	server  atomic.Pointer[string] // the server's own address, set once it listens
	dropped atomic.Int32
}

func (p *dropFirstAssignment) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+*p.server.Load()+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if strings.HasSuffix(r.URL.Path, "/driver/poll") {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if bytes.Contains(body, []byte(`"assign":[{`)) && p.dropped.CompareAndSwap(0, 1) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// serveOnLoopback serves h on a loopback port until the test ends, and
// returns its URL.
func serveOnLoopback(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// TestRayLostPollAnswerIsOfferedAgain: the answer that hands the driver
// an attempt never reaches it. The server, not hearing that the driver
// started the attempt, offers it again; the step runs once and the job
// completes, long before any timeout.
func TestRayLostPollAnswerIsOfferedAgain(t *testing.T) {
	addr := rayAddress(t)
	proxy := &dropFirstAssignment{}
	// The cluster reaches the server through the proxy (--url).
	proxyURL := serveOnLoopback(t, proxy)
	e := newCLIEnvWith(t, func(o *serverOptions) { o.url = proxyURL })
	proxy.server.Store(&e.srv.Addr)
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-cluster", "-w", "dev", "--sandbox=false")
	t.Cleanup(func() { e.wharf("ml", "compute", "delete", "-n", "ray-cluster", "-w", "dev", "--yes") })

	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	job := writeFile(t, dir, "job.yml", `command: echo run >> `+runs+` && echo done > ${{outputs.out}}/o.txt
environment: {image: python:3.11}
compute: azureml:ray-cluster
outputs:
  out: {type: uri_folder}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	if proxy.dropped.Load() != 1 {
		t.Fatal("no poll answer carrying an attempt was dropped")
	}
	if b, _ := os.ReadFile(runs); string(b) != "run\n" {
		t.Errorf("the step's command ran %d times, want once", strings.Count(string(b), "run"))
	}
	if n := strings.Fields(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "length(attempts)", "-o", "tsv")); len(n) != 1 || n[0] != "1" {
		t.Errorf("attempts: %v, want one", n)
	}
}

// TestRayUnreachableClusterFailsTheStep: a Ray-backed compute whose
// dashboard refuses connections fails the step after a few tries, saying
// which compute and address, instead of leaving it Starting.
func TestRayUnreachableClusterFailsTheStep(t *testing.T) {
	e := newCLIEnv(t)
	address := "http://127.0.0.1:" + freePort(t) // closed: nothing listens there
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "attach", "--type", "ray", "--address", address, "-n", "ray-cluster", "-w", "dev")
	dir := t.TempDir()
	job := writeFile(t, dir, "job.yml", "command: echo never\nenvironment: {image: python:3.11}\ncompute: azureml:ray-cluster\n")
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Failed" {
		t.Fatalf("job: %s, want Failed\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	why := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "error", "-o", "tsv")
	for _, want := range []string{"compute ray-cluster", address, "tries"} {
		if !strings.Contains(why, want) {
			t.Errorf("the job's error %q does not name %q", why, want)
		}
	}
}
