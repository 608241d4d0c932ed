package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/testbin"
)

// wharfBinary builds the real binary once per test run: the crash test must
// kill a separate process, not a goroutine.
func wharfBinary(t *testing.T) string { return testbin.Wharf(t) }

var listenRE = regexp.MustCompile(`msg="wharf server listening" url=(\S+)`)

// startProcess runs `wharf server` with any extra flags and waits for it to
// log its URL.
func startProcess(t *testing.T, dataDir, db string, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd, listening := launchProcess(t, dataDir, db, flags...)
	return cmd, listening()
}

// launchProcess starts `wharf server` without waiting: listening waits
// for it to serve and returns its base URL, so that several can start at
// the same moment.
func launchProcess(t *testing.T, dataDir, db string, flags ...string) (cmd *exec.Cmd, listening func() string) {
	t.Helper()
	return launchProcessWith(t, nil, dataDir, db, flags...)
}

// launchProcessWith is launchProcess with env added to the server's
// environment.
func launchProcessWith(t *testing.T, env []string, dataDir, db string, flags ...string) (cmd *exec.Cmd, listening func() string) {
	t.Helper()
	args := append([]string{"server", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--log-level", "info"}, flags...)
	for _, p := range testVenvs() {
		args = append(args, "--step-ro-path", p)
	}
	if db != "" {
		args = append(args, "--db", db)
	}
	cmd = exec.Command(wharfBinary(t), args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	found := make(chan string, 1)
	var tail []string
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			tail = append(tail[max(0, len(tail)-19):], sc.Text())
		}
	}()
	return cmd, func() string {
		t.Helper()
		select {
		case u := <-found:
			return u
		case <-ended:
			t.Fatalf("server in %s exited before serving:\n%s", dataDir, strings.Join(tail, "\n"))
		case <-time.After(60 * time.Second):
			t.Fatal("server did not start within 60s")
		}
		return ""
	}
}

func ownerClient(t *testing.T, dataDir, base string) *wharfhttp.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "owner-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c wharfhttp.SDKAuth
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	tok, _, err := wharfhttp.RequestToken(context.Background(), base, c.TenantID, c.ClientID, c.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	return wharfhttp.NewClient(base, func(context.Context) (string, error) { return tok, nil })
}

// freshPostgres creates a database for one test on the server named by
// WHARF_TEST_POSTGRES_URL. Under CI a missing server is a failure, never a
// silent skip.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WHARF_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_POSTGRES_URL is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_POSTGRES_URL not set; ./scripts/test starts PostgreSQL")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("wharf_crash_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestSIGKILLDuringWritesKeepsAcknowledgedWrites kills the server with
// SIGKILL in the middle of a burst of concurrent writes, restarts it on the
// same store, and checks that it opens cleanly and holds every write it
// acknowledged.
func TestSIGKILLDuringWritesKeepsAcknowledgedWrites(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := ""
			if backend == "postgres" {
				db = freshPostgres(t)
			}
			dataDir := t.TempDir()
			cmd, base := startProcess(t, dataDir, db)
			c := ownerClient(t, dataDir, base)
			ctx := context.Background()
			if err := c.Do(ctx, "PUT", "/api/v1/workspaces/crash", map[string]any{}, nil); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			acked := map[string]bool{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						name := fmt.Sprintf("c-%d-%d", g, i)
						err := c.Do(ctx, "PUT", "/api/v1/workspaces/crash/computes/"+name, map[string]any{"max_instances": i%7 + 1}, nil)
						if err != nil {
							return // the server is gone
						}
						mu.Lock()
						acked[name] = true
						mu.Unlock()
					}
				}(g)
			}
			// Kill once a good number of writes is acknowledged and more
			// are in flight.
			deadline := time.Now().Add(60 * time.Second)
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 300 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			close(stop)
			wg.Wait()
			if len(acked) < 300 {
				t.Fatalf("only %d writes acknowledged before the deadline", len(acked))
			}

			_, base2 := startProcess(t, dataDir, db)
			c2 := ownerClient(t, dataDir, base2)
			var list []wharf.Compute
			if err := c2.Do(ctx, "GET", "/api/v1/workspaces/crash/computes", nil, &list); err != nil {
				t.Fatal(err)
			}
			stored := map[string]bool{}
			for _, cp := range list {
				stored[cp.Name] = true
			}
			missing := 0
			for name := range acked {
				if !stored[name] {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged writes lost after SIGKILL", missing, len(acked))
			}
			// The restarted server takes writes again.
			if err := c2.Do(ctx, "PUT", "/api/v1/workspaces/crash/computes/after", map[string]any{}, nil); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d acknowledged writes, %d stored after restart", backend, len(acked), len(stored))
		})
	}
}
