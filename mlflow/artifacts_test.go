package mlflow_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const artifactsAPI = "/api/2.0/mlflow-artifacts/artifacts"

// patternReader yields n pseudo-random bytes without holding them, so a
// large upload costs the test no memory either.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	_, _ = p.rng.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), n: n}
}

// send makes a raw request with body streamed as is (chunked when its
// length is unknown) and returns the response, body unread.
func (c *mlflowClient) send(method, path string, body io.Reader) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (c *mlflowClient) put(p, content string) {
	c.t.Helper()
	resp := c.send("PUT", artifactsAPI+"/"+p, strings.NewReader(content))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "{}" {
		c.t.Fatalf("PUT %s: %d %s", p, resp.StatusCode, b)
	}
}

func (c *mlflowClient) get(p string) (int, string) {
	c.t.Helper()
	resp := c.send("GET", artifactsAPI+"/"+p, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: %v", p, err)
	}
	return resp.StatusCode, string(b)
}

// files lists a folder through the proxy as the client does.
func (c *mlflowClient) files(dir string) []map[string]any {
	c.t.Helper()
	res := c.ok("GET", artifactsAPI+"?path="+url.QueryEscape(dir), nil)
	var out []map[string]any
	for _, f := range list(c.t, res, "files") {
		out = append(out, f.(map[string]any))
	}
	return out
}

func fileNames(t *testing.T, files []map[string]any) string {
	t.Helper()
	var names []string
	for _, f := range files {
		n := str(t, f, "path")
		if f["is_dir"] == true {
			n += "/"
			if _, ok := f["file_size"]; ok {
				t.Errorf("directory %s has a file_size", n)
			}
		} else {
			num(t, f, "file_size")
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

func TestMLflowArtifactProxy(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	run := obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info")
	runID := str(t, run, "run_id")
	root := "0/" + runID + "/artifacts"

	// 20 MiB, five times the JSON body limit, streamed with chunked
	// encoding; the server must not hold it in memory.
	const size = 20 << 20
	h := sha256.New()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp := c.send("PUT", artifactsAPI+"/"+root+"/model/model.pkl", io.TeeReader(newPattern(1, size), h))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("a %d-byte upload allocated %d bytes: the body is being buffered", size, alloc)
	}
	t.Logf("upload of %d bytes allocated %d bytes", size, after.TotalAlloc-before.TotalAlloc)
	want := hex.EncodeToString(h.Sum(nil))

	resp = c.send("GET", artifactsAPI+"/"+root+"/model/model.pkl", nil)
	h.Reset()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
		t.Fatalf("download: %d bytes, err %v, sha256 match %v", n, err, hex.EncodeToString(h.Sum(nil)) == want)
	}
	for k, v := range map[string]string{
		"Content-Length":         "20971520",
		"Content-Disposition":    `attachment; filename=model.pkl`,
		"X-Content-Type-Options": "nosniff",
		"ETag":                   `"sha256:` + want + `"`,
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	c.put(root+"/model/MLmodel", "artifact_path: model\n")
	c.put(root+"/model/input_example.json", `{"a":1}`)
	c.put(root+"/model/sub/a.txt", "a")
	c.put(root+"/model/sub/deeper/b.txt", "b")
	c.put(root+"/model/page.html", "<script>alert(1)</script>")
	c.put(root+"/model/empty", "")
	for p, ct := range map[string]string{
		"MLmodel":            "application/octet-stream",
		"input_example.json": "application/json",
		"page.html":          "text/plain; charset=utf-8", // never rendered
	} {
		resp := c.send("GET", artifactsAPI+"/"+root+"/model/"+p, nil)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != ct {
			t.Errorf("%s: Content-Type %q, want %q", p, got, ct)
		}
	}
	if status, got := c.get(root + "/model/MLmodel"); status != 200 || got != "artifact_path: model\n" {
		t.Fatalf("MLmodel: %d %q", status, got)
	}
	if status, got := c.get(root + "/model/empty"); status != 200 || got != "" {
		t.Fatalf("empty file: %d %q", status, got)
	}
	// A second PUT replaces the file.
	c.put(root+"/model/MLmodel", "artifact_path: model2\n")
	if _, got := c.get(root + "/model/MLmodel"); got != "artifact_path: model2\n" {
		t.Fatalf("replaced MLmodel: %q", got)
	}

	// Listing: basenames, folders folded, sizes on files only.
	files := c.files(root + "/model")
	if got := fileNames(t, files); got != "MLmodel empty input_example.json model.pkl page.html sub/" {
		t.Fatalf("list = %q", got)
	}
	for _, fi := range files {
		if fi["path"] == "model.pkl" && num(t, fi, "file_size").String() != "20971520" {
			t.Errorf("model.pkl size = %v", fi["file_size"])
		}
		if fi["path"] == "empty" && num(t, fi, "file_size").String() != "0" {
			t.Errorf("empty size = %v", fi["file_size"])
		}
	}
	if got := fileNames(t, c.files(root+"/model/sub/")); got != "a.txt deeper/" {
		t.Errorf("list sub = %q", got)
	}
	if got := fileNames(t, c.files("")); got != "0/" {
		t.Errorf("list root = %q", got)
	}
	for _, p := range []string{root + "/nothing", root + "/model/MLmodel", root + "/mod"} {
		if r := c.do("GET", artifactsAPI+"?path="+url.QueryEscape(p), nil); r.status != 200 || strings.TrimSpace(string(r.raw)) != "{}" {
			t.Errorf("list %s = %d %s, want {}", p, r.status, r.raw)
		}
	}

	// The run's own listing: paths relative to the run's artifact root.
	res := c.ok("GET", api("artifacts/list?run_id="+runID+"&path=model"), nil)
	if str(t, res, "root_uri") != "mlflow-artifacts:/"+root {
		t.Errorf("root_uri: %v", res)
	}
	var runFiles []map[string]any
	for _, fi := range list(t, res, "files") {
		runFiles = append(runFiles, fi.(map[string]any))
	}
	if got := fileNames(t, runFiles); got != "model/MLmodel model/empty model/input_example.json model/model.pkl model/page.html model/sub/" {
		t.Errorf("artifacts/list = %q", got)
	}
	res = c.ok("GET", api("artifacts/list?run_uuid="+runID), nil)
	if got := len(list(t, res, "files")); got != 1 {
		t.Errorf("artifacts/list at the root: %v", res)
	}

	// A logged model's files.
	lm := obj(t, c.ok("POST", api("logged-models"), map[string]any{"experiment_id": "0"}), "model", "info")
	mid := str(t, lm, "model_id")
	c.put("0/models/"+mid+"/artifacts/MLmodel", "x")
	c.put("0/models/"+mid+"/artifacts/data/model.pkl", "y")
	res = c.ok("GET", api("logged-models/"+mid+"/artifacts/directories"), nil)
	var lmFiles []map[string]any
	for _, fi := range list(t, res, "files") {
		lmFiles = append(lmFiles, fi.(map[string]any))
	}
	if got := fileNames(t, lmFiles); got != "MLmodel data/" {
		t.Errorf("logged model files = %q", got)
	}
	res = c.ok("GET", api("logged-models/"+mid+"/artifacts/directories?artifact_directory_path=data"), nil)
	if fs := list(t, res, "files"); len(fs) != 1 || fs[0].(map[string]any)["path"] != "data/model.pkl" {
		t.Errorf("logged model data/: %v", res)
	}

	// DELETE removes a file or a folder with everything below it.
	c.ok("DELETE", artifactsAPI+"/"+root+"/model/sub", nil)
	c.ok("DELETE", artifactsAPI+"/"+root+"/model/page.html", nil)
	if got := fileNames(t, c.files(root+"/model")); got != "MLmodel empty input_example.json model.pkl" {
		t.Errorf("after delete = %q", got)
	}
	c.fails("GET", artifactsAPI+"/"+root+"/model/sub/a.txt", nil, 404, "RESOURCE_DOES_NOT_EXIST")

	// The JSON routes keep their body limit.
	big := `{"name": "` + strings.Repeat("x", 5<<20) + `"}`
	if r := c.do("POST", api("experiments/create"), big); r.status != http.StatusRequestEntityTooLarge || r.body["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Errorf("5 MiB JSON body: %d %s", r.status, r.raw)
	}
}

// countBlobs counts the files in the blob store.
func countBlobs(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "sha256"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMLflowArtifactTraversal(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	runID := str(t, obj(t, c.ok("POST", api("runs/create"), map[string]any{"experiment_id": "0"}), "run", "info"), "run_id")

	// Encoded so that the path reaches the handler as written: each must be
	// refused there.
	encoded := []string{
		"%2e%2e/%2e%2e/etc/passwd", "%2e%2e/x", "..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fb",
		"%2Fabs", "%2Fetc%2Fpasswd", "%252e%252e/x", "%25252e%25252e/x", "a/%2e/b",
		"a%5C..%5Cb", "a%00b", "s3:%2F%2Fbucket%2Fx", "file:%2F%2F%2Fetc%2Fpasswd",
		"C:%5Cwindows", "a%23b", "a%2F%2Fb",
	}
	for _, p := range encoded {
		for _, m := range []string{"PUT", "GET", "DELETE"} {
			var body any
			if m == "PUT" {
				body = "evil"
			}
			r := c.fails(m, artifactsAPI+"/"+p, body, 400, "INVALID_PARAMETER_VALUE")
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, "Invalid path") {
				t.Errorf("%s %s: message %q", m, p, msg)
			}
		}
	}
	// Written plainly, dot segments and empty segments never reach the
	// handler: Go's router answers with a redirect to the cleaned path,
	// which this client does not follow (and a client that does is
	// authorized again there, inside the same server's URL space).
	literal := []string{"../../etc/passwd", "a/../../b", "/abs", "./x", "a//b", "x/.."}
	for _, p := range literal {
		for _, m := range []string{"PUT", "GET", "DELETE"} {
			var body any
			if m == "PUT" {
				body = "evil"
			}
			c.fails(m, artifactsAPI+"/"+p, body, 400, "INVALID_PARAMETER_VALUE")
		}
	}
	// Paths in query strings do reach the handlers.
	for _, p := range []string{"../x", "/etc", "a/../../b", "%2e%2e", "%252e%252e/x", "a\\b", "s3://b/x", "a//b"} {
		c.fails("GET", artifactsAPI+"?path="+url.QueryEscape(p), nil, 400, "INVALID_PARAMETER_VALUE")
		c.fails("GET", api("artifacts/list?run_id="+runID+"&path="+url.QueryEscape(p)), nil, 400, "INVALID_PARAMETER_VALUE")
	}

	arts, err := f.DB.ListArtifacts(t.Context(), "ws-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 0 {
		t.Fatalf("traversal attempts wrote %d artifacts, the first at %q", len(arts), arts[0].Path)
	}
	if n := countBlobs(t, f.BlobRoot); n != 0 {
		t.Fatalf("traversal attempts stored %d blobs", n)
	}
	if r := c.do("GET", artifactsAPI, nil); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Fatalf("list of the root after traversal attempts: %s", r.raw)
	}
}

// TestMLflowArtifactCorruption: a blob damaged on disk must break the
// download, not arrive complete.
func TestMLflowArtifactCorruption(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	// One blob smaller than a streamed chunk, one spanning several.
	for _, size := range []int{10, 600 << 10} {
		p := fmt.Sprintf("0/corrupt/%d.bin", size)
		content := strings.Repeat("abcdefgh", size/8+1)[:size]
		c.put(p, content)
		a, err := f.DB.FindArtifact(t.Context(), "ws-a", p)
		if err != nil {
			t.Fatal(err)
		}
		sum := strings.TrimPrefix(a.Digest, "sha256:")
		file := filepath.Join(f.BlobRoot, "sha256", sum[:2], sum[2:])
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		b := []byte(content)
		b[len(b)-1] ^= 0xff
		if err := os.WriteFile(file, b, 0o444); err != nil {
			t.Fatal(err)
		}
		// The connection breaks: before the response when the whole blob
		// fits in the held-back chunk, during the body otherwise.
		req, _ := http.NewRequest("GET", c.base+artifactsAPI+"/"+p, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.hc.Do(req)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatalf("size %d: a corrupt blob was delivered without error (%d bytes)", size, len(got))
		}
		if len(got) >= size {
			t.Errorf("size %d: %d bytes delivered before the abort", size, len(got))
		}
	}
}

// TestMLflowArtifactsAreScoped: one workspace's files are invisible from
// another's prefix.
func TestMLflowArtifactsAreScoped(t *testing.T) {
	f := newMLflowFixture(t)
	f.Workspace("ws-b")
	a := f.owner
	b := f.client("ws-b", a.token)
	a.put("0/r/artifacts/secret.txt", "a's")
	b.fails("GET", artifactsAPI+"/0/r/artifacts/secret.txt", nil, 404, "RESOURCE_DOES_NOT_EXIST")
	if files := b.files("0/r/artifacts"); len(files) != 0 {
		t.Fatalf("ws-b lists ws-a's files: %v", files)
	}
	b.ok("DELETE", artifactsAPI+"/0", nil)
	if status, got := a.get("0/r/artifacts/secret.txt"); status != 200 || got != "a's" {
		t.Fatalf("ws-b's delete reached ws-a: %d %q", status, got)
	}
}
