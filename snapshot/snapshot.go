// Package snapshot captures a job's code folder as a content-addressed
// manifest, stores it in a BlobStore and recreates it where the job runs.
//
// A snapshot records, for each regular file, its slash-separated path, whether
// it is executable and the digest of its content. Nothing else (owners,
// modification times, empty folders) is kept, so the same tree always gives
// the same digest and resubmitting unchanged code stores nothing new.
package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	// go-git's gitignore package is used because it implements git's own
	// rules (patterns scoped to the folder of the file that holds them,
	// later files and lines overriding earlier ones, negation, "**") and
	// is maintained as part of a widely used git implementation; the
	// alternatives are unmaintained or ignore nested files.
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/wharfml/wharf"
)

// Ignore files. In each folder the .amlignore file, if there is one, is read
// instead of the .gitignore file, as Azure ML does when it uploads code.
const (
	amlignoreFile = ".amlignore"
	gitignoreFile = ".gitignore"
)

// Modes a snapshot records: git's two, so that umask and ownership
// differences between machines do not change the digest.
const (
	ModeFile       fs.FileMode = 0o644
	ModeExecutable fs.FileMode = 0o755
)

// manifestVersion is stored in every manifest so the format can change
// without old snapshots being misread.
const manifestVersion = 1

// maxManifestSize bounds the manifest read back by Load; a code folder whose
// manifest is larger than this is far outside what a job upload should be.
const maxManifestSize = 64 << 20

// File is one regular file of a snapshot.
type File struct {
	// Path is relative to the snapshot root, slash-separated, with no
	// "." or ".." elements.
	Path string `json:"path"`
	// Mode is ModeFile or ModeExecutable.
	Mode fs.FileMode `json:"mode"`
	// Digest is the blob digest of the content, "sha256:<hex>".
	Digest string `json:"digest"`
	// Size is the content length in bytes.
	Size int64 `json:"size"`
}

// Manifest lists the files of a snapshot.
type Manifest struct {
	// Digest is the blob digest of the manifest's canonical JSON form
	// (see JSON), so it is a hash over the sorted (path, mode, digest,
	// size) entries and is also where Upload stores the manifest.
	Digest string
	// Files is sorted by Path.
	Files []File
}

type manifestJSON struct {
	Version int    `json:"version"`
	Files   []File `json:"files"`
}

// JSON returns the canonical encoding of the manifest: files sorted by path
// and fields in a fixed order, so equal trees give equal bytes.
func (m *Manifest) JSON() ([]byte, error) {
	files := append([]File{}, m.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return json.Marshal(manifestJSON{Version: manifestVersion, Files: files})
}

// Digests returns the digest of the manifest and those of its files: the
// blobs a workspace must reference to read the snapshot back.
func (m *Manifest) Digests() []string {
	out := make([]string, 0, len(m.Files)+1)
	out = append(out, m.Digest)
	for _, f := range m.Files {
		out = append(out, f.Digest)
	}
	return out
}

// Size returns the total size of the files in bytes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Take walks dir and returns the manifest of the files a job upload includes.
//
// Ignore rules follow git: in every folder, the patterns of its .amlignore
// file, or if it has none its .gitignore file, apply to that folder and
// below, and deeper files override shallower ones. A folder that is ignored
// is not entered, so nothing in it can be re-included, as in git. The .git
// folder is always left out.
//
// Symbolic links are handled as Files handles them.
func Take(dir string) (*Manifest, error) {
	w, err := newWalker(dir, true)
	if err != nil {
		return nil, err
	}
	if err := w.walk(nil, w.root, nil); err != nil {
		return nil, err
	}
	m := &Manifest{Files: make([]File, 0, len(w.found))}
	for _, lf := range w.found {
		f, err := hashFile(lf.Real)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %q: %w", lf.Path, err)
		}
		f.Path = lf.Path
		m.Files = append(m.Files, f)
	}
	if err := m.seal(); err != nil {
		return nil, err
	}
	return m, nil
}

// TakeUnder is Take over the named subfolders of dir, each one's files
// under its name, as one manifest that Upload stores from dir. A
// subfolder that does not exist or is empty adds nothing; nil is
// returned when no subfolder has a file, without hashing anything.
func TakeUnder(dir string, subs ...string) (*Manifest, error) {
	m := &Manifest{}
	for _, sub := range subs {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		part, err := Take(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, f := range part.Files {
			f.Path = sub + "/" + f.Path
			m.Files = append(m.Files, f)
		}
	}
	if len(m.Files) == 0 {
		return nil, nil
	}
	if err := m.seal(); err != nil {
		return nil, err
	}
	return m, nil
}

// seal sorts m's files and sets its digest.
func (m *Manifest) seal() error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := m.JSON()
	if err != nil {
		return fmt.Errorf("snapshot: encode manifest: %w", err)
	}
	m.Digest = digestOf(data)
	return nil
}

// LocalFile is one regular file of a folder about to be uploaded.
type LocalFile struct {
	// Path is relative to the folder, slash-separated: where the file
	// is in the folder, through whatever links led to it.
	Path string
	// Real is the file's real path, links resolved and checked to lie
	// inside the folder: what an upload reads.
	Real string
}

// Files lists the regular files under dir for an upload that keeps all of
// them (a model folder, say): no ignore file applies and only .git is
// left out.
//
// Every folder upload goes through here or Take, so that none follows a
// link blindly: a symbolic link whose target lies inside dir is followed
// and listed under its own path, as a copy of what it points to; a link
// pointing outside dir (an absolute path, a "../" climbing out), a
// dangling link or a link loop is an EINVALID error naming the link, so
// that a folder never uploads a file from elsewhere on the machine.
// Files that are neither regular files, folders nor links (sockets,
// FIFOs, devices) are skipped.
func Files(dir string) ([]LocalFile, error) {
	w, err := newWalker(dir, false)
	if err != nil {
		return nil, err
	}
	if err := w.walk(nil, w.root, nil); err != nil {
		return nil, err
	}
	sort.Slice(w.found, func(i, j int) bool { return w.found[i].Path < w.found[j].Path })
	return w.found, nil
}

type walker struct {
	// dir is the folder as its caller named it, for messages; root is
	// its real path, which every link must stay inside.
	dir, root string
	// ignore applies .amlignore and .gitignore files.
	ignore bool
	// visiting holds the real paths of the folders being walked, to
	// catch a link that points back up the tree.
	visiting map[string]bool
	found    []LocalFile
}

func newWalker(dir string, ignore bool) (*walker, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "folder %q: %v", dir, unwrapPath(err))
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "folder %q: %v", dir, unwrapPath(err))
	}
	if !info.IsDir() {
		return nil, wharf.Errorf(wharf.EINVALID, "%q is not a folder", dir)
	}
	return &walker{dir: dir, root: root, ignore: ignore, visiting: map[string]bool{root: true}}, nil
}

// walk adds the files under the folder at real path abs, whose path in the
// snapshot is rel, given the ignore patterns inherited from its parents.
func (w *walker) walk(rel []string, abs string, patterns []gitignore.Pattern) error {
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("snapshot: read folder %q: %w", relName(rel), err)
	}
	if w.ignore {
		own, err := readIgnoreFile(abs, rel)
		if err != nil {
			return err
		}
		if len(own) > 0 {
			patterns = append(patterns[:len(patterns):len(patterns)], own...)
		}
	}
	matcher := gitignore.NewMatcher(patterns)

	for _, e := range entries {
		name := e.Name()
		if name == ".git" {
			continue
		}
		childRel := append(rel[:len(rel):len(rel)], name)
		childAbs := filepath.Join(abs, name)
		kind := e.Type()
		target := childAbs
		if kind&fs.ModeSymlink != 0 {
			// Ignored links are never followed, so a link out of
			// the folder can be ignored rather than removed.
			if matcher.Match(childRel, false) {
				continue
			}
			target, err = w.resolveLink(childRel, childAbs)
			if err != nil {
				return err
			}
			info, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("snapshot: link %q: %w", relName(childRel), err)
			}
			kind = info.Mode().Type()
		}
		switch {
		case kind.IsDir():
			if matcher.Match(childRel, true) {
				continue
			}
			if w.visiting[target] {
				return wharf.Errorf(wharf.EINVALID, "link %q in folder %q makes a loop", relName(childRel), w.dir)
			}
			w.visiting[target] = true
			err := w.walk(childRel, target, patterns)
			delete(w.visiting, target)
			if err != nil {
				return err
			}
		case kind.IsRegular():
			if matcher.Match(childRel, false) {
				continue
			}
			w.found = append(w.found, LocalFile{Path: relName(childRel), Real: target})
		}
	}
	return nil
}

// resolveLink returns the real path of a link's final target and checks that
// it lies inside the root.
func (w *walker) resolveLink(rel []string, abs string) (string, error) {
	target, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", wharf.Errorf(wharf.EINVALID, "link %q in folder %q points to nothing", relName(rel), w.dir)
		}
		return "", wharf.Errorf(wharf.EINVALID, "link %q in folder %q cannot be followed: %v", relName(rel), w.dir, unwrapPath(err))
	}
	inside, err := filepath.Rel(w.root, target)
	if err != nil || inside == ".." || strings.HasPrefix(inside, "../") || filepath.IsAbs(inside) {
		return "", wharf.Errorf(wharf.EINVALID, "link %q in folder %q points outside it; copy the file in or move the folder",
			relName(rel), w.dir)
	}
	return target, nil
}

// readIgnoreFile parses the ignore file of the folder at abs, if any, with
// its patterns scoped to rel.
func readIgnoreFile(abs string, rel []string) ([]gitignore.Pattern, error) {
	var data []byte
	var err error
	name := ""
	for _, candidate := range []string{amlignoreFile, gitignoreFile} {
		data, err = os.ReadFile(filepath.Join(abs, candidate))
		if err == nil {
			name = candidate
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("snapshot: read %q: %w", relName(append(rel, candidate)), err)
		}
	}
	if name == "" {
		return nil, nil
	}
	var patterns []gitignore.Pattern
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		// "\#" and "\!" start patterns that are literally # or !.
		if strings.HasPrefix(line, `\#`) || strings.HasPrefix(line, `\!`) {
			line = line[1:]
		}
		patterns = append(patterns, gitignore.ParsePattern(line, rel))
	}
	return patterns, nil
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, unwrapPath(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return File{}, unwrapPath(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, unwrapPath(err)
	}
	mode := ModeFile
	if info.Mode().Perm()&0o111 != 0 {
		mode = ModeExecutable
	}
	return File{Mode: mode, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

func relName(rel []string) string { return path.Join(rel...) }

// unwrapPath drops the operation and absolute path from a *fs.PathError:
// messages here name the path relative to the code folder instead.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Upload stores every file of m, read from dir, and then the manifest
// itself. Files already in the store are not read again. A file whose
// content no longer matches m (it changed after Take) fails the upload
// rather than storing a snapshot that lies about its content.
func Upload(ctx context.Context, m *Manifest, dir string, blobs wharf.BlobStore) error {
	data, err := m.JSON()
	if err != nil {
		return fmt.Errorf("snapshot: encode manifest: %w", err)
	}
	if digestOf(data) != m.Digest {
		return wharf.Errorf(wharf.EINVALID, "manifest digest %s does not match its files", m.Digest)
	}
	for _, f := range m.Files {
		if err := uploadFile(ctx, f, dir, blobs); err != nil {
			return err
		}
	}
	// A manifest already stored is not written again: the same folder
	// (an empty output, say) is committed by step after step.
	if _, err := blobs.Stat(ctx, m.Digest); err == nil {
		return nil
	}
	got, _, err := blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("snapshot: store manifest: %w", err)
	}
	if got != m.Digest {
		return fmt.Errorf("snapshot: manifest stored as %s, expected %s", got, m.Digest)
	}
	return nil
}

func uploadFile(ctx context.Context, f File, dir string, blobs wharf.BlobStore) error {
	if _, err := blobs.Stat(ctx, f.Digest); err == nil {
		return nil
	} else if !wharf.IsNotFound(err) {
		return fmt.Errorf("snapshot: check %q in the store: %w", f.Path, err)
	}
	r, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return fmt.Errorf("snapshot: upload %q: %w", f.Path, unwrapPath(err))
	}
	defer r.Close()
	got, _, err := blobs.Put(ctx, r)
	if err != nil {
		return fmt.Errorf("snapshot: upload %q: %w", f.Path, err)
	}
	if got != f.Digest {
		return wharf.Errorf(wharf.ECONFLICT, "file %q changed while the code snapshot was being taken; submit again", f.Path)
	}
	return nil
}

// Load reads and checks the manifest stored under digest.
func Load(ctx context.Context, digest string, blobs wharf.BlobStore) (*Manifest, error) {
	r, size, err := blobs.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > maxManifestSize {
		return nil, wharf.Errorf(wharf.EINVALID, "snapshot manifest %s is %d bytes, more than the %d allowed", digest, size, maxManifestSize)
	}
	// Reading to the end makes the store verify the digest.
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read manifest %s: %w", digest, err)
	}
	var mj manifestJSON
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "blob %s is not a snapshot manifest: %v", digest, err)
	}
	if mj.Version != manifestVersion {
		return nil, wharf.Errorf(wharf.EINVALID, "snapshot manifest %s has version %d; this server reads version %d", digest, mj.Version, manifestVersion)
	}
	if err := validate(mj.Files); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "snapshot manifest %s: %v", digest, err)
	}
	return &Manifest{Digest: digest, Files: mj.Files}, nil
}

// validate refuses manifests that could write outside the destination or
// collide with themselves: a stored manifest is input like any other.
func validate(files []File) error {
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if !fs.ValidPath(f.Path) || f.Path == "." || strings.Contains(f.Path, `\`) {
			return fmt.Errorf("invalid path %q", f.Path)
		}
		if f.Mode != ModeFile && f.Mode != ModeExecutable {
			return fmt.Errorf("file %q has mode %o; only %o and %o are allowed", f.Path, f.Mode, ModeFile, ModeExecutable)
		}
		if len(f.Digest) != len("sha256:")+sha256.Size*2 || !strings.HasPrefix(f.Digest, "sha256:") {
			return fmt.Errorf("file %q has invalid digest %q", f.Path, f.Digest)
		}
		if f.Size < 0 {
			return fmt.Errorf("file %q has negative size", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %q is listed twice", f.Path)
		}
		seen[f.Path] = true
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("%q is both a file and a folder", dir)
			}
		}
	}
	return nil
}

// Materialize recreates the snapshot stored under digest in dest, with the
// recorded modes. dest is created if missing and must otherwise be empty, so
// nothing already there is overwritten or mixed in. On error, whatever
// Materialize created in dest is removed again.
func Materialize(ctx context.Context, digest string, blobs wharf.BlobStore, dest string) (err error) {
	_, err = materialize(ctx, digest, blobs, dest, false)
	return err
}

// MaterializeLinked is Materialize with each file a hard link to its stored
// blob where the store can make one (wharf.BlobFileLinker), for a reader
// that does not write: a folder of any size is then in place at once. The
// links carry the blobs' read-only mode, not the recorded modes. Linked
// files are not verified here: their digests are returned, for the caller
// to verify (wharf.BlobFileLinker.Verify) while it reads, and to discard
// what it made from them if that fails.
func MaterializeLinked(ctx context.Context, digest string, blobs wharf.BlobStore, dest string) (linked []string, err error) {
	return materialize(ctx, digest, blobs, dest, true)
}

func materialize(ctx context.Context, digest string, blobs wharf.BlobStore, dest string, link bool) (linked []string, err error) {
	m, err := Load(ctx, digest, blobs)
	if err != nil {
		return nil, err
	}
	created := false
	entries, err := os.ReadDir(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return nil, fmt.Errorf("snapshot: create %s: %w", dest, err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("snapshot: read %s: %w", dest, err)
	case len(entries) > 0:
		return nil, fmt.Errorf("snapshot: destination %s is not empty", dest)
	}
	defer func() {
		if err == nil {
			return
		}
		if created {
			os.RemoveAll(dest)
			return
		}
		left, _ := os.ReadDir(dest)
		for _, e := range left {
			os.RemoveAll(filepath.Join(dest, e.Name()))
		}
	}()
	linker, canLink := blobs.(wharf.BlobFileLinker)
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if link && canLink {
			target := filepath.Join(dest, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, fmt.Errorf("snapshot: create folder for %q: %w", f.Path, err)
			}
			err := linker.LinkFile(ctx, f.Digest, target)
			if err == nil {
				if !seen[f.Digest] {
					seen[f.Digest] = true
					linked = append(linked, f.Digest)
				}
				continue
			}
			if wharf.ErrorCode(err) == wharf.ENOTFOUND {
				return nil, fmt.Errorf("snapshot: %q: %w", f.Path, err)
			}
			// Another filesystem, say: copy this one.
		}
		if err := writeFile(ctx, f, blobs, dest); err != nil {
			return nil, err
		}
	}
	return linked, nil
}

func writeFile(ctx context.Context, f File, blobs wharf.BlobStore, dest string) error {
	target := filepath.Join(dest, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("snapshot: create folder for %q: %w", f.Path, err)
	}
	if c, ok := blobs.(wharf.BlobFileCopier); ok {
		return copyFile(ctx, f, blobs, c, target)
	}
	r, size, err := blobs.Open(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("snapshot: open %q: %w", f.Path, err)
	}
	defer r.Close()
	if size != f.Size {
		return fmt.Errorf("snapshot: %q is %d bytes in the store but %d in the manifest", f.Path, size, f.Size)
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode)
	if err != nil {
		return fmt.Errorf("snapshot: create %q: %w", f.Path, err)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("snapshot: write %q: %w", f.Path, err)
	}
	// The umask may have cleared bits that the snapshot records.
	if err := out.Chmod(f.Mode); err != nil {
		out.Close()
		return fmt.Errorf("snapshot: set mode of %q: %w", f.Path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("snapshot: write %q: %w", f.Path, err)
	}
	return nil
}

// copyFile is writeFile for a store that copies to files itself, which is
// faster for large files (see wharf.BlobFileCopier). It makes the same checks
// and, like writeFile, creates target exclusively.
func copyFile(ctx context.Context, f File, blobs wharf.BlobStore, c wharf.BlobFileCopier, target string) error {
	size, err := blobs.Stat(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("snapshot: open %q: %w", f.Path, err)
	}
	if size != f.Size {
		return fmt.Errorf("snapshot: %q is %d bytes in the store but %d in the manifest", f.Path, size, f.Size)
	}
	if err := c.CopyFile(ctx, f.Digest, target, f.Mode); err != nil {
		return fmt.Errorf("snapshot: write %q: %w", f.Path, err)
	}
	// The umask may have cleared bits that the snapshot records.
	if err := os.Chmod(target, f.Mode); err != nil {
		return fmt.Errorf("snapshot: set mode of %q: %w", f.Path, err)
	}
	return nil
}

// FromStored makes and stores the manifest of files whose contents are
// already in the store (a model's artifacts, say), so they can be
// materialized as one folder. Every file's blob must exist.
func FromStored(ctx context.Context, files []File, blobs wharf.BlobStore) (*Manifest, error) {
	m := &Manifest{Files: append([]File(nil), files...)}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	for _, f := range m.Files {
		if _, err := blobs.Stat(ctx, f.Digest); err != nil {
			return nil, fmt.Errorf("snapshot: %s: %w", f.Path, err)
		}
	}
	data, err := m.JSON()
	if err != nil {
		return nil, err
	}
	if m.Digest, _, err = blobs.Put(ctx, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("snapshot: store manifest: %w", err)
	}
	// Load validates paths and modes as for any stored manifest.
	if _, err := Load(ctx, m.Digest, blobs); err != nil {
		return nil, err
	}
	return m, nil
}

// manifestPrefix starts the canonical JSON of every manifest this package
// writes (see Manifest.JSON), so that a blob can be told from a manifest
// by its first bytes, without reading a large file.
var manifestPrefix = []byte(fmt.Sprintf(`{"version":%d,"files":`, manifestVersion))

// Contents returns digest and, when the blob is a snapshot manifest, the
// digests of the files it lists: all the content that a job or an asset
// naming digest reads. Any other blob, including one that merely starts
// like a manifest, is its own content.
func Contents(ctx context.Context, digest string, blobs wharf.BlobStore) ([]string, error) {
	r, size, err := blobs.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	// Only the first bytes are read, never the end, where the store's
	// reader checks the digest: whether the content is intact is for
	// whoever reads it all to find out.
	isManifest := false
	if size > int64(len(manifestPrefix)) {
		head := make([]byte, len(manifestPrefix))
		if _, err := io.ReadFull(r, head); err != nil {
			r.Close()
			return nil, fmt.Errorf("snapshot: read %s: %w", digest, err)
		}
		isManifest = bytes.Equal(head, manifestPrefix)
	}
	r.Close()
	if !isManifest {
		return []string{digest}, nil
	}
	m, err := Load(ctx, digest, blobs)
	if wharf.ErrorCode(err) == wharf.EINVALID {
		return []string{digest}, nil
	}
	if err != nil {
		return nil, err
	}
	return m.Digests(), nil
}

// CheckReferenced answers nil when the workspace references digest and,
// for a snapshot, every file in it (see wharf.BlobRefService), and
// otherwise an EINVALID error naming field: content is named in a job, an
// asset or a deployment only by a workspace that holds it, or a digest
// seen elsewhere would read another workspace's data.
func CheckReferenced(ctx context.Context, refs wharf.BlobRefService, blobs wharf.BlobStore, workspace, digest, field string) error {
	notUploaded := wharf.Errorf(wharf.EINVALID, "content %s has not been uploaded to workspace %s", digest, workspace).WithField(field)
	digests, err := Contents(ctx, digest, blobs)
	if wharf.IsNotFound(err) || wharf.ErrorCode(err) == wharf.EINVALID {
		return notUploaded
	}
	if err != nil {
		return err
	}
	missing, err := refs.UnreferencedBlobs(ctx, workspace, digests)
	switch {
	case err != nil:
		return err
	case len(missing) == 0:
		return nil
	case missing[0] == digest:
		return notUploaded
	}
	return wharf.Errorf(wharf.EINVALID, "folder %s lists %d files that have not been uploaded to workspace %s (%s among them)",
		digest, len(missing), workspace, missing[0]).WithField(field)
}

// ModelContentDigest is wharf.ModelContentDigest of a model registered
// from local, a folder (every file below it, ignore files not applied, as
// a model is uploaded) or one file, computed before anything is uploaded
// so that a version holding the same files can be reused instead.
func ModelContentDigest(local string) (string, error) {
	st, err := os.Stat(local)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(local)
	if err != nil {
		return "", err
	}
	base := filepath.Base(abs)
	found := []LocalFile{{Path: "", Real: local}}
	if st.IsDir() {
		if found, err = Files(local); err != nil {
			return "", err
		}
	}
	files := make([]wharf.ModelFile, len(found))
	for i, lf := range found {
		f, err := hashFile(lf.Real)
		if err != nil {
			return "", fmt.Errorf("snapshot: %q: %w", lf.Path, err)
		}
		files[i] = wharf.ModelFile{Path: path.Join(base, lf.Path), Digest: f.Digest}
	}
	return wharf.ModelContentDigest(files), nil
}
