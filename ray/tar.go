package ray

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/wharfml/wharf"
)

// writeTar writes the folders of root named by dirs, with their regular
// files and subfolders, as a tar stream. Links are left out: a task gets
// the files themselves.
func writeTar(w io.Writer, root string, dirs ...string) error {
	tw := tar.NewWriter(w)
	for _, d := range dirs {
		base := filepath.Join(root, d)
		err := filepath.WalkDir(base, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == base {
					return nil
				}
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case info.IsDir():
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: filepath.ToSlash(rel) + "/", Mode: 0o755})
			case !info.Mode().IsRegular():
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Size: info.Size(),
				Mode: int64(info.Mode().Perm() | 0o600)}); err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, info.Size())
			return err
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// readTar unpacks a tar stream of regular files and folders into root,
// accepting only entries under the folders named by dirs; those folders
// are emptied first, so an upload sent again replaces the one before.
// Links, devices and paths that leave a folder are refused.
func readTar(r io.Reader, root string, dirs ...string) error {
	for _, d := range dirs {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return err
		}
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wharf.Errorf(wharf.EINVALID, "outputs: not a tar stream: %v", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !under(name, dirs) {
			return wharf.Errorf(wharf.EINVALID, "outputs: %q is not under %s", h.Name, strings.Join(dirs, ", "))
		}
		dest := filepath.Join(root, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dest, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return wharf.Errorf(wharf.EINVALID, "outputs: %q is not a regular file or folder (links are not kept)", h.Name)
		}
	}
}

// under reports whether a cleaned slash path is one of dirs or inside one.
func under(name string, dirs []string) bool {
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return false
	}
	for _, d := range dirs {
		if name == d || strings.HasPrefix(name, d+"/") {
			return true
		}
	}
	return false
}
