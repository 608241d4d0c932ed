// Package security holds end-to-end tests that attack a real Wharf server
// (the built binary, over loopback HTTP) the way a user with restricted
// rights would, and check that each attack is refused.
package security

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/testbin"
)

// wharfBinary is the built wharf binary.
func wharfBinary(t *testing.T) string { return testbin.Wharf(t) }

// server is a running `wharf server` process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string
	dataDir string
	creds   string // owner-credentials.json
	cliDir  string
}

var listenRE = regexp.MustCompile(`msg="wharf server listening" url=(\S+)`)

// startServer runs the server on a fresh data folder; it is killed when the
// test ends.
func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	root := t.TempDir()
	s := &server{t: t, dataDir: filepath.Join(root, "data"), cliDir: filepath.Join(root, "cli")}
	args := append([]string{"server", "--data-dir", s.dataDir, "--addr", "127.0.0.1:0", "--log-level", "info"}, flags...)
	s.cmd = exec.Command(wharfBinary(t), args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case s.base = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not start")
	}
	b, err := os.ReadFile(filepath.Join(s.dataDir, "owner-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.creds = string(b)
	return s
}

// wharf runs the CLI against the server as the owner and returns stdout;
// the command must succeed.
func (s *server) wharf(args ...string) string {
	s.t.Helper()
	out, errs, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("wharf %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// run runs the CLI as the owner and returns its output and error.
func (s *server) run(args ...string) (string, string, error) {
	cmd := exec.Command(wharfBinary(s.t), args...)
	cmd.Env = append(os.Environ(), "WHARF_CONFIG_DIR="+s.cliDir, "WHARF_URL="+s.base,
		"WHARF_CREDENTIALS="+s.creds, "WHARF_CLIENT_ID=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// ownerToken returns an access token of the owner.
func (s *server) ownerToken() string {
	return strings.TrimSpace(s.wharf("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
}

// call sends a request with a bearer token and returns the status and body.
func call(t *testing.T, method, url, token string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
