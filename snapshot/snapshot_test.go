package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/snapshot"
)

// writeTree creates files under dir; a name ending in "*" is made executable
// (the star is dropped).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name = strings.TrimSuffix(name, "*")
			mode = 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func paths(m *snapshot.Manifest) []string {
	var out []string
	for _, f := range m.Files {
		out = append(out, f.Path)
	}
	return out
}

func take(t *testing.T, dir string) *snapshot.Manifest {
	t.Helper()
	m, err := snapshot.Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGitignoreRulesNegationAndNesting(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".gitignore":        "# comment\n*.log\n!keep.log\nbuild/\n/rootonly.txt\n\\#hash.txt\n",
		"a.py":              "print(1)\n",
		"debug.log":         "x",
		"keep.log":          "x",
		"build/out.bin":     "x",
		"rootonly.txt":      "x",
		"#hash.txt":         "x",
		"x.tmp":             "x",
		".git/config":       "x",
		".git/HEAD":         "x",
		"sub/.gitignore":    "*.tmp\n!important.log\n",
		"sub/x.tmp":         "x",
		"sub/important.log": "x",
		"sub/other.log":     "x",
		"sub/rootonly.txt":  "x",
		"sub/build/y":       "x",
		"sub/deep/z.tmp":    "x",
		"sub/deep/z.py":     "x",
	})
	got := paths(take(t, dir))
	want := []string{
		".gitignore",
		"a.py",
		"keep.log",
		"sub/.gitignore",
		"sub/deep/z.py",
		"sub/important.log",
		"sub/rootonly.txt",
		"x.tmp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files = %q\nwant    %q", got, want)
	}
}

func TestAmlignoreWinsOverGitignore(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".gitignore":     "*.py\n",
		".amlignore":     "data/\n*.ckpt\n",
		"train.py":       "x",
		"model.ckpt":     "x",
		"data/big.csv":   "x",
		"src/.gitignore": "*.pyc\n",
		"src/.amlignore": "!keep.ckpt\n",
		"src/m.pyc":      "x",
		"src/keep.ckpt":  "x",
		"src/drop.ckpt":  "x",
	})
	got := paths(take(t, dir))
	// src has its own .amlignore, so its .gitignore is not read either.
	want := []string{".amlignore", ".gitignore", "src/.amlignore", "src/.gitignore", "src/keep.ckpt", "src/m.pyc", "train.py"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files = %q\nwant    %q", got, want)
	}
}

func TestDigestIsStableAndSensitive(t *testing.T) {
	files := map[string]string{"a.py": "print('a')\n", "run.sh*": "#!/bin/sh\n", "pkg/b.py": "b = 2\n", "pkg/c/d.txt": ""}
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, files)
	writeTree(t, b, files)
	// Different timestamps must not matter.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "a.py"), old, old); err != nil {
		t.Fatal(err)
	}
	ma, mb := take(t, a), take(t, b)
	if ma.Digest != mb.Digest || !strings.HasPrefix(ma.Digest, "sha256:") || len(ma.Digest) != 71 {
		t.Fatalf("identical trees: %s vs %s", ma.Digest, mb.Digest)
	}
	if again := take(t, a); again.Digest != ma.Digest {
		t.Errorf("second snapshot.Take gave %s, first %s", again.Digest, ma.Digest)
	}
	changes := map[string]func(dir string) error{
		"one byte": func(d string) error { return os.WriteFile(filepath.Join(d, "pkg/b.py"), []byte("b = 3\n"), 0o644) },
		"exec bit": func(d string) error { return os.Chmod(filepath.Join(d, "a.py"), 0o755) },
		"rename":   func(d string) error { return os.Rename(filepath.Join(d, "a.py"), filepath.Join(d, "a2.py")) },
		"new file": func(d string) error { return os.WriteFile(filepath.Join(d, "pkg/c/e.txt"), nil, 0o644) },
	}
	seen := map[string]string{ma.Digest: "original"}
	for name, change := range changes {
		d := t.TempDir()
		writeTree(t, d, files)
		if err := change(d); err != nil {
			t.Fatal(err)
		}
		m := take(t, d)
		if prev, dup := seen[m.Digest]; dup {
			t.Errorf("%s: digest %s equals that of %s", name, m.Digest, prev)
		}
		seen[m.Digest] = name
	}
	// Group/other bits beyond executable are not recorded.
	if err := os.Chmod(filepath.Join(b, "a.py"), 0o600); err != nil {
		t.Fatal(err)
	}
	if mb2 := take(t, b); mb2.Digest != ma.Digest {
		t.Errorf("a 0600 file changed the digest")
	}
}

func TestManifestRecordsContentAndMode(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"hello.txt": "hello\n", "bin/run*": "#!/bin/sh\n"})
	m := take(t, dir)
	want := []snapshot.File{
		{Path: "bin/run", Mode: snapshot.ModeExecutable, Digest: digestOf([]byte("#!/bin/sh\n")), Size: 10},
		{Path: "hello.txt", Mode: snapshot.ModeFile, Digest: "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", Size: 6},
	}
	if !reflect.DeepEqual(m.Files, want) {
		t.Errorf("files = %+v\nwant    %+v", m.Files, want)
	}
	data, err := m.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(data) != m.Digest {
		t.Errorf("Digest %s is not the digest of the manifest JSON", m.Digest)
	}
	if m.Size() != 16 {
		t.Errorf("Size = %d, want 16", m.Size())
	}
}

func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"real/data.txt": "data", "script.sh*": "#!/bin/sh\n"})
	if err := os.Symlink("real/data.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("script.sh", filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	m := take(t, dir)
	byPath := map[string]snapshot.File{}
	for _, f := range m.Files {
		byPath[f.Path] = f
	}
	if got := paths(m); !reflect.DeepEqual(got, []string{"link.txt", "linkdir/data.txt", "real/data.txt", "run", "script.sh"}) {
		t.Fatalf("files = %q", got)
	}
	if byPath["link.txt"].Digest != byPath["real/data.txt"].Digest || byPath["run"].Mode != snapshot.ModeExecutable {
		t.Errorf("links not recorded as their targets: %+v", m.Files)
	}

	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "s"})
	for name, target := range map[string]string{
		"escape":   filepath.Join(outside, "secret"),
		"dotdot":   "../" + filepath.Base(outside),
		"dangling": "nope",
		"loop":     ".",
	} {
		d := t.TempDir()
		writeTree(t, d, map[string]string{"ok.txt": "ok"})
		if name == "dotdot" {
			// A relative link climbing out of the folder.
			d = filepath.Join(filepath.Dir(outside), "code-"+name)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(d) })
		}
		if err := os.Symlink(target, filepath.Join(d, "sub-"+name)); err != nil {
			t.Fatal(err)
		}
		_, err := snapshot.Take(d)
		if err == nil || !strings.Contains(err.Error(), `"sub-`+name+`"`) {
			t.Errorf("%s: err = %v, want an error naming the link", name, err)
		}
		if code := wharf.ErrorCode(err); code != wharf.EINVALID {
			t.Errorf("%s: code %s, want %s", name, code, wharf.EINVALID)
		}
	}
	// An ignored link is never followed, so it is no error.
	d := t.TempDir()
	writeTree(t, d, map[string]string{".gitignore": "escape\n"})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(d, "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Take(d); err != nil {
		t.Errorf("ignored outside link: %v", err)
	}
}

// TestFilesKeepsEverythingAndNoLinkOut checks the listing of uploads that
// apply no ignore file: every file is kept, links inside the folder are
// listed under their own path with their target's real path, and links
// out of it are refused by name.
func TestFilesKeepsEverythingAndNoLinkOut(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{".gitignore": "*.pkl\n", "model.pkl": "m", "sub/MLmodel": "x"})
	if err := os.Symlink("sub/MLmodel", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	files, err := snapshot.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	if !reflect.DeepEqual(got, []string{".gitignore", "alias", "model.pkl", "sub/MLmodel"}) {
		t.Fatalf("files = %q", got)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(dir, "sub", "MLmodel"))
	if files[1].Real != real {
		t.Errorf("alias read from %s, want its target %s", files[1].Real, real)
	}

	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "s"})
	for name, target := range map[string]string{"passwd": "/etc/passwd", "secret": filepath.Join(outside, "secret"), "dangling": "nope"} {
		d := t.TempDir()
		if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
		_, err := snapshot.Files(d)
		if err == nil || wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(err.Error(), `link "`+name+`"`) {
			t.Errorf("%s: err = %v, want EINVALID naming the link", name, err)
		}
	}
}

func TestTakeOfMissingFolder(t *testing.T) {
	_, err := snapshot.Take(filepath.Join(t.TempDir(), "nope"))
	if err == nil || wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v", err)
	}
}

func newStore(t *testing.T) (*blob.FS, string) {
	t.Helper()
	root := t.TempDir()
	s, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// countBlobs counts the blobs in a blob.FS folder.
func countBlobs(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "sha256"), func(p string, d fs.DirEntry, err error) error {
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

func TestUploadThenMaterializeRoundTrip(t *testing.T) {
	ctx := context.Background()
	store, root := newStore(t)
	src := t.TempDir()
	files := map[string]string{
		"train.py":          "import sys\nprint(sys.argv)\n",
		"scripts/run.sh*":   "#!/bin/sh\necho run\n",
		"scripts/copy.sh*":  "#!/bin/sh\necho run\n", // same bytes as run.sh
		"data/empty.txt":    "",
		"data/deep/x/y.bin": "\x00\x01\x02\xff",
		"dup.txt":           "import sys\nprint(sys.argv)\n", // same bytes as train.py
	}
	writeTree(t, src, files)
	m := take(t, src)
	if err := snapshot.Upload(ctx, m, src, store); err != nil {
		t.Fatal(err)
	}
	// 4 distinct contents plus the manifest.
	if n := countBlobs(t, root); n != 5 {
		t.Errorf("%d blobs stored, want 5", n)
	}
	// Uploading again reads nothing from dir: every blob is there.
	if err := snapshot.Upload(ctx, m, filepath.Join(t.TempDir(), "gone"), store); err != nil {
		t.Errorf("second upload: %v", err)
	}

	dest := filepath.Join(t.TempDir(), "code")
	if err := snapshot.Materialize(ctx, m.Digest, store, dest); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		wantMode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, wantMode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dest, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(content)) {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s mode %o, want %o", name, info.Mode().Perm(), wantMode)
		}
	}
	if again := take(t, dest); again.Digest != m.Digest {
		t.Errorf("materialized tree has digest %s, want %s", again.Digest, m.Digest)
	}
	// Materializing into a folder that is not empty would mix trees.
	if err := snapshot.Materialize(ctx, m.Digest, store, dest); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("materialize over a full folder: %v", err)
	}
	// An empty existing folder is fine.
	empty := t.TempDir()
	if err := snapshot.Materialize(ctx, m.Digest, store, empty); err != nil {
		t.Errorf("materialize into an empty folder: %v", err)
	}
}

func TestUploadRefusesAFileChangedSinceTake(t *testing.T) {
	store, _ := newStore(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.py": "v1"})
	m := take(t, src)
	writeTree(t, src, map[string]string{"a.py": "v2"})
	err := snapshot.Upload(context.Background(), m, src, store)
	if err == nil || !strings.Contains(err.Error(), `"a.py" changed`) {
		t.Errorf("err = %v", err)
	}
	// The manifest was not stored, so the snapshot does not exist.
	if _, err := snapshot.Load(context.Background(), m.Digest, store); !wharf.IsNotFound(err) {
		t.Errorf("snapshot.Load after a failed upload: %v", err)
	}
}

func TestMaterializeRejectsBadManifests(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t)
	content, _, err := store.Put(ctx, strings.NewReader("evil"))
	if err != nil {
		t.Fatal(err)
	}
	for name, manifest := range map[string]string{
		"escaping path": `{"version":1,"files":[{"path":"../evil","mode":420,"digest":"` + content + `","size":4}]}`,
		"absolute path": `{"version":1,"files":[{"path":"/etc/evil","mode":420,"digest":"` + content + `","size":4}]}`,
		"setuid mode":   `{"version":1,"files":[{"path":"x","mode":2541,"digest":"` + content + `","size":4}]}`,
		"duplicate":     `{"version":1,"files":[{"path":"x","mode":420,"digest":"` + content + `","size":4},{"path":"x","mode":420,"digest":"` + content + `","size":4}]}`,
		"file and dir":  `{"version":1,"files":[{"path":"x","mode":420,"digest":"` + content + `","size":4},{"path":"x/y","mode":420,"digest":"` + content + `","size":4}]}`,
		"wrong size":    `{"version":1,"files":[{"path":"x","mode":420,"digest":"` + content + `","size":5}]}`,
		"version":       `{"version":2,"files":[]}`,
		"not json":      `hello`,
	} {
		digest, _, err := store.Put(ctx, strings.NewReader(manifest))
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "out")
		if err := snapshot.Materialize(ctx, digest, store, dest); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("%s: destination left behind (%v)", name, err)
		}
	}
	if err := snapshot.Materialize(ctx, "sha256:"+strings.Repeat("0", 64), store, t.TempDir()); !wharf.IsNotFound(err) {
		t.Errorf("missing manifest: %v", err)
	}
}

func TestPathsAreSorted(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"b": "", "a/z": "", "a.b": "", "A": ""})
	got := paths(take(t, dir))
	if !sort.StringsAreSorted(got) || len(got) != 4 {
		t.Errorf("paths %q not sorted", got)
	}
}

func TestFromStoredMaterializesStoredFiles(t *testing.T) {
	ctx := t.Context()
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, n1, err := blobs.Put(ctx, strings.NewReader("flavors: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d2, n2, err := blobs.Put(ctx, strings.NewReader(`{"coef": [1]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.FromStored(ctx, []snapshot.File{{Path: "sub/model.json", Mode: snapshot.ModeFile, Digest: d2, Size: n2}, {Path: "MLmodel", Mode: snapshot.ModeFile, Digest: d1, Size: n1}}, blobs)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "m")
	if err := snapshot.Materialize(ctx, m.Digest, blobs, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "sub", "model.json")); err != nil || string(b) != `{"coef": [1]}` {
		t.Errorf("materialized %q, %v", b, err)
	}
	if _, err := snapshot.FromStored(ctx, []snapshot.File{{Path: "x", Mode: snapshot.ModeFile, Digest: "sha256:" + strings.Repeat("0", 64)}}, blobs); err == nil {
		t.Error("a manifest of content that is not stored was made")
	}
	if _, err := snapshot.FromStored(ctx, []snapshot.File{{Path: "../x", Mode: snapshot.ModeFile, Digest: d1, Size: n1}}, blobs); err == nil {
		t.Error("a path leaving the folder was accepted")
	}
}

func TestMaterializeLinkedLinksEveryFile(t *testing.T) {
	ctx := context.Background()
	store, root := newStore(t)
	src := t.TempDir()
	files := map[string]string{
		"a.csv":        "x\n1\n",
		"part/b.csv":   "x\n2\n",
		"part/dup.csv": "x\n1\n", // the same bytes as a.csv
	}
	writeTree(t, src, files)
	m := take(t, src)
	if err := snapshot.Upload(ctx, m, src, store); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "in")
	linked, err := snapshot.MaterializeLinked(ctx, m.Digest, store, dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(linked) != 2 {
		t.Errorf("digests to verify %v, want the 2 distinct contents once each", linked)
	}
	for _, f := range m.Files {
		p := filepath.Join(dest, filepath.FromSlash(f.Path))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != files[f.Path] {
			t.Errorf("%s = %q (%v), want %q", f.Path, got, err, files[f.Path])
		}
		sum := strings.TrimPrefix(f.Digest, "sha256:")
		a, errA := os.Stat(p)
		b, errB := os.Stat(filepath.Join(root, "sha256", sum[:2], sum[2:]))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("%s is not a link to its blob (%v, %v)", f.Path, errA, errB)
		}
	}
	// A folder that is not empty is refused, as snapshot.Materialize does.
	if _, err := snapshot.MaterializeLinked(ctx, m.Digest, store, dest); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("snapshot.MaterializeLinked into a full folder: %v", err)
	}
}

// TestContentsOpensManifestsOnly checks that a snapshot's manifest stands
// for its files too, while any other blob, even one that starts like a
// manifest, is only itself.
func TestContentsOpensManifestsOnly(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "a", "b/c.txt": "c"})
	m := take(t, dir)
	if err := snapshot.Upload(ctx, m, dir, store); err != nil {
		t.Fatal(err)
	}
	got, err := snapshot.Contents(ctx, m.Digest, store)
	if err != nil || !reflect.DeepEqual(got, m.Digests()) || len(got) != 3 {
		t.Errorf("snapshot.Contents(manifest) = %q, %v; want the manifest and its 2 files", got, err)
	}
	for _, content := range []string{"plain text", `{"version":1,"files":[{"path":"../x"}]}`, ""} {
		d, _, err := store.Put(ctx, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := snapshot.Contents(ctx, d, store); err != nil || !reflect.DeepEqual(got, []string{d}) {
			t.Errorf("snapshot.Contents(%q) = %q, %v; want only itself", content, got, err)
		}
	}
	if _, err := snapshot.Contents(ctx, digestOf([]byte("never stored")), store); !wharf.IsNotFound(err) {
		t.Errorf("snapshot.Contents of a missing blob: %v, want ENOTFOUND", err)
	}
}

// digestOf is the digest the store files content under, computed here
// independently of the package.
func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
