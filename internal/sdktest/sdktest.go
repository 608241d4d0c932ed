// Package sdktest runs the unchanged Azure ML Python SDK (azure-ai-ml) in
// tests against a Wharf server over TLS: the SDK's Python, a certificate
// for the server's names and the Blob API's, and the environment that
// points the SDK at the server.
package sdktest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/testcert"
	"github.com/wharfml/wharf/internal/testneed"
)

// sitecustomize resolves <account>.blob.localhost to the loopback address
// for the SDK's Python, as a deployment's wildcard DNS record would.
//
//go:embed sitecustomize.py
var sitecustomize []byte

// Python is the Python with azure-ai-ml installed
// (WHARF_TEST_AZUREML_PYTHON); t is skipped, or fails under CI, without it.
func Python(t testing.TB) string {
	t.Helper()
	return testneed.Env(t, "WHARF_TEST_AZUREML_PYTHON", "./scripts/test installs azure-ai-ml in .tools/")
}

// Certificate writes a certificate and key for localhost and
// *.blob.localhost, the names a server on localhost and its Blob API have,
// into dir, signed by a new CA, which it returns.
func Certificate(t testing.TB, dir string) (ca *testcert.CA, certFile, keyFile string) {
	t.Helper()
	ca = testcert.NewCA(t, dir, "sdk")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, certFile, keyFile, "*.blob.localhost")
	return ca, certFile, keyFile
}

// Env is the environment the SDK's Python runs with against the server at
// url (https://localhost:<port>), trusting caFile: this process's, less
// AZUREML_CURRENT_CLOUD (which the SDK reads before the metadata URL),
// with the cloud metadata URL, the CA bundle and the Blob API's host
// names on the loopback address.
func Env(t testing.TB, url, caFile string) []string {
	t.Helper()
	hosts := t.TempDir()
	if err := os.WriteFile(filepath.Join(hosts, "sitecustomize.py"), sitecustomize, 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AZUREML_CURRENT_CLOUD=") && !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PYTHONPATH="+hosts,
		"REQUESTS_CA_BUNDLE="+caFile,
		"ARM_CLOUD_METADATA_URL="+strings.TrimRight(url, "/")+"/metadata/endpoints",
	)
}

// Run runs a Python script with args in env and returns what it reported:
// each line of its output that is a JSON object, merged (the SDK's own
// printing, a job's streamed log among it, is passed over). It fails t
// when the script fails, showing its output and whatever logs says.
func Run(t testing.TB, python string, env []string, logs func() string, script string, args ...string) (map[string]json.RawMessage, string) {
	t.Helper()
	cmd := exec.Command(python, append([]string{script}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		server := ""
		if logs != nil {
			server = logs()
		}
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s", script, args, err, out, stderr.String(), server)
	}
	got := map[string]json.RawMessage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		// The SDK's pollers print progress dots with no line end, which
		// may come before a report on its line.
		text := sc.Bytes()
		if i := bytes.IndexByte(text, '{'); i > 0 && strings.Trim(string(text[:i]), ".") == "" {
			text = text[i:]
		}
		line := map[string]json.RawMessage{}
		if err := json.Unmarshal(text, &line); err != nil {
			continue
		}
		for k, v := range line {
			got[k] = v
		}
	}
	return got, string(out)
}

// Decode reads a reported value into a T, failing t when it cannot.
func Decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

// RequestRows reads the rows of a scoring request file ({"input_data":
// [[...], ...]}, the taxi request's form).
func RequestRows(t testing.TB, path string) [][]float64 {
	t.Helper()
	var request struct {
		InputData [][]float64 `json:"input_data"`
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &request)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return request.InputData
}

// CheckPredictions fails t unless got holds, for each row, what predict
// says of it (to a relative 1e-9); what names the answer in errors.
func CheckPredictions(t testing.TB, what string, got []float64, rows [][]float64, predict func([]float64) float64) {
	t.Helper()
	if len(got) != len(rows) {
		t.Fatalf("%s: %d predictions %v for %d rows", what, len(got), got, len(rows))
	}
	for i, row := range rows {
		if want := predict(row); math.Abs(got[i]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s, row %d: %v, the model predicts %v", what, i, got[i], want)
		}
	}
}
