package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/sdktest"
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

// startSDKServer starts `wharf server` over TLS with a certificate that
// names localhost and the Blob API's *.blob.localhost, and its URL on
// localhost, so that the SDK's uploads go to wharf.blob.localhost:<port>.
func startSDKServer(t *testing.T, flags ...string) *sdkProcessServer {
	t.Helper()
	python := sdktest.Python(t)
	dir := t.TempDir()
	ca, cert, key := sdktest.Certificate(t, dir)
	port := freePort(t)
	base := "https://localhost:" + port
	dataDir := filepath.Join(dir, "server")
	// The server, and the built-in steps calling back to it (their
	// metrics), trust the private CA as a deployment's would: by
	// SSL_CERT_FILE, in a folder the steps' sandbox is shown and their
	// unprivileged user may read.
	certs, err := os.MkdirTemp("", "wharf-ca-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(certs) })
	pem, err := os.ReadFile(ca.File)
	if err == nil {
		err = os.Chmod(certs, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(certs, "ca.pem"), pem, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, listening := launchProcessWith(t, []string{"SSL_CERT_FILE=" + filepath.Join(certs, "ca.pem")}, dataDir, "", append([]string{"--addr", "127.0.0.1:" + port,
		"--url", base, "--tls-cert", cert, "--tls-key", key, "--step-ro-path", certs}, flags...)...)
	listening()
	t.Setenv("WHARF_CA_BUNDLE", ca.File)
	t.Cleanup(func() { http.DefaultTransport = systemTransport })
	return &sdkProcessServer{base: base, dataDir: dataDir, cli: cliAgainst(t, dataDir, base), python: python,
		env: sdktest.Env(t, base, ca.File)}
}

// principal creates a service principal with role on workspace ws and
// returns its credential as --sdk-auth prints it.
func (s *sdkProcessServer) principal(t *testing.T, name, role, ws string) map[string]string {
	t.Helper()
	var sp map[string]string
	if err := json.Unmarshal([]byte(s.cli("ad", "sp", "create-for-rbac", "-n", name, "--role", role, "--scopes", "/workspaces/"+ws, "--sdk-auth")), &sp); err != nil {
		t.Fatal(err)
	}
	return sp
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
	sp := s.principal(t, "notebook", "Data Scientist", ws)
	data, err := filepath.Abs(filepath.Join(taxiShared, "taxi-data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	request, _ := filepath.Abs(filepath.Join(taxiShared, "taxi-request.json"))
	env := append(s.env, "WHARF_TENANT="+sp["tenantId"], "WHARF_CLIENT_ID="+sp["clientId"], "WHARF_CLIENT_SECRET="+sp["clientSecret"],
		"WHARF_URL="+s.base, "WHARF_WORKSPACE="+ws, "WHARF_TAXI_DATA="+data, "WHARF_TAXI_REQUEST="+request)
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
