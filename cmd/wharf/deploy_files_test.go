package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployFilesMatchTheServer checks the Dockerfile and the systemd unit
// against the server they start: the flags they pass to `wharf server`
// exist, the health check's path answers 200 on a running server, the
// image runs as a user other than root with its data folder as a volume
// and bubblewrap installed, and it stamps the version as releases do.
func TestDeployFilesMatchTheServer(t *testing.T) {
	root := repoRoot(t)
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		// Continuation lines joined, as Docker and systemd read them.
		return strings.ReplaceAll(string(b), "\\\n", " ")
	}
	dockerfile, unit := read("Dockerfile"), read(filepath.Join("deploy", "systemd", "wharf.service"))

	server := newApp(strings.NewReader(""), os.Stdout, os.Stderr).serverCommand()
	checkFlags := func(where string, args []string) {
		t.Helper()
		if len(args) == 0 || args[0] != "server" {
			t.Fatalf("%s does not run `wharf server`: %q", where, args)
		}
		dataDir := false
		for _, a := range args[1:] {
			if name, ok := strings.CutPrefix(a, "--"); ok {
				if server.Flags().Lookup(name) == nil {
					t.Errorf("%s: `wharf server` has no flag --%s", where, name)
				}
				dataDir = dataDir || name == "data-dir"
			}
		}
		if !dataDir {
			t.Errorf("%s: no --data-dir", where)
		}
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatal("Dockerfile has no CMD in exec form")
	}
	var cmdArgs []string
	if err := json.Unmarshal([]byte(m[1]), &cmdArgs); err != nil {
		t.Fatal(err)
	}
	checkFlags("Dockerfile CMD", cmdArgs)
	m = regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/wharf (.*)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("wharf.service has no ExecStart of /usr/local/bin/wharf")
	}
	checkFlags("wharf.service ExecStart", strings.Fields(m[1]))
	for _, want := range []string{"User=wharf", "StateDirectory=wharf", "NoNewPrivileges=yes"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("wharf.service lacks %s", want)
		}
	}
	// Each of these stops bubblewrap from building a sandbox.
	for _, bad := range []string{"RestrictNamespaces=", "PrivateUsers=", "ProtectKernelTunables=", "ProtectProc="} {
		if strings.Contains(unit, "\n"+bad) {
			t.Errorf("wharf.service sets %s, which bubblewrap cannot work under", bad)
		}
	}

	for _, want := range []string{"bubblewrap", "python3-venv", `VOLUME ["/var/lib/wharf"]`, "CGO_ENABLED=0",
		"-X github.com/wharfml/wharf.Version=${VERSION} -X github.com/wharfml/wharf.Commit=${COMMIT} -X github.com/wharfml/wharf.BuildDate=${DATE}"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)$`).FindAllStringSubmatch(dockerfile, -1)
	if len(users) == 0 || users[len(users)-1][1] == "root" || users[len(users)-1][1] == "0" {
		t.Errorf("the image runs as root (USER lines %v)", users)
	}

	m = regexp.MustCompile(`HEALTHCHECK .*CMD curl \S+ "\$\{WHARF_HEALTH_URL:-http://127\.0\.0\.1:(\d+)\}(/\S+)"`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatal("Dockerfile has no curl HEALTHCHECK of a server path")
	}
	if !strings.Contains(dockerfile, "EXPOSE "+m[1]+"\n") || !strings.Contains(m[0]+dockerfile, `"0.0.0.0:`+m[1]+`"`) {
		t.Errorf("the health check's port %s is not the port the server listens on", m[1])
	}
	e := newCLIEnv(t)
	resp, err := http.Get(e.srv.HTTP.URL + m[2])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health check %s: %s", m[2], resp.Status)
	}
}
