// Package smtptest starts a real SMTP server for tests: aiosmtpd, from the
// venv scripts/test keeps in .tools (WHARF_TEST_AIOSMTPD), requiring
// STARTTLS with a certificate of the test's own CA and PLAIN
// authentication (mail from a client that has not authenticated is
// refused).
package smtptest

import (
	"bufio"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/testcert"
)

//go:embed server.py
var serverPy []byte

// Server is a running SMTP server.
type Server struct {
	Host     string
	Port     int
	User     string
	Password string
	// CAFile and Pool are the CA its certificate is signed by.
	CAFile string
	Pool   *x509.CertPool
	out    string
}

// Message is one message the server received.
type Message struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	Data string   `json:"data"`
	// TLS reports whether the message came over STARTTLS.
	TLS bool `json:"tls"`
}

// Start starts a server that runs until the test ends. Without
// WHARF_TEST_AIOSMTPD the test is skipped, or failed under CI, whose
// machines have it.
func Start(t testing.TB) *Server {
	t.Helper()
	py := os.Getenv("WHARF_TEST_AIOSMTPD")
	if py == "" {
		msg := "WHARF_TEST_AIOSMTPD not set; ./scripts/test installs aiosmtpd"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	ca := testcert.NewCA(t, dir, "smtp")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, cert, key)
	script := filepath.Join(dir, "server.py")
	if err := os.WriteFile(script, serverPy, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: "127.0.0.1", User: "alerts", Password: "smtp-secret", CAFile: ca.File, Pool: ca.Pool(), out: filepath.Join(dir, "messages.jsonl")}
	cmd := exec.Command(py, script, s.out, cert, key, s.User, s.Password)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("aiosmtpd did not start: %v", err)
	}
	if s.Port, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("aiosmtpd printed %q", line)
	}
	return s
}

// Messages returns what the server has received so far.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	b, err := os.ReadFile(s.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("message %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// WaitMessages waits until the server has received n messages, as a
// delivery made in the background lands, and returns them.
func (s *Server) WaitMessages(t testing.TB, n int, within time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.Messages(t)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}
