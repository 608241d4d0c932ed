package scheduler_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

// fileInputJob is a command job that copies its one uri_file input, a
// stored blob, to its output folder.
func fileInputJob(digest string) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: `cp ${{inputs.data}} ${{outputs.out}}/copy.csv`,
			Inputs: map[string]scheduler.InputSpec{"data": {Type: "uri_file", Digest: digest, Kind: scheduler.KindFile,
				FileName: "data.csv"}},
			Outputs: map[string]scheduler.OutputSpec{"out": {Type: "uri_folder"}}}}}}
}

func (f *fixture) putBlob(content string) string {
	f.t.Helper()
	digest, _, err := f.blobs.Put(f.t.Context(), strings.NewReader(content))
	if err != nil {
		f.t.Fatal(err)
	}
	f.holds(digest)
	return digest
}

// holds records that the workspace references the digests, as an upload
// through it does.
func (f *fixture) holds(digests ...string) {
	f.t.Helper()
	if err := f.db.AddBlobRefs(f.t.Context(), "ws", digests); err != nil {
		f.t.Fatal(err)
	}
}

// corruptBlob stores a small CSV and then changes one byte of it on disk,
// keeping its size, and returns its digest.
func (f *fixture) corruptBlob() string {
	f.t.Helper()
	digest := f.putBlob("a,b\n1,2\n")
	sum := strings.TrimPrefix(digest, "sha256:")
	path := filepath.Join(f.dir, "blobs", "sha256", sum[:2], sum[2:])
	if err := os.Chmod(path, 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("a,b\n1,3\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return digest
}

func TestFileInputIsStaged(t *testing.T) {
	f := newFixture(t)
	const content = "a,b\n1,2\n"
	j := f.wait(f.submit(fileInputJob(f.putBlob(content))).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	if got := f.readOutput(j.Outputs["out"], "copy.csv"); got != content {
		t.Errorf("the job read %q, want %q", got, content)
	}
	// The step's log says what bytes it read.
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if want := "[wharf] input data: file " + j.Inputs["data"].Digest + "\n"; j.Inputs["data"].Digest == "" || !strings.Contains(string(log), want) {
		t.Errorf("the log does not say %q:\n%s", want, log)
	}
}

// TestCorruptFileInputFailsStaging damages a stored input without changing
// its size: the attempt fails before its command runs, and the damaged copy
// is not left in the job's folder.
func TestCorruptFileInputFailsStaging(t *testing.T) {
	f := newFixture(t)
	digest := f.corruptBlob()

	j := f.wait(f.submit(fileInputJob(digest)).Name)
	if j.Status != wharf.JobFailed {
		t.Fatalf("job %s, want Failed", j.Status)
	}
	if !strings.Contains(j.Error, "staging inputs") || !strings.Contains(j.Error, "corrupt") || !strings.Contains(j.Error, digest) {
		t.Errorf("error %q should say staging found %s corrupt", j.Error, digest)
	}
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if strings.Contains(string(log), "[wharf] running:") {
		t.Errorf("the command ran on a corrupt input:\n%s", log)
	}
	filepath.WalkDir(filepath.Join(f.dir, "jobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "data.csv" {
			t.Errorf("corrupt input left at %s", p)
		}
		return nil
	})
}

// linkedInputJob is fileInputJob with an input that may be a link to the
// stored blob; the command also records the file's link count.
func linkedInputJob(digest string) *scheduler.Submission {
	s := fileInputJob(digest)
	st := &s.Steps[0].Spec
	in := st.Inputs["data"]
	in.Link = true
	st.Inputs["data"] = in
	st.Command = `stat -c %h ${{inputs.data}} > ${{outputs.out}}/links && cp ${{inputs.data}} ${{outputs.out}}/copy.csv`
	return s
}

func TestLinkedFileInputIsNotCopied(t *testing.T) {
	f := newFixture(t)
	const content = "a,b\n1,2\n"
	j := f.wait(f.submit(linkedInputJob(f.putBlob(content))).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	if got := f.readOutput(j.Outputs["out"], "copy.csv"); got != content {
		t.Errorf("the job read %q, want %q", got, content)
	}
	// The stored blob and the job's input are one file.
	if got := strings.TrimSpace(f.readOutput(j.Outputs["out"], "links")); got != "2" {
		t.Errorf("the input has %s links, want 2 (the blob and the job's input)", got)
	}
}

// TestCorruptLinkedInputFailsTheAttempt damages a stored input without
// changing its size. A linked input is verified while the command runs;
// the attempt then fails and keeps none of its outputs.
func TestCorruptLinkedInputFailsTheAttempt(t *testing.T) {
	f := newFixture(t)
	digest := f.corruptBlob()
	j := f.wait(f.submit(linkedInputJob(digest)).Name)
	if j.Status != wharf.JobFailed {
		t.Fatalf("job %s, want Failed", j.Status)
	}
	if !strings.Contains(j.Error, "verifying inputs") || !strings.Contains(j.Error, "corrupt") || !strings.Contains(j.Error, digest) {
		t.Errorf("error %q should say verifying found %s corrupt", j.Error, digest)
	}
	if len(j.Outputs) != 0 {
		t.Errorf("outputs kept from a corrupt input: %v", j.Outputs)
	}
}

// folderInputJob reads a folder input that may be linked, recording the
// link count of one of its files.
func folderInputJob(digest string) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster",
			Command: `stat -c %h ${{inputs.data}}/a.csv > ${{outputs.out}}/links && cat ${{inputs.data}}/a.csv ${{inputs.data}}/b.csv > ${{outputs.out}}/all.csv`,
			Inputs: map[string]scheduler.InputSpec{"data": {Type: "uri_folder", Digest: digest, Kind: scheduler.KindFolder,
				Link: true}},
			Outputs: map[string]scheduler.OutputSpec{"out": {Type: "uri_folder"}}}}}}
}

func TestLinkedFolderInput(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	for name, content := range map[string]string{"a.csv": "x\n1\n", "b.csv": "x\n2\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := snapshot.Take(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Upload(t.Context(), m, src, f.blobs); err != nil {
		t.Fatal(err)
	}
	f.holds(m.Digests()...)
	j := f.wait(f.submit(folderInputJob(m.Digest)).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	if got := f.readOutput(j.Outputs["out"], "all.csv"); got != "x\n1\nx\n2\n" {
		t.Errorf("the job read %q", got)
	}
	if got := strings.TrimSpace(f.readOutput(j.Outputs["out"], "links")); got != "2" {
		t.Errorf("a folder file has %s links, want 2", got)
	}

	// One file of the folder damaged on disk: the attempt fails and keeps
	// nothing.
	var b snapshot.File
	for _, file := range m.Files {
		if file.Path == "b.csv" {
			b = file
		}
	}
	sum := strings.TrimPrefix(b.Digest, "sha256:")
	path := filepath.Join(f.dir, "blobs", "sha256", sum[:2], sum[2:])
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j = f.wait(f.submit(folderInputJob(m.Digest)).Name)
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "verifying inputs") || !strings.Contains(j.Error, b.Digest) {
		t.Fatalf("job %s (%s), want Failed verifying %s", j.Status, j.Error, b.Digest)
	}
	if len(j.Outputs) != 0 {
		t.Errorf("outputs kept from a corrupt input: %v", j.Outputs)
	}
}

// TestInputsMustBeHeldByTheWorkspace submits jobs naming content that is
// stored but that the workspace does not hold: another workspace's file,
// and a folder of the workspace's own whose manifest lists another's file.
// Both are refused before anything runs, naming the input, since the job
// would otherwise read that content and publish it as its outputs.
func TestInputsMustBeHeldByTheWorkspace(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.db.PutWorkspace(ctx, &wharf.Workspace{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	foreign, _, err := f.blobs.Put(ctx, strings.NewReader("other's data\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.AddBlobRefs(ctx, "other", []string{foreign}); err != nil {
		t.Fatal(err)
	}
	folder, err := snapshot.FromStored(ctx, []snapshot.File{{Path: "data.csv", Mode: snapshot.ModeFile, Digest: foreign, Size: 13}}, f.blobs)
	if err != nil {
		t.Fatal(err)
	}
	f.holds(folder.Digest)
	asCode := fileInputJob(f.putBlob("x"))
	asCode.Steps[0].Spec.CodeDigest = foreign
	for what, sub := range map[string]*scheduler.Submission{
		"another workspace's file":          fileInputJob(foreign),
		"a folder listing another's file":   folderInputJob(folder.Digest),
		"another workspace's file, as code": asCode,
	} {
		_, err := f.sched.Submit(ctx, "ws", "alice", sub)
		var we *wharf.Error
		if !errors.As(err, &we) || we.Code != wharf.EINVALID || !strings.Contains(we.Field, "steps[0].spec.") || !strings.Contains(we.Message, "workspace ws") {
			t.Errorf("%s: %v, want EINVALID naming the field and the workspace", what, err)
		}
	}
	if jobs, err := f.db.ListJobs(ctx, "ws", "", 0); err != nil || len(jobs) != 0 {
		t.Errorf("refused submissions stored %d jobs (%v)", len(jobs), err)
	}
}
