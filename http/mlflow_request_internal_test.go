package http

import (
	"bytes"
	"errors"
	"io"
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
		m, err := decodeMLflowBody([]byte(in))
		if err != nil || len(m) != 0 {
			t.Errorf("%q: %v %v, want {}", in, m, err)
		}
	}
	m, err := decodeMLflowBody([]byte(`"{\"a\": NaN}"`))
	if err != nil || m["a"] != "NaN" {
		t.Errorf("double-encoded: %v %v", m, err)
	}
	for _, in := range []string{`{`, `[]`, `1`, `"\"x\""`, `{} {}`, `{"a": nan}`} {
		if _, err := decodeMLflowBody([]byte(in)); err == nil {
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
	if root, ok := artifactRootOf("mlflow-artifacts:/1/abc/artifacts"); !ok || root != "1/abc/artifacts" {
		t.Errorf("root = %q %v", root, ok)
	}
	if root, ok := artifactRootOf("mlflow-artifacts://host:5000/1/abc/artifacts/"); !ok || root != "1/abc/artifacts" {
		t.Errorf("root with host = %q %v", root, ok)
	}
	for _, uri := range []string{"s3://b/1/abc", "mlflow-artifacts:/../x", "file:///tmp"} {
		if root, ok := artifactRootOf(uri); ok {
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
