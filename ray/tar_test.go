package ray

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		h := h
		body := "x"
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	return &b
}

// TestReadTarKeepsToItsFolders: outputs sent back by a task land only
// in the attempt's output folders, replacing what an earlier send left;
// links and paths that climb out are refused.
func TestReadTarKeepsToItsFolders(t *testing.T) {
	root := t.TempDir()
	dirs := []string{"outputs", "code/outputs"}
	if err := os.MkdirAll(filepath.Join(root, "outputs", "stale"), 0o700); err != nil {
		t.Fatal(err)
	}
	ok := tarOf(t, tar.Header{Typeflag: tar.TypeDir, Name: "outputs/out/"},
		tar.Header{Typeflag: tar.TypeReg, Name: "outputs/out/a.txt"},
		tar.Header{Typeflag: tar.TypeReg, Name: "./code/outputs/model.pkl"})
	if err := readTar(ok, root, dirs...); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"outputs/out/a.txt", "code/outputs/model.pkl"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != "x" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "outputs", "stale")); err == nil {
		t.Error("what an earlier send left was kept")
	}
	for name, bad := range map[string]tar.Header{
		"climbs out":   {Typeflag: tar.TypeReg, Name: "outputs/../../etc/x"},
		"other folder": {Typeflag: tar.TypeReg, Name: "inputs/x"},
		"absolute":     {Typeflag: tar.TypeReg, Name: "/outputs/x"},
		"symlink":      {Typeflag: tar.TypeSymlink, Name: "outputs/l", Linkname: "/etc/passwd"},
		"hard link":    {Typeflag: tar.TypeLink, Name: "outputs/h", Linkname: "outputs/out/a.txt"},
	} {
		err := readTar(tarOf(t, bad), root, dirs...)
		if err == nil || !strings.Contains(err.Error(), "outputs") {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "etc")); err == nil {
		t.Error("a file was written outside the attempt's folder")
	}
}

// TestWriteTarLeavesLinksOut: the files a task fetches are the folders'
// regular files; a link to a server file is not followed into the tar.
func TestWriteTarLeavesLinksOut(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "code"), 0o700)
	os.WriteFile(filepath.Join(root, "code", "train.py"), []byte("print(1)"), 0o600)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	os.Symlink(secret, filepath.Join(root, "code", "link"))
	var b bytes.Buffer
	if err := writeTar(&b, root, "code", "inputs"); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&b)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "code/ code/train.py" {
		t.Errorf("tar holds %v", names)
	}
}
