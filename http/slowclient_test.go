package http_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// closeGuard is how long a test waits for the server to close a connection
// before calling it kept open: far beyond the shortened timeouts below, so
// a loaded machine does not fail the test, yet finite.
const closeGuard = 30 * time.Second

// listen serves f's server on a listener of its own, as `wharf server`
// does, after tune has set its limits.
func (f *fixture) listen(tune func(*wharfhttp.Server)) string {
	f.t.Helper()
	tune(f.srv)
	addr, err := f.srv.Listen("127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve() }()
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
		<-done
	})
	return addr
}

// trickle sends head, then a space (JSON whitespace, so that a decoder
// waits for more) every interval, until the server closes the connection;
// it returns what the server answered. It fails the test when the server
// keeps the connection past closeGuard. Safe to call from several
// goroutines.
func trickle(t *testing.T, addr, head string, interval time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Error(err)
		return ""
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(closeGuard))
	answer, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the server kept a trickling connection open for %s (%q); answered %q", closeGuard, firstLine(head), answer)
	}
	return string(answer)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestSlowClientsAreCut: connections that trickle their headers or body
// are closed by the server, on every kind of route, while it goes on
// serving others.
func TestSlowClientsAreCut(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	owner := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	addr := f.listen(func(s *wharfhttp.Server) {
		s.ReadHeaderTimeout = time.Second
		s.BodyReadTimeout = time.Second
	})
	auth := "Authorization: Bearer " + owner + "\r\n"
	withBody := func(method, path string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: wharf\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
	}
	const mlflow = "/mlflow/v1.0/workspaces/ws-a"
	cases := map[string]string{
		"control plane":   withBody("PUT", "/api/v1/workspaces/ws-b"),
		"mlflow":          withBody("POST", mlflow+"/api/2.0/mlflow/runs/search"),
		"artifact upload": withBody("PUT", mlflow+"/api/2.0/mlflow-artifacts/artifacts/big.bin"),
		"blob upload":     withBody("PUT", "/api/v1/workspaces/ws-a/blobs/sha256:"+strings.Repeat("0", 64)),
		"scoring":         withBody("POST", "/endpoints/ws-a/ep/score"),
		"no route":        withBody("POST", "/nowhere"),
		"headers":         "GET /healthz HTTP/1.1\r\nHost: wharf\r\nX-Slow: ",
	}
	var wg sync.WaitGroup
	for name, head := range cases {
		for range 3 {
			wg.Go(func() {
				answer := trickle(t, addr, head, 100*time.Millisecond)
				if name == "control plane" && !strings.Contains(answer, "did not arrive within") {
					t.Errorf("%s: answer %q does not say why the request failed", name, answer)
				}
			})
		}
	}
	wg.Wait()

	// The server serves on.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz after the slow clients: %d", resp.StatusCode)
	}
}

// pacedReader yields n bytes in chunks of size, one chunk every interval.
type pacedReader struct {
	r        io.Reader
	chunk    int
	interval time.Duration
	last     time.Time
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if wait := p.interval - time.Since(p.last); !p.last.IsZero() && wait > 0 {
		time.Sleep(wait)
	}
	p.last = time.Now()
	return p.r.Read(b[:min(len(b), p.chunk)])
}

// TestSteadyUploadOutlastsBodyTimeout: a streamed upload that keeps
// arriving may take many times BodyReadTimeout; only a trickle is cut.
func TestSteadyUploadOutlastsBodyTimeout(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	owner := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	addr := f.listen(func(s *wharfhttp.Server) {
		s.BodyReadTimeout = 500 * time.Millisecond
		s.StreamProgressBytes = 64 << 10
	})
	artifact := "http://" + addr + "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow-artifacts/artifacts/steady.bin"

	// At most 64 KiB every 25 ms, for at least 1 s: up to 20 times what
	// must arrive per window, for two windows or more.
	const size = 40 * 64 << 10
	sum := sha256.New()
	content := io.LimitReader(rand.NewChaCha8([32]byte{7}), size)
	body := &pacedReader{r: io.TeeReader(content, sum), chunk: 64 << 10, interval: 25 * time.Millisecond}
	resp := send(t, "PUT", artifact, owner, body)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("steady upload: %d %s", resp.StatusCode, b)
	}
	resp = send(t, "GET", artifact, owner, nil)
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || string(got.Sum(nil)) != string(sum.Sum(nil)) {
		t.Fatalf("downloaded %d bytes (err %v), want the %d uploaded", n, err, size)
	}
}

// send makes a request with body streamed as is (chunked, its length being
// unknown) and returns the response, body unread.
func send(t *testing.T, method, url, token string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// TestConnectionsPerAddressAreCapped: connections beyond the cap from one
// address are closed unanswered, and a slot freed is usable again.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	f := newFixture(t)
	addr := f.listen(func(s *wharfhttp.Server) { s.MaxConnsPerAddress = 3 })
	var held []net.Conn
	for range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	// Each held connection is served, so each has been accepted and
	// counted before the next one arrives.
	for _, conn := range held {
		if status := rawGet(t, conn, "/healthz"); status != "HTTP/1.1 200 OK" {
			t.Fatalf("held connection: %q", status)
		}
	}

	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if status := rawGet(t, over, "/healthz"); status != "" {
		t.Fatalf("a connection over the cap was answered %q", status)
	}

	held[0].Close()
	deadline := time.Now().Add(closeGuard)
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		status := rawGet(t, conn, "/healthz")
		conn.Close()
		if status == "HTTP/1.1 200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a freed slot was never given to a new connection")
		}
		time.Sleep(10 * time.Millisecond)
	}

	resp, err := http.Get(f.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "wharf_http_connections_refused_total ") ||
		strings.Contains(string(metrics), "wharf_http_connections_refused_total 0\n") {
		t.Errorf("refused connections are not counted:\n%s", metrics)
	}
}

// rawGet sends a keep-alive GET on conn and returns the status line, or
// "" when the server closes the connection without answering.
func rawGet(t *testing.T, conn net.Conn, path string) string {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(closeGuard))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: wharf\r\n\r\n", path); err != nil {
		return "" // closed by the server before the request went out
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("GET %s: no answer and no close within %s", path, closeGuard)
	}
	if err != nil {
		return ""
	}
	resp.Body.Close()
	return resp.Proto + " " + resp.Status
}
