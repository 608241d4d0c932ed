package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/output"
)

// TestInputReadingShowsProgress: a job whose uri_folder input is a large
// folder in the default datastore's Azure Blob container (Azurite), read
// into Wharf's store at submission, shows while it waits how many files
// and bytes the server has read of how many, from the server's answers
// to the CLI's questions meanwhile (the server serves them while it
// reads); the counts only grow, never pass the folder's, and end at the
// folder's whole. The job then reads every file. The CLI asks from the
// start and every 20 ms here, so the test does not hang on how long the
// reading takes.
func TestInputReadingShowsProgress(t *testing.T) {
	after, every := readProgressAfter, readProgressEvery
	readProgressAfter, readProgressEvery = 0, 20*time.Millisecond
	t.Cleanup(func() { readProgressAfter, readProgressEvery = after, every })

	es := startObjectStorage(t, "big")
	e := newCLIEnv(t)
	dir := t.TempDir()
	containerWorkspace(t, e, es, dir, "big", wharf.DatastoreAzureBlob, "big")
	const files, size = 120, 512 << 10
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for i := range files {
		g.Go(func() error {
			body := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			_, err := es.az.UploadBuffer(ctx, "big", fmt.Sprintf("trips/part-%03d.csv", i), body, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	job := writeFile(t, dir, "job.yml", `command: ls ${{inputs.trips}} | wc -l > ${{outputs.out}}/count.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  trips: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/trips}
outputs:
  out: {type: uri_folder}
`)
	out, stderr, code := e.wharf("ml", "job", "create", "--file", job, "-w", "big", "--query", "name", "-o", "tsv")
	if code != 0 {
		t.Fatalf("job create exited %d: %s", code, stderr)
	}
	line := regexp.MustCompile(`(?m)^Reading inputs: (\d+)/(\d+) files, (.*)$`)
	found := line.FindAllStringSubmatch(stderr, -1)
	if len(found) < 2 {
		t.Fatalf("job create showed %d progress lines, want some while reading and one at the end:\n%s", len(found), stderr)
	}
	whole := output.Bytes(files * size)
	prev := -1
	for i, m := range found {
		read, _ := strconv.Atoi(m[1])
		total, _ := strconv.Atoi(m[2])
		if read < prev || read > total || total != files {
			t.Errorf("progress line %d %q after %d files read: counts do not fit a folder of %d files", i, m[0], prev, files)
		}
		if !strings.Contains(m[3], "/"+whole) {
			t.Errorf("progress line %d %q: want the folder's %s as the bytes to read", i, m[0], whole)
		}
		// A file counts as read once all its bytes are.
		if got := shownBytes(t, strings.Split(m[3], "/")[0]); got < float64(read*size)-0.05*(1<<20) {
			t.Errorf("progress line %d %q: %d files read but fewer bytes", i, m[0], read)
		}
		prev = read
	}
	if last := found[len(found)-1]; last[1] != strconv.Itoa(files) || last[2] != strconv.Itoa(files) || last[3] != whole+"/"+whole+" (100%)" {
		t.Errorf("the last progress line is %q, want every file and byte read", last[0])
	}
	during := false
	for _, m := range found[:len(found)-1] {
		read, _ := strconv.Atoi(m[1])
		during = during || (read > 0 && read < files)
	}
	if !during {
		t.Errorf("no progress line showed the reading before it ended:\n%s", stderr)
	}

	name := lastLine(out)
	if got := e.waitJob("big", name); got != "Completed" {
		t.Fatalf("job %s: %s", name, got)
	}
	dl := filepath.Join(dir, "out")
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "big")
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "count.txt")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(files) {
		t.Errorf("the job saw %q files (%v), want %d", b, err, files)
	}
}

// shownBytes reads back a size output.Bytes wrote ("4.3 MiB", "0 B").
func shownBytes(t *testing.T, s string) float64 {
	t.Helper()
	num, unit, _ := strings.Cut(strings.TrimSpace(s), " ")
	v, err := strconv.ParseFloat(num, 64)
	scale := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]
	if err != nil || scale == 0 {
		t.Fatalf("%q is not a size", s)
	}
	return v * scale
}
