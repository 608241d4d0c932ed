// Package sandbox runs user code — job steps, batch drivers, scoring
// scripts, Python model workers — where it cannot reach the server: in its
// own mount, PID, IPC and UTS namespaces built by bubblewrap (bwrap, from
// Debian's bubblewrap package), and, when the server runs as root, as a
// separate unprivileged user.
//
// Inside, a process sees the host's system folders read-only (/usr, /etc,
// the library folders, /opt), a /tmp, /dev and /proc of its own, and
// exactly the folders its caller mounts for it: its code, inputs and
// outputs, its Python environment. It does not see the server's data
// folder, other jobs' folders, the server's processes or their /proc
// entries, or the server's environment. The network is shared, so a step
// reaches the server's API on loopback with the token it was given.
//
// Two hazards shape how a command is started. A privileged bwrap is a
// dynamically linked program running as root, so it must never be given
// the step's environment (LD_PRELOAD and its kin would run the step's code
// as root before any namespace exists): bwrap and the privilege drop run
// with a fixed, clean environment, and the step's environment reaches the
// step's first shell on its standard input, read only after the switch to
// the unprivileged user. And the step's variables hold its token, so they
// are never put on a command line, which every user of the host can read.
package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// DefaultUser is the unprivileged account steps run as when the server runs
// as root and no other was named.
const DefaultUser = "wharf-step"

// cleanPath is the whole environment of bwrap and of the privilege drop.
const cleanPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// systemPaths are the host folders every sandbox sees read-only: what a
// container image would hold. Missing ones are skipped; symbolic links
// (a merged /usr's /bin -> usr/bin) are recreated as links.
var systemPaths = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// Mount is a host path made visible inside the sandbox at the same path.
type Mount struct {
	// Path is the host path, file or folder, and where it appears.
	Path string `json:"path"`
	// Source, when set, is the host path shown at Path instead: a folder
	// whose contents the server changes while the sandbox runs, say.
	Source string `json:"source,omitempty"`
	// Writable mounts it read-write; the default is read-only.
	Writable bool `json:"writable,omitempty"`
	// Device mounts a device file (a GPU's, say) so that it can be
	// opened as a device; other mounts of /dev files cannot be.
	Device bool `json:"device,omitempty"`
}

// Spec is one process to run in a sandbox.
type Spec struct {
	// Argv is the command; a name without a slash is looked up in the PATH
	// of Env inside the sandbox.
	Argv []string `json:"argv"`
	// Env is the process's complete environment.
	Env []string `json:"env"`
	// Dir is the working directory; it must be inside a mount.
	Dir string `json:"dir"`
	// Mounts are the host paths the process may reach besides the system
	// folders. Parents are mounted before children whatever the order.
	Mounts []Mount `json:"mounts"`
}

// Sandbox says how processes are isolated. The zero value is not usable;
// build one with New. A nil *Sandbox means no isolation (see Command).
type Sandbox struct {
	// Bwrap is the path of the bwrap program.
	Bwrap string
	// Setpriv is the path of util-linux's setpriv, which drops to the step
	// user inside a privileged sandbox.
	Setpriv string
	// UID and GID are the account sandboxed processes run as. When they
	// equal the server's own (a server not running as root), bwrap makes
	// an unprivileged user namespace instead of switching users.
	UID, GID int
	// User names the account, for messages.
	User string
	// Hidden are host folders (the server's data folder) never mounted
	// automatically, e.g. because a PATH entry lies inside them; an
	// explicit Mount may still name a path below them.
	Hidden []string
	// ReadOnly are extra host paths every sandbox sees read-only (an
	// administrator's --step-ro-path).
	ReadOnly []string
}

// Options configure New.
type Options struct {
	// User is the account to run as when the server runs as root; empty
	// means DefaultUser, created if it does not exist.
	User string
	// Hidden and ReadOnly are copied to the Sandbox.
	Hidden, ReadOnly []string
}

// ErrUnavailable is wrapped by New's errors when this machine cannot build
// sandboxes; the message says what to install or change.
var ErrUnavailable = errors.New("sandbox unavailable")

// New finds bwrap (and, as root, setpriv and the step user, creating
// DefaultUser when it is missing) and checks that a sandbox can be built
// here by running a trivial one.
func New(o Options) (*Sandbox, error) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, fmt.Errorf("%w: bwrap is not installed (apt-get install bubblewrap)", ErrUnavailable)
	}
	s := &Sandbox{Bwrap: bwrap, UID: os.Getuid(), GID: os.Getgid(), Hidden: o.Hidden, ReadOnly: o.ReadOnly}
	if u, err := user.LookupId(strconv.Itoa(s.UID)); err == nil {
		s.User = u.Username
	}
	if os.Geteuid() == 0 {
		if s.Setpriv, err = exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("%w: setpriv is not installed (apt-get install util-linux)", ErrUnavailable)
		}
		name := o.User
		if name == "" {
			name = DefaultUser
		}
		u, err := lookupOrCreateUser(name, o.User == "")
		if err != nil {
			return nil, err
		}
		s.User = name
		if s.UID, err = strconv.Atoi(u.Uid); err != nil {
			return nil, fmt.Errorf("sandbox: user %s has uid %q", name, u.Uid)
		}
		if s.GID, err = strconv.Atoi(u.Gid); err != nil {
			return nil, fmt.Errorf("sandbox: user %s has gid %q", name, u.Gid)
		}
		if s.UID == 0 || s.GID == 0 {
			return nil, fmt.Errorf("sandbox: step user %s is root (uid %d, gid %d); name an unprivileged account", name, s.UID, s.GID)
		}
	}
	if err := s.probe(); err != nil {
		return nil, err
	}
	return s, nil
}

// lookupOrCreateUser finds the account, creating it as a system account
// without a home or login shell when create is set and it is missing.
func lookupOrCreateUser(name string, create bool) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	var unknown user.UnknownUserError
	if !errors.As(err, &unknown) || !create {
		return nil, fmt.Errorf("sandbox: step user %s: %w", name, err)
	}
	useradd, lerr := exec.LookPath("useradd")
	if lerr != nil {
		return nil, fmt.Errorf("%w: step user %s does not exist and useradd is not installed", ErrUnavailable, name)
	}
	out, err := exec.Command(useradd, "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		// Another server may have created it meanwhile.
		if u, lerr := user.Lookup(name); lerr == nil {
			return u, nil
		}
		return nil, fmt.Errorf("sandbox: creating step user %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return user.Lookup(name)
}

// probe runs `true` in a sandbox, so that a host where namespaces are
// forbidden fails at start-up, with the reason, rather than at every job.
func (s *Sandbox) probe() error {
	cmd, err := s.Command(Spec{Argv: []string{"/bin/sh", "-c", "exit 0"}, Env: []string{cleanPath}, Dir: "/"})
	if err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: a test sandbox failed (%v): %s", ErrUnavailable, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Privileged reports whether sandboxed processes switch to another user,
// which is when their writable folders must be handed to it (Own).
func (s *Sandbox) Privileged() bool {
	return s != nil && s.Setpriv != ""
}

// validName matches the variable names a POSIX shell can export.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Command returns the command that runs spec in the sandbox. Its Stdin
// carries the environment; give the process its input some other way.
// Callers set SysProcAttr (process group, death signal) as for any process.
func (s *Sandbox) Command(spec Spec) (*exec.Cmd, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("sandbox: no command")
	}
	script, err := exportScript(spec.Env)
	if err != nil {
		return nil, err
	}
	args := []string{"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--die-with-parent", "--hostname", "wharf"}
	if !s.Privileged() {
		// An unprivileged bwrap makes a user namespace; nested ones are
		// refused so that the sandbox cannot regain capabilities in one.
		args = append(args, "--unshare-user", "--disable-userns")
	}
	for _, p := range systemPaths {
		args = appendSystemPath(args, p)
	}
	// /tmp is a tmpfs of the sandbox's own; callers who want large
	// temporary files on disk mount a folder and point TMPDIR at it.
	args = append(args, "--proc", "/proc", "--dev", "/dev",
		"--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp")
	mounts := s.mounts(spec)
	// bwrap makes a mount's missing parents mode 0700, which the step
	// user could not pass through; they are made first, traversable.
	wanted := append([]Mount{}, mounts...)
	for _, l := range s.links(spec, mounts) {
		wanted = append(wanted, Mount{Path: l[0]})
	}
	for _, d := range parentsToMake(mounts, wanted) {
		args = append(args, "--perms", "0755", "--dir", d)
	}
	for _, m := range mounts {
		flag := "--ro-bind"
		switch {
		case m.Device:
			flag = "--dev-bind"
		case m.Writable:
			flag = "--bind"
		}
		src := m.Path
		if m.Source != "" {
			src = m.Source
		}
		args = append(args, flag, src, m.Path)
	}
	// A mount named through a symbolic link is reached by that name too.
	for _, l := range s.links(spec, mounts) {
		args = append(args, "--symlink", l[1], l[0])
	}
	if spec.Dir != "" {
		args = append(args, "--chdir", spec.Dir)
	}
	if s.Privileged() {
		args = append(args, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
			s.Setpriv, "--reuid="+strconv.Itoa(s.UID), "--regid="+strconv.Itoa(s.GID), "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs")
	} else {
		args = append(args, "--")
	}
	// The first shell runs as the step user: it reads the environment
	// from standard input, then becomes the command with /dev/null as
	// input.
	args = append(args, "/bin/sh", "-c", `eval "$(cat)" && exec "$@" </dev/null`, "wharf-step")
	args = append(args, spec.Argv...)
	cmd := &exec.Cmd{Path: s.Bwrap, Args: append([]string{s.Bwrap}, args...), Env: []string{cleanPath},
		Stdin: strings.NewReader(script)}
	return cmd, nil
}

// exportScript turns an environment into shell that sets exactly it.
func exportScript(env []string) (string, error) {
	var b strings.Builder
	// Unset what the shell was started with, so the step's environment
	// is exactly env.
	b.WriteString("unset PATH; ")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !validName.MatchString(k) {
			return "", fmt.Errorf("environment variable name %q cannot be passed to a sandboxed process (use letters, digits and _)", k)
		}
		b.WriteString("export " + k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'\n")
	}
	return b.String(), nil
}

func appendSystemPath(args []string, p string) []string {
	info, err := os.Lstat(p)
	if err != nil {
		return args
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return args
		}
		return append(args, "--symlink", target, p)
	}
	return append(args, "--ro-bind", p, p)
}

// mounts returns spec's mounts, the administrator's read-only paths and
// the folders behind the command's PATH, parents first, without duplicates
// or paths the system folders already cover.
func (s *Sandbox) mounts(spec Spec) []Mount {
	byPath := map[string]Mount{}
	add := func(m Mount, auto bool) {
		p := filepath.Clean(m.Path)
		if m.Source == "" {
			real, err := filepath.EvalSymlinks(m.Path)
			if err != nil {
				return
			}
			p = real
		} else if _, err := os.Stat(m.Source); err != nil {
			return
		}
		if auto && (s.hidden(p) || coveredBySystem(p) || !s.canEnter(p)) {
			return
		}
		if old, ok := byPath[p]; ok && old.Writable {
			return
		}
		m.Path = p
		byPath[p] = m
	}
	for _, m := range spec.Mounts {
		add(m, false)
	}
	for _, p := range s.ReadOnly {
		add(Mount{Path: p}, false)
		if home := venvHome(filepath.Join(p, "pyvenv.cfg")); home != "" {
			// A shared virtual environment needs its base interpreter.
			add(Mount{Path: filepath.Dir(home)}, false)
		}
	}
	for _, p := range pathMounts(spec.Env) {
		add(Mount{Path: p}, true)
	}
	out := make([]Mount, 0, len(byPath))
	for _, m := range byPath {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// links returns, for each mount the caller named through a symbolic link,
// the name and its real path, where the name is not already inside a
// mount (where the link itself is then visible).
func (s *Sandbox) links(spec Spec, mounts []Mount) [][2]string {
	var out [][2]string
	seen := map[string]bool{}
	for _, m := range append(append([]Mount{}, spec.Mounts...), readOnly(s.ReadOnly)...) {
		if m.Source != "" {
			continue
		}
		name := filepath.Clean(m.Path)
		real, err := filepath.EvalSymlinks(name)
		if err != nil || real == name || seen[name] || inMounts(name, mounts) || coveredBySystem(name) {
			continue
		}
		seen[name] = true
		out = append(out, [2]string{name, real})
	}
	return out
}

func readOnly(paths []string) []Mount {
	out := make([]Mount, len(paths))
	for i, p := range paths {
		out[i] = Mount{Path: p}
	}
	return out
}

func inMounts(p string, mounts []Mount) bool {
	for _, m := range mounts {
		if p == m.Path || strings.HasPrefix(p, m.Path+"/") {
			return true
		}
	}
	return false
}

// canEnter reports whether the sandbox's user may search folder p (a file
// counts as enterable): a PATH folder it could not enter would be mounted
// for nothing, and would hide what is mounted below it.
func (s *Sandbox) canEnter(p string) bool {
	info, err := os.Stat(p)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok {
		return true
	}
	mode := uint32(info.Mode().Perm())
	switch {
	case int(st.Uid) == s.UID:
		return mode&0o100 != 0
	case int(st.Gid) == s.GID:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// parentsToMake returns the folders above the mounts that the sandbox must
// create, parents first: those not already there (the root, the system
// folders, /tmp) and not inside another mount, where creating or changing
// them would touch the host.
func parentsToMake(mounts, wanted []Mount) []string {
	inMount := func(p string) bool { return inMounts(p, mounts) }
	seen := map[string]bool{}
	var out []string
	for _, m := range wanted {
		var chain []string
		for d := filepath.Dir(m.Path); d != "/" && d != "/tmp" && !coveredBySystem(d); d = filepath.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			d := chain[i]
			if seen[d] || inMount(d) {
				continue
			}
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func (s *Sandbox) hidden(p string) bool {
	for _, h := range s.Hidden {
		if h == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(h); err == nil {
			h = real
		}
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}

func coveredBySystem(p string) bool {
	for _, sp := range systemPaths {
		if p == sp || strings.HasPrefix(p, sp+"/") {
			return true
		}
	}
	return p == "/"
}

// ProgramMounts returns what a sandbox needs to run the program at path
// (an interpreter, say): its folder, or the virtual environment or
// installation it belongs to. Callers mount them explicitly, so they may
// lie in a hidden folder, as the server's own Python environments do.
func ProgramMounts(path string) []Mount {
	var out []Mount
	for _, p := range pathMounts([]string{"PATH=" + filepath.Dir(path)}) {
		out = append(out, Mount{Path: p})
	}
	return out
}

// pathMounts returns the host folders a command needs for the programs on
// its PATH: each folder, or the virtual environment it belongs to, and that
// environment's base interpreter folder.
func pathMounts(env []string) []string {
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var out []string
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		root := filepath.Dir(d)
		cfg := filepath.Join(root, "pyvenv.cfg")
		if _, err := os.Stat(cfg); err == nil {
			out = append(out, root)
			if home := venvHome(cfg); home != "" {
				out = append(out, filepath.Dir(home))
			}
			continue
		}
		info, err := os.Stat(d)
		if err != nil || !info.IsDir() {
			continue
		}
		switch {
		case filepath.Base(d) == "shims":
			// pyenv, rbenv and asdf shims run their manager from the
			// folder above, which also holds the installed versions.
			out = append(out, root)
		case filepath.Base(d) == "bin" && isDir(filepath.Join(root, "lib")):
			// An installation prefix: its programs need its lib.
			out = append(out, root)
		default:
			out = append(out, d)
		}
	}
	return out
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// venvHome reads the base interpreter's folder from a pyvenv.cfg.
func venvHome(cfg string) string {
	f, err := os.Open(cfg)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "home" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Own hands the folders to the sandbox user, so that a process switched to
// it can write there. Files with more than one link are left alone: they
// are hard links into the blob store, which the step may read but must
// never own. Symbolic links are changed themselves, never followed.
func (s *Sandbox) Own(paths ...string) error {
	if !s.Privileged() {
		return nil
	}
	for _, root := range paths {
		if err := chownTree(root, s.UID, s.GID, true); err != nil {
			return fmt.Errorf("sandbox: handing %s to user %s: %w", root, s.User, err)
		}
	}
	return nil
}

// chownTree gives root and everything below it to uid and gid, changing
// symbolic links themselves, and leaving regular files of several links
// alone when skipLinked is set. A missing root is nothing to change.
func chownTree(root string, uid, gid int, skipLinked bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			return err
		}
		if skipLinked && d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				return nil
			}
		}
		return os.Lchown(p, uid, gid)
	})
}

// Describe says in one line how processes are isolated, for the server's
// start-up log.
func (s *Sandbox) Describe() string {
	if s == nil {
		return "steps run as the server's own user, unisolated"
	}
	if s.Privileged() {
		return fmt.Sprintf("steps run in bwrap sandboxes as user %s (uid %d)", s.User, s.UID)
	}
	return fmt.Sprintf("steps run in bwrap sandboxes (user namespace) as the server's user %s", s.User)
}
