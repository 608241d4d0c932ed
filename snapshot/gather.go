package snapshot

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/wharfml/wharf"
)

// Gather lays out in dst (an empty folder) a component's code as Azure
// builds it: the code folder's files, its ignore files applied, with each
// additional include beside them at the top under its own name (a folder
// include with its files, a file include as itself). Files are hard links
// where the filesystem allows and copies elsewhere; links are followed
// only within their folder, as for any upload. An include whose name is
// already taken in the code folder is an EINVALID error, since one of the
// two would be lost.
func Gather(dst, code string, includes []string) error {
	taken := map[string]bool{}
	place := func(rel, real string) error {
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		taken[rel] = true
		return linkOrCopy(real, target)
	}
	list := func(dir string) ([]LocalFile, error) {
		w, err := newWalker(dir, true)
		if err != nil {
			return nil, err
		}
		if err := w.walk(nil, w.root, nil); err != nil {
			return nil, err
		}
		return w.found, nil
	}
	files, err := list(code)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := place(f.Path, f.Real); err != nil {
			return err
		}
	}
	for _, inc := range includes {
		name := filepath.Base(inc)
		st, err := os.Stat(inc)
		if err != nil {
			return wharf.Errorf(wharf.EINVALID, "additional include %s: %v", inc, unwrapPath(err))
		}
		clash := func(rel string) error {
			if taken[rel] {
				return wharf.Errorf(wharf.EINVALID, "additional include %s would replace %s in the code folder %s", inc, rel, code)
			}
			return nil
		}
		if !st.IsDir() {
			if err := clash(name); err != nil {
				return err
			}
			if err := place(name, inc); err != nil {
				return err
			}
			continue
		}
		files, err := list(inc)
		if err != nil {
			return err
		}
		for _, f := range files {
			rel := path.Join(name, f.Path)
			if err := clash(rel); err != nil {
				return err
			}
			if err := place(rel, f.Real); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkOrCopy makes target the same content as src: a hard link, or a
// copy where linking is not possible (another filesystem).
func linkOrCopy(src, target string) error {
	if err := os.Link(src, target); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
