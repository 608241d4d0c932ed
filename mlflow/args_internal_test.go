package mlflow

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestQuoteNonFinite(t *testing.T) {
	for in, want := range map[string]string{
		`{"value": NaN}`:                          `{"value": "NaN"}`,
		`[Infinity,-Infinity, NaN]`:               `["Infinity","-Infinity", "NaN"]`,
		`{"key": "NaN", "value": 1}`:              `{"key": "NaN", "value": 1}`,
		`{"key": "a\"NaN\\", "value": -Infinity}`: `{"key": "a\"NaN\\", "value": "-Infinity"}`,
		`{"key": "Infinity"}`:                     `{"key": "Infinity"}`,
		`{"v": 1.5}`:                              `{"v": 1.5}`,
	} {
		if got := string(quoteNonFinite([]byte(in))); got != want {
			t.Errorf("quoteNonFinite(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestDecodeMLflowBody(t *testing.T) {
	for _, in := range []string{``, `  `, `null`, `{}`, `"{}"`, `""`} {
		m, err := decodeBody([]byte(in))
		if err != nil || len(m) != 0 {
			t.Errorf("%q: %v %v, want {}", in, m, err)
		}
	}
	m, err := decodeBody([]byte(`"{\"a\": NaN}"`))
	if err != nil || m["a"] != "NaN" {
		t.Errorf("double-encoded: %v %v", m, err)
	}
	for _, in := range []string{`{`, `[]`, `1`, `"\"x\""`, `{} {}`, `{"a": nan}`} {
		if _, err := decodeBody([]byte(in)); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

func TestCleanArtifactPath(t *testing.T) {
	good := map[string]string{
		"a": "a", "a/b.txt": "a/b.txt", "0/run/artifacts/model/": "0/run/artifacts/model",
		"a b/c%20d": "a b/c%20d", "x..y/..z": "x..y/..z", "m-1/artifacts/MLmodel": "m-1/artifacts/MLmodel",
	}
	for in, want := range good {
		if got, err := cleanArtifactPath(in, false); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "/", "..", "../x", "a/../b", "a/..", "./a", "a/./b", "/abs", "//x", "a//b", `a\b`,
		"a\x00b", "a\nb", "s3://bucket/x", "file:///etc/passwd", "C:/x", "c:", "a#b",
		"%2e%2e/x", "a/%2E%2E", "%252e%252e/x", "%25252e%25252e", "%2fabs", "a%5cb", "a%00b", "%2e",
	}
	for _, in := range bad {
		if got, err := cleanArtifactPath(in, false); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
	if got, err := cleanArtifactPath("", true); err != nil || got != "" {
		t.Errorf("empty root: %q %v", got, err)
	}
	if root, ok := ArtifactRoot("mlflow-artifacts:/1/abc/artifacts"); !ok || root != "1/abc/artifacts" {
		t.Errorf("root = %q %v", root, ok)
	}
	if root, ok := ArtifactRoot("mlflow-artifacts://host:5000/1/abc/artifacts/"); !ok || root != "1/abc/artifacts" {
		t.Errorf("root with host = %q %v", root, ok)
	}
	for _, uri := range []string{"s3://b/1/abc", "mlflow-artifacts:/../x", "file:///tmp"} {
		if root, ok := ArtifactRoot(uri); ok {
			t.Errorf("%s gave root %q", uri, root)
		}
	}
}

// failingReader returns data, then err in place of io.EOF, as the blob
// store's verifying reader does for a corrupt blob.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

func TestCopyVerifiedHoldsBackTheEnd(t *testing.T) {
	for _, size := range []int{0, 1, streamChunk - 1, streamChunk, streamChunk + 1, 3*streamChunk + 17} {
		data := bytes.Repeat([]byte{7}, size)
		var out bytes.Buffer
		if err := copyVerified(&out, bytes.NewReader(data)); err != nil || out.Len() != size {
			t.Errorf("size %d: wrote %d, err %v", size, out.Len(), err)
		}
		corrupt := errors.New("corrupt")
		out.Reset()
		err := copyVerified(&out, &failingReader{r: bytes.NewReader(data), err: corrupt})
		if !errors.Is(err, corrupt) {
			t.Errorf("size %d corrupt: err %v", size, err)
		}
		if size > 0 && out.Len() >= size {
			t.Errorf("size %d corrupt: all %d bytes written before the error", size, out.Len())
		}
	}
	// A failing client is reported as a write error.
	err := copyVerified(errWriter{}, strings.NewReader(strings.Repeat("x", 2*streamChunk+1)))
	var we writeError
	if !errors.As(err, &we) {
		t.Errorf("write failure: %v", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("gone") }

// argsOf parses body as a POST's parameters.
func argsOf(t *testing.T, body string) *args {
	t.Helper()
	r, err := http.NewRequest("POST", "/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseArgs(r)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestArgsKeepTheFirstError: reads go on after a failure and return zero
// values, and the error a handler returns is the first one met, nested
// objects included, as if each read had returned its own.
func TestArgsKeepTheFirstError(t *testing.T) {
	a := argsOf(t, `{"name": "n", "metrics": [{"key": "k", "value": "x"}], "run_id": 7, "max_results": "many"}`)
	if a.required("name") != "n" || a.Err() != nil {
		t.Fatalf("a good read failed: %v", a.Err())
	}
	// peek looks without recording anything.
	if a.peek("run_id") != "" || a.Err() != nil {
		t.Fatalf("peek of a number: %q, %v", a.peek("run_id"), a.Err())
	}
	ms := a.objects("metrics")
	if len(ms) != 1 {
		t.Fatalf("metrics: %d objects", len(ms))
	}
	if v, ok := ms[0].float("value"); ok || v != 0 {
		t.Fatalf("a bad float read as %v, %v", v, ok)
	}
	first := a.Err()
	if first == nil || !strings.Contains(first.Error(), "'metrics[0].value'") {
		t.Fatalf("nested error: %v", first)
	}
	// Later failures, at the top or nested, do not replace it; reads
	// after it return zero values, even of good parameters.
	a.runID()
	a.maxResults(1, 10)
	ms[0].required("missing")
	a.check(errors.New("a later check"))
	if a.Err() != first {
		t.Fatalf("the first error was replaced by %v", a.Err())
	}
	if got := a.str("name"); got != "" {
		t.Fatalf("a read after the failure returned %q", got)
	}
}

func TestArgsQueryStrings(t *testing.T) {
	r, err := http.NewRequest("GET", "/?run_id=r1&experiment_ids=1&experiment_ids=2&step=3&flag=TRUE&empty=", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseArgs(r)
	if err != nil {
		t.Fatal(err)
	}
	step, ok := a.int64("step")
	if a.runID() != "r1" || len(a.ids("experiment_ids")) != 2 || step != 3 || !ok || !a.boolean("flag") || a.present("empty") != "" || a.Err() != nil {
		t.Fatalf("query parameters misread: %v", a.Err())
	}
	a.present("absent")
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "'absent'") {
		t.Fatalf("an absent required parameter: %v", err)
	}
}
