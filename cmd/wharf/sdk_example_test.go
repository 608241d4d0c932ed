package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/sdktest"
	"github.com/wharfml/wharf/internal/testcert"
	"github.com/wharfml/wharf/linear"
)

// taxiShared is the taxi sample data beside the repository.
const taxiShared = "../../../shared/data/taxi"

// sdkProcessServer is a `wharf server` process over TLS at
// https://localhost:<port>, as the Azure ML SDK reaches it, with the CLI
// pointed at it and the SDK's environment.
type sdkProcessServer struct {
	base, dataDir string
	cli           func(args ...string) string
	python        string
	env           []string
}

// sdkCertificates are a private CA and a certificate, for localhost and
// the Blob API's *.blob.localhost, that servers the SDK reaches serve.
type sdkCertificates struct {
	ca        *testcert.CA
	cert, key string
	// shared holds a copy of the CA's certificate, ca.pem, that a step's
	// unprivileged user may read.
	shared string
}

func newSDKCertificates(t *testing.T) *sdkCertificates {
	t.Helper()
	ca, cert, key := sdktest.Certificate(t, t.TempDir())
	shared, err := os.MkdirTemp("", "wharf-ca-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	pem, err := os.ReadFile(ca.File)
	if err == nil {
		err = os.Chmod(shared, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(shared, "ca.pem"), pem, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &sdkCertificates{ca: ca, cert: cert, key: key, shared: shared}
}

// serverEnv makes a server, and the built-in steps calling back to it
// (their metrics), trust the private CA as a deployment's would: by
// SSL_CERT_FILE, in a folder the steps' sandbox is shown.
func (c *sdkCertificates) serverEnv() []string {
	return []string{"SSL_CERT_FILE=" + filepath.Join(c.shared, "ca.pem")}
}

// serverFlags serve TLS on port at https://localhost:<port>, so that the
// SDK's uploads go to wharf.blob.localhost:<port>.
func (c *sdkCertificates) serverFlags(port string) []string {
	return []string{"--addr", "127.0.0.1:" + port, "--url", "https://localhost:" + port,
		"--tls-cert", c.cert, "--tls-key", c.key, "--step-ro-path", c.shared}
}

// cli points the in-process CLI at a server over TLS: base, whose
// owner's credential is in dataDir.
func (c *sdkCertificates) cli(t *testing.T, dataDir, base string) func(args ...string) string {
	t.Helper()
	t.Setenv("WHARF_CA_BUNDLE", c.ca.File)
	t.Cleanup(func() { http.DefaultTransport = systemTransport })
	return cliAgainst(t, dataDir, base)
}

// startSDKServer starts `wharf server` over TLS, with the certificates
// of newSDKCertificates.
func startSDKServer(t *testing.T, flags ...string) *sdkProcessServer {
	t.Helper()
	python := sdktest.Python(t)
	c := newSDKCertificates(t)
	port := freePort(t)
	dataDir := filepath.Join(t.TempDir(), "server")
	_, listening := launchProcessWith(t, c.serverEnv(), dataDir, "", append(c.serverFlags(port), flags...)...)
	base := listening()
	return &sdkProcessServer{base: base, dataDir: dataDir, cli: c.cli(t, dataDir, base), python: python,
		env: sdktest.Env(t, base, c.ca.File)}
}

// sdkPrincipal creates, through cli, a service principal with role on
// workspace ws and returns its credential as --sdk-auth prints it.
func sdkPrincipal(t *testing.T, cli func(args ...string) string, name, role, ws string) map[string]string {
	t.Helper()
	var sp map[string]string
	if err := json.Unmarshal([]byte(cli("ad", "sp", "create-for-rbac", "-n", name, "--role", role, "--scopes", "/workspaces/"+ws, "--sdk-auth")), &sp); err != nil {
		t.Fatal(err)
	}
	return sp
}

// sdkClientEnv is the environment of a script that makes its
// ClientSecretCredential and MLClient from WHARF_* variables, as
// examples/sdk's does, for principal sp on workspace ws at base.
func sdkClientEnv(env []string, sp map[string]string, base, ws string) []string {
	return append(append([]string{}, env...), "WHARF_TENANT="+sp["tenantId"], "WHARF_CLIENT_ID="+sp["clientId"],
		"WHARF_CLIENT_SECRET="+sp["clientSecret"], "WHARF_URL="+base, "WHARF_WORKSPACE="+ws)
}

// TestSDKExampleTrainsRegistersAndDeploys runs examples/sdk/train_and_deploy.py
// unchanged, configured by environment variables alone, with the real
// azure-ai-ml and a ClientSecretCredential against a `wharf server`
// process over TLS, on the taxi sample data: its training job, which runs
// the server's own binary as $WHARF, completes; its model output is
// registered with the job's metrics; the deployment answers the two rides
// of the taxi request, through the SDK and through `wharf ml
// online-endpoint invoke`, with what the registered model itself predicts.
func TestSDKExampleTrainsRegistersAndDeploys(t *testing.T) {
	s := startSDKServer(t)
	const ws = "taxi-sdk"
	s.cli("ml", "workspace", "create", "-n", ws)
	s.cli("ml", "compute", "create", "-n", "cpu-cluster", "--type", "AmlCompute", "--max-instances", "2", "-w", ws)
	sp := sdkPrincipal(t, s.cli, "notebook", "Data Scientist", ws)
	data, err := filepath.Abs(filepath.Join(taxiShared, "taxi-data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	request, _ := filepath.Abs(filepath.Join(taxiShared, "taxi-request.json"))
	env := append(sdkClientEnv(s.env, sp, s.base, ws), "WHARF_TAXI_DATA="+data, "WHARF_TAXI_REQUEST="+request)
	got, out := sdktest.Run(t, s.python, env, nil, "../../examples/sdk/train_and_deploy.py")
	// The script prints what it made, a line a stage: the keys of all.
	job, status := sdktest.Decode[string](t, got["job"]), sdktest.Decode[string](t, got["status"])
	if status != "Completed" || job == "" {
		t.Fatalf("job %q: %s\n%s", job, status, out)
	}
	if !strings.Contains(out, "Streaming user_logs/std_log.txt") {
		t.Errorf("jobs.stream printed no log:\n%s", out)
	}
	if model, version := sdktest.Decode[string](t, got["model"]), sdktest.Decode[string](t, got["version"]); model != "taxi-model" || version != "1" {
		t.Fatalf("model %s version %s", model, version)
	}
	var shown struct {
		JobName string `json:"job_name"`
		Lineage struct {
			Job     string
			Metrics map[string]float64
		}
	}
	if err := json.Unmarshal([]byte(s.cli("ml", "model", "show", "-n", "taxi-model", "-v", "1", "-w", ws)), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Lineage.Job != job || shown.Lineage.Metrics["training_r2"] <= 0.5 || shown.Lineage.Metrics["training_rmse"] <= 0 {
		t.Errorf("the model's lineage: %+v, want job %s's metrics\n%s", shown, job, out)
	}

	// What the registered model predicts for the request's rides.
	dl := t.TempDir()
	s.cli("ml", "model", "download", "-n", "taxi-model", "-v", "1", "--download-path", dl, "-w", ws)
	m, err := linear.Load(filepath.Join(dl, "taxi-model"), "")
	if err != nil {
		t.Fatal(err)
	}
	// invoke prints the endpoint's answer as a JSON string, as az does.
	var answer string
	var invoked []float64
	if err := json.Unmarshal([]byte(s.cli("ml", "online-endpoint", "invoke", "-n", "taxi-sdk-online", "-r", request, "-w", ws)), &answer); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(answer), &invoked); err != nil {
		t.Fatalf("invoke answered %s: %v", answer, err)
	}
	rows := sdktest.RequestRows(t, request)
	sdktest.CheckPredictions(t, "online-endpoint invoke", invoked, rows, m.Predict)
	sdktest.CheckPredictions(t, "the SDK's invoke", sdktest.Decode[[]float64](t, got["predictions"]), rows, m.Predict)
}

// TestSDKStreamsALogAnotherServerWrote: with two servers over one
// PostgreSQL database, the SDK talks to the second alone (as behind a
// balancer that sent it there) while the first, the scheduler's, runs
// the job and writes its log; jobs.stream, which fetches the log by the
// signed URL the second gave, prints every line of it, the second server
// asking the first for it.
func TestSDKStreamsALogAnotherServerWrote(t *testing.T) {
	python := sdktest.Python(t)
	c := newSDKCertificates(t)
	ports := []string{freePort(t), freePort(t)}
	_, servers := startSharedServersWith(t, 2, c.serverEnv(), func(i int) []string { return c.serverFlags(ports[i]) })
	base := servers[1].base
	cli := c.cli(t, servers[0].dataDir, base)
	const ws = "streams"
	cli("ml", "workspace", "create", "-n", ws)
	cli("ml", "compute", "create", "-n", "cpu-cluster", "--type", "AmlCompute", "--max-instances", "1", "-w", ws)
	sp := sdkPrincipal(t, cli, "notebook", "Data Scientist", ws)
	got, out := sdktest.Run(t, python, sdkClientEnv(sdktest.Env(t, base, c.ca.File), sp, base, ws), nil, "testdata/sdk_stream.py")
	stream := sdktest.Decode[struct{ Name, Status, Streamed string }](t, got["stream"])
	if stream.Status != "Completed" {
		t.Fatalf("job: %+v\n%s", stream, out)
	}
	var job struct {
		Attempts []struct{ Server string }
	}
	if err := json.Unmarshal([]byte(cli("ml", "job", "show", "-n", stream.Name, "-w", ws)), &job); err != nil {
		t.Fatal(err)
	}
	if len(job.Attempts) != 1 || !strings.HasSuffix(job.Attempts[0].Server, ":"+ports[0]) {
		t.Fatalf("the job ran on %+v, want the first server (port %s)", job.Attempts, ports[0])
	}
	for _, want := range []string{"first line from the step", "last line from the step", "Execution Summary"} {
		if !strings.Contains(stream.Streamed, want) {
			t.Errorf("jobs.stream from the second server printed no %q:\n%s", want, stream.Streamed)
		}
	}
}
