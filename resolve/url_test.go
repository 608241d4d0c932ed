package resolve_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// urlJob is a command job that copies its uri_file input, given by path,
// to its output folder.
func urlJob(typ, path string) string {
	return `{"command":"cp ${{inputs.data}} ${{outputs.out}}/copy.csv","environment":{"image":"python:3.11"},"compute":"azureml:cpu",` +
		`"inputs":{"data":{"type":"` + typ + `","path":"` + path + `"}},"outputs":{"out":{"type":"uri_folder"}}}`
}

// ended waits for job name to end, whatever its status.
func (e *env) ended(name string) *wharf.Job {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.db.FindJob(e.t.Context(), "ws", name)
		if err != nil {
			e.t.Fatal(err)
		}
		if wharf.JobTerminal(j.Status) {
			return j
		}
		e.sched.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("job %s did not end", name)
	return nil
}

// TestURLInputIsDownloadedWhenTheStepRuns: a uri_file input whose path is
// an http(s) URL is accepted at submission and downloaded by the server
// when the step runs, under the URL's last segment; such a step is never
// reused. A URL that answers 404 fails the step before its command runs,
// naming the URL and the status.
func TestURLInputIsDownloadedWhenTheStepRuns(t *testing.T) {
	const csv = "a,b\n1,2\n3,4\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/data/train.csv" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, csv)
	}))
	defer srv.Close()
	db := openSQLite(t)
	e := newEnv(t, db)

	for range 2 {
		sub, err := e.res.Job(t.Context(), "ws", []byte(urlJob("uri_file", srv.URL+"/data/train.csv")))
		if err != nil {
			t.Fatal(err)
		}
		in := sub.Steps[0].Spec.Inputs["data"]
		if in.URL != srv.URL+"/data/train.csv" || in.FileName != "train.csv" || in.Digest != "" {
			t.Fatalf("input resolved to %+v", in)
		}
		j, err := e.sched.Submit(t.Context(), "ws", "alice", sub)
		if err != nil {
			t.Fatal(err)
		}
		done := e.wait(j.Name)
		m, err := snapshot.Load(t.Context(), done.Outputs["out"].Digest, e.blobs)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Files) != 1 || m.Files[0].Path != "copy.csv" {
			t.Fatalf("output files %+v", m.Files)
		}
		rc, _, err := e.blobs.Open(t.Context(), m.Files[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != csv {
			t.Errorf("the job read %q, want %q", b, csv)
		}
		if done.ReusedFrom != "" || !strings.Contains(done.ReuseNote, "URL") {
			t.Errorf("reused from %q, note %q: want not reused, saying why", done.ReusedFrom, done.ReuseNote)
		}
	}

	missing := srv.URL + "/data/missing.csv"
	sub, err := e.res.Job(t.Context(), "ws", []byte(urlJob("uri_file", missing)))
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.sched.Submit(t.Context(), "ws", "alice", sub)
	if err != nil {
		t.Fatal(err)
	}
	failed := e.ended(j.Name)
	if failed.Status != wharf.JobFailed || !strings.Contains(failed.Error, missing) || !strings.Contains(failed.Error, "404") {
		t.Fatalf("job %s: %q, want Failed naming %s and 404", failed.Status, failed.Error, missing)
	}
	if n := len(failed.Attempts); n > 0 && failed.Attempts[n-1].ProcessStarted != nil {
		t.Error("the command ran although its input could not be downloaded")
	}
}

// TestURLFolderOutsideBlobStorageFailsAtRunTime: a uri_folder over a
// URL is accepted when the job is created, as Azure accepts it, and read
// when the step runs; plain HTTPS lists no folder, so such a step fails
// then, naming the URL and the reason, before its command runs.
func TestURLFolderOutsideBlobStorageFailsAtRunTime(t *testing.T) {
	db := openSQLite(t)
	e := newEnv(t, db)
	sub, err := e.res.Job(t.Context(), "ws", []byte(urlJob("uri_folder", "https://example.com/data/")))
	if err != nil {
		t.Fatal(err)
	}
	if in := sub.Steps[0].Spec.Inputs["data"]; in.URL != "https://example.com/data/" || in.Kind != "folder" {
		t.Fatalf("folder URL resolved to %+v", in)
	}
	j, err := e.sched.Submit(t.Context(), "ws", "alice", sub)
	if err != nil {
		t.Fatal(err)
	}
	failed := e.ended(j.Name)
	if failed.Status != wharf.JobFailed || !strings.Contains(failed.Error, "https://example.com/data/") || !strings.Contains(failed.Error, "plain HTTPS lists no folder") {
		t.Fatalf("job %s: %q, want Failed naming the URL and why", failed.Status, failed.Error)
	}
	if n := len(failed.Attempts); n > 0 && failed.Attempts[n-1].ProcessStarted != nil {
		t.Error("the command ran although its input could not be read")
	}
	sub, err = e.res.Job(t.Context(), "ws", []byte(urlJob("uri_file", "wasbs://c@acct.blob.core.windows.net/x/y.csv")))
	if err != nil {
		t.Fatal(err)
	}
	if in := sub.Steps[0].Spec.Inputs["data"]; in.URL != "https://acct.blob.core.windows.net/c/x/y.csv" || in.FileName != "y.csv" {
		t.Errorf("wasbs input resolved to %+v", in)
	}
}
