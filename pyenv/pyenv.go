// Package pyenv builds and caches the Python virtual environments that jobs
// run in.
//
// An environment is built once per distinct Spec and then shared by every job
// that asks for the same packages. Building is the slow part of starting a
// job (minutes for large packages), so it is guarded by a file lock that also
// works across server processes, and an environment is published only once
// complete: an interrupted build is thrown away, never reused.
package pyenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharfml/wharf"
)

// Layout of CacheDir:
//
//	<key>             symlink to .store/<key>-<random>, present only once that
//	                  environment is complete
//	.store/<key>-*    environments, built in place: a virtual environment
//	                  cannot be moved after it is made (its scripts name
//	                  their interpreter by absolute path), so it is
//	                  published by an atomic rename of the symlink instead
//	.store/<key>-*.home
//	                  a build's home and temporary folder, removed when
//	                  it ends
//	.locks/<key>.lock flock(2) files serialising builds of one key
//	.cache/{pip,uv}   the installers' download and wheel caches, shared by
//	                  builds and written by the account they run as
const (
	storeDir = ".store"
	locksDir = ".locks"
	cacheDir = ".cache"

	requirementsFile = "wharf-requirements.txt"
	specFile         = "wharf-spec.json"
)

// Builder creates environments under CacheDir. It is safe for concurrent
// use, also by several processes sharing CacheDir.
type Builder struct {
	// CacheDir holds the environments; it is created if missing.
	CacheDir string
	// HostPython is the interpreter used when a spec names no version,
	// or one that is not installed. Empty means python3 on PATH.
	HostPython string
	// DisableUV builds with python -m venv and pip even when uv is on
	// PATH.
	DisableUV bool
	// Runner starts the build's commands (venv creation, installs) apart
	// from the server: they run the build code of the packages installed,
	// which must not reach the server's files, environment or tokens.
	// Nil runs them as the server's own user, unisolated, and the build
	// log says so.
	Runner wharf.BuildRunner

	mu sync.Mutex
	// cacheGiven is set once this process handed the installers' cache
	// to the Runner's account; a server that ran unsandboxed before may
	// have left it its own.
	cacheGiven bool
}

// Env is a built environment.
type Env struct {
	// Dir is the environment's real folder (VIRTUAL_ENV).
	Dir string
	// BinDir holds its python, pip and installed scripts.
	BinDir string
	// Python is the environment's interpreter.
	Python string
	// PythonVersion is the major.minor version of Python actually used,
	// which differs from the requested one when that is not installed.
	PythonVersion string
	// Cached is true when Ensure found the environment already built.
	Cached bool
	// Base is the built environment an overlay (see Overlay) is layered
	// on; nil for any other environment, and for an overlay on the
	// host's Python.
	Base *Env
}

// Environ returns the variables that activate the environment for a
// process whose PATH would otherwise be path: PATH with BinDir first, and
// VIRTUAL_ENV. A process given them should not also inherit PYTHONHOME,
// which would point Python at another installation. A nil *Env (the host's
// own tools) returns just PATH=path, so callers need not treat it
// specially.
func (e *Env) Environ(path string) []string {
	if e == nil {
		return []string{"PATH=" + path}
	}
	bins := e.BinDir
	if e.Base != nil {
		// The base environment's own programs (mlflow, pytest...) come
		// after the overlay's.
		bins += string(os.PathListSeparator) + e.Base.BinDir
	}
	if path == "" {
		path = bins
	} else {
		path = bins + string(os.PathListSeparator) + path
	}
	return []string{"PATH=" + path, "VIRTUAL_ENV=" + e.Dir}
}

// Ensure returns the environment for s, building it first if needed, and
// writes what it does, including all output of the build tools, to log.
//
// A spec that names no Python version and installs nothing means "use the
// host's own tools": Ensure then returns a nil *Env and no error, and
// (*Env)(nil).Environ leaves PATH as it is.
//
// The build uses uv if it is on PATH (uv venv --seed, uv pip install),
// otherwise python -m venv and pip. The interpreter is the requested
// major.minor if one is installed (pythonX.Y on PATH, a pyenv installation,
// or one uv finds without downloading); otherwise the host's python3 is used
// and a warning naming both versions is written to log. Which interpreter a
// cached environment got is not revisited when others are installed later.
//
// If the build fails the error carries the last lines the tool printed (for
// pip, its ERROR lines) and nothing of the attempt is kept.
func (b *Builder) Ensure(ctx context.Context, s Spec, log io.Writer) (*Env, error) {
	if log == nil {
		log = io.Discard
	}
	spec, unmapped, err := s.canonical()
	if err != nil {
		return nil, err
	}
	if spec.Python == "" && len(spec.Requirements) == 0 {
		if len(unmapped) > 0 {
			fmt.Fprintf(log, "wharf: conda packages without a pip equivalent are not installed: %s\n", strings.Join(unmapped, ", "))
		}
		return nil, nil
	}
	if b.CacheDir == "" {
		return nil, errors.New("pyenv: Builder.CacheDir is not set")
	}
	key := spec.key()
	if env, ok := b.lookup(key); ok {
		return env, nil
	}

	for _, d := range []string{b.CacheDir, b.path(storeDir), b.path(locksDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("pyenv: create cache folder: %w", err)
		}
	}
	unlock, err := lockFile(ctx, b.path(locksDir, key+".lock"), func() {
		fmt.Fprintf(log, "wharf: another job is building this environment; waiting for it\n")
	})
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Someone else may have finished it while this one waited.
	if env, ok := b.lookup(key); ok {
		return env, nil
	}
	if err := b.removeStale(key); err != nil {
		return nil, err
	}
	pip, _ := s.Requirements()
	return b.build(ctx, key, spec, s, pip, unmapped, log)
}

func (b *Builder) path(elem ...string) string {
	return filepath.Join(append([]string{b.CacheDir}, elem...)...)
}

// lookup returns the published environment of key if it is usable. A
// published environment whose interpreter has disappeared (the Python it
// was made from was uninstalled) is not; Ensure rebuilds it.
func (b *Builder) lookup(key string) (*Env, bool) {
	target, err := os.Readlink(b.path(key))
	if err != nil {
		return nil, false
	}
	dir := b.path(target)
	env := newEnv(dir)
	if _, err := os.Stat(env.Python); err != nil {
		return nil, false
	}
	if data, err := os.ReadFile(filepath.Join(dir, specFile)); err == nil {
		var rec buildRecord
		if json.Unmarshal(data, &rec) == nil {
			env.PythonVersion = rec.UsedPython
		}
	}
	env.Cached = true
	return env, true
}

func newEnv(dir string) *Env {
	bin := filepath.Join(dir, "bin")
	return &Env{Dir: dir, BinDir: bin, Python: filepath.Join(bin, "python")}
}

// removeStale deletes a published link whose environment is broken and any
// build of key left by a crash. The caller holds the key's lock, so no live
// build is among them.
func (b *Builder) removeStale(key string) error {
	if err := os.Remove(b.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pyenv: remove broken environment: %w", err)
	}
	leftovers, err := filepath.Glob(b.path(storeDir, key+"-*"))
	if err != nil {
		return fmt.Errorf("pyenv: list old builds: %w", err)
	}
	for _, dir := range leftovers {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("pyenv: remove old build: %w", err)
		}
	}
	return nil
}

// buildRecord is stored in each environment to show what it was built from.
type buildRecord struct {
	Spec          Spec          `json:"spec"`
	Canonical     canonicalSpec `json:"canonical"`
	Requirements  []string      `json:"requirements"`
	NotInstalled  []string      `json:"not_installed,omitempty"`
	Interpreter   string        `json:"interpreter"`
	UsedPython    string        `json:"python_version"`
	Tool          string        `json:"tool"`
	BuiltAt       time.Time     `json:"built_at"`
	BuildDuration string        `json:"build_duration"`
}

func (b *Builder) build(ctx context.Context, key string, spec canonicalSpec, s Spec, pip, unmapped []string, log io.Writer) (env *Env, err error) {
	began := time.Now()
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("pyenv: %w", err)
	}
	name := key + "-" + hex.EncodeToString(suffix)
	dir := b.path(storeDir, name)
	home := dir + ".home"
	defer os.RemoveAll(home)
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	if len(unmapped) > 0 {
		fmt.Fprintf(log, "wharf: conda packages without a pip equivalent are not installed: %s\n", strings.Join(unmapped, ", "))
	}
	uv := b.uv()
	interp, version, err := b.interpreter(ctx, spec.Python, uv, log)
	if err != nil {
		return nil, err
	}
	if uv != "" {
		// The program itself, not a link to it (pipx's), which a
		// sandbox showing only the link's folder could not follow.
		if real, err := filepath.EvalSymlinks(uv); err == nil {
			uv = real
		}
	}
	env = newEnv(dir)
	env.PythonVersion = version
	tool := "pip"
	if uv != "" {
		tool = "uv"
	}
	fmt.Fprintf(log, "wharf: building Python %s environment %s with %s\n", version, key, tool)
	// The interpreter itself, not a pyenv shim or a link to it: inside a
	// sandbox a shim would not find its settings.
	host, err := hostInterpreter(ctx, interp)
	if err != nil {
		return nil, err
	}
	base := host.Executable
	bc, err := b.prepare(dir, home, base, uv, pip, log)
	if err != nil {
		return nil, err
	}

	reqFile := filepath.Join(dir, requirementsFile)
	if uv != "" {
		err = b.run(ctx, log, "uv venv", bc, uv, "venv", "--seed", "--python", base, dir)
	} else {
		err = b.run(ctx, log, "python -m venv", bc, base, "-m", "venv", dir)
	}
	if err != nil {
		return nil, err
	}
	if len(pip) > 0 {
		if err := os.WriteFile(reqFile, []byte(strings.Join(pip, "\n")+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("pyenv: write requirements: %w", err)
		}
		if uv != "" {
			err = b.run(ctx, log, "uv pip install", bc, uv, "pip", "install", "--python", env.Python, "-r", reqFile)
		} else {
			err = b.run(ctx, log, "pip install", bc, env.Python, "-m", "pip", "install", "--no-input", "--progress-bar", "off", "-r", reqFile)
		}
		if err != nil {
			return nil, err
		}
	}
	if b.Runner != nil {
		if err := b.Runner.Reclaim(dir); err != nil {
			return nil, fmt.Errorf("pyenv: %w", err)
		}
	}

	rec := buildRecord{
		Spec: s, Canonical: spec, Requirements: pip, NotInstalled: unmapped,
		Interpreter: interp, UsedPython: version, Tool: tool,
		BuiltAt: time.Now().UTC(), BuildDuration: time.Since(began).Round(time.Millisecond).String(),
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pyenv: encode build record: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, specFile), data, 0o644); err != nil {
		return nil, fmt.Errorf("pyenv: write build record: %w", err)
	}
	if err := b.publish(key, name); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "wharf: environment ready in %s\n", time.Since(began).Round(time.Millisecond))
	return env, nil
}

// prepare makes the folders a build writes, hands them to the Runner's
// account, and returns what every command of the build shares: a clean
// environment (buildEnviron) whose HOME and TMPDIR are the build's own, its
// folders, and what it reads.
func (b *Builder) prepare(dir, home, interp, uv string, pip []string, log io.Writer) (wharf.BuildCommand, error) {
	cache := b.path(cacheDir)
	tmp := filepath.Join(home, "tmp")
	for _, d := range []string{dir, tmp, filepath.Join(cache, "pip"), filepath.Join(cache, "uv")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return wharf.BuildCommand{}, fmt.Errorf("pyenv: create build folder: %w", err)
		}
	}
	c := wharf.BuildCommand{
		Env: buildEnviron(home, tmp, cache),
		Dir: dir,
		// The cache is writable by every build: that is what lets one
		// reuse another's downloads.
		Writable: []string{dir, home, cache},
	}
	for _, p := range []string{interp, uv} {
		if p != "" {
			c.ReadOnly = append(c.ReadOnly, programFolder(p))
		}
	}
	c.ReadOnly = append(c.ReadOnly, localPaths(pip)...)
	for _, kv := range c.Env {
		// What the administrator's settings name: certificate bundles,
		// PIP_FIND_LINKS=/srv/wheels, a file:// index.
		k, v, _ := strings.Cut(kv, "=")
		if k != "PATH" && fromServer(k) {
			c.ReadOnly = append(c.ReadOnly, localPaths([]string{v})...)
		}
	}
	if b.Runner == nil {
		fmt.Fprintf(log, "wharf: WARNING: this build runs as the server's own user, unisolated: the build code of its packages can read what the server can\n")
		return c, nil
	}
	own := []string{dir, home}
	b.mu.Lock()
	giveCache := !b.cacheGiven
	b.mu.Unlock()
	if giveCache {
		own = append(own, cache)
	}
	if err := b.Runner.Own(own...); err != nil {
		return wharf.BuildCommand{}, fmt.Errorf("pyenv: %w", err)
	}
	if giveCache {
		b.mu.Lock()
		b.cacheGiven = true
		b.mu.Unlock()
	}
	fmt.Fprintf(log, "wharf: build commands run %s\n", b.Runner.Isolation())
	return c, nil
}

// programFolder is what a build must see to run the program at path: the
// installation it belongs to (a prefix with bin and lib), else its folder.
func programFolder(path string) string {
	bin := filepath.Dir(path)
	if filepath.Base(bin) == "bin" {
		if info, err := os.Stat(filepath.Join(filepath.Dir(bin), "lib")); err == nil && info.IsDir() {
			return filepath.Dir(bin)
		}
	}
	return bin
}

// localPaths returns the existing absolute paths that requirement lines
// name (a wheel or source folder, "name @ file:///...", --find-links
// /wheels), which a build must be able to read.
func localPaths(lines []string) []string {
	var out []string
	for _, line := range lines {
		for _, field := range strings.Fields(line) {
			if _, v, ok := strings.Cut(field, "="); ok && strings.HasPrefix(field, "-") {
				field = v
			}
			if u, err := url.Parse(field); err == nil && u.Scheme == "file" {
				field = u.Path
			}
			if !filepath.IsAbs(field) {
				continue
			}
			if _, err := os.Stat(field); err == nil {
				out = append(out, filepath.Clean(field))
			}
		}
	}
	return out
}

// publish points CacheDir/<key> at the finished build. Renaming a new link
// over the old name is atomic, so readers see no link or a complete
// environment.
func (b *Builder) publish(key, name string) error {
	tmp := b.path(storeDir, name+".link")
	if err := os.Symlink(filepath.Join(storeDir, name), tmp); err != nil {
		return fmt.Errorf("pyenv: publish environment: %w", err)
	}
	if err := os.Rename(tmp, b.path(key)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pyenv: publish environment: %w", err)
	}
	if d, err := os.Open(b.CacheDir); err == nil {
		d.Sync() // best effort: a lost link only costs a rebuild
		d.Close()
	}
	return nil
}

// uv returns the uv to build with, "" for pip.
func (b *Builder) uv() string {
	if b.DisableUV {
		return ""
	}
	uv, _ := exec.LookPath("uv")
	return uv
}

// HasPython reports whether an environment that asks for Python version
// want (major.minor) gets that version rather than the host's Python:
// whether it is installed where Ensure looks, without downloading it.
func (b *Builder) HasPython(ctx context.Context, want string) bool {
	_, got, err := b.interpreter(ctx, want, b.uv(), io.Discard)
	return err == nil && versionMatches(got, want)
}

// interpreter picks the Python to build with and returns its path and
// major.minor version.
func (b *Builder) interpreter(ctx context.Context, want, uv string, log io.Writer) (string, string, error) {
	host := b.HostPython
	if host == "" {
		host = "python3"
	}
	hostPath, hostErr := exec.LookPath(host)
	hostVersion := ""
	if hostErr == nil {
		hostVersion, hostErr = probe(ctx, hostPath)
	}
	if want != "" && hostErr == nil && versionMatches(hostVersion, want) {
		return hostPath, hostVersion, nil
	}
	if want != "" {
		for _, candidate := range candidates(ctx, want, uv) {
			if v, err := probe(ctx, candidate); err == nil && versionMatches(v, want) {
				return candidate, v, nil
			}
		}
	}
	if hostErr != nil {
		return "", "", wharf.Errorf(wharf.EUNAVAILABLE, "no Python interpreter on this server: %s: %v", host, hostErr)
	}
	if want != "" {
		fmt.Fprintf(log, "wharf: WARNING: Python %s was requested but is not installed on this server; using the server's Python %s (%s) instead\n", want, hostVersion, hostPath)
	}
	return hostPath, hostVersion, nil
}

func versionMatches(have, want string) bool {
	return have == want || strings.HasPrefix(have, want+".")
}

// candidates lists interpreters that may be version want, best first.
func candidates(ctx context.Context, want, uv string) []string {
	var out []string
	if p, err := exec.LookPath("python" + want); err == nil {
		out = append(out, p)
	}
	// pyenv installs versions side by side but its shims only run the
	// selected one, so look at the installations themselves.
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if root != "" {
		if dirs, err := filepath.Glob(filepath.Join(root, "versions", want+"*")); err == nil {
			sort.Slice(dirs, func(i, j int) bool { return newerVersion(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
			for _, d := range dirs {
				base := filepath.Base(d)
				if base == want || strings.HasPrefix(base, want+".") {
					out = append(out, filepath.Join(d, "bin", "python"+want), filepath.Join(d, "bin", "python3"))
				}
			}
		}
	}
	if uv != "" {
		cmd := exec.CommandContext(ctx, uv, "python", "find", want)
		cmd.Env = append(os.Environ(), "UV_PYTHON_DOWNLOADS=never")
		if outb, err := cmd.Output(); err == nil {
			if p := strings.TrimSpace(string(outb)); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// newerVersion orders dotted version strings numerically, newest first.
func newerVersion(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, errA := strconv.Atoi(pa[i])
		nb, errB := strconv.Atoi(pb[i])
		if errA != nil || errB != nil {
			if pa[i] != pb[i] {
				return pa[i] > pb[i]
			}
			continue
		}
		if na != nb {
			return na > nb
		}
	}
	return len(pa) > len(pb)
}

// probe returns the major.minor version of the interpreter at path.
func probe(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-c", `import sys; print("%d.%d" % sys.version_info[:2])`)
	cmd.Env = buildEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s does not run: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildEnv is the environment of the commands that find and ask the host's
// interpreters their version (none runs an environment's packages): the
// server's, without variables that would make Python act on another
// environment.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "UV_PYTHON":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// passedToBuilds are the server's variables a build gets, besides PIP_* and
// UV_* settings: what finds programs, the locale, the way out to a package
// index (proxies) and the certificates to trust there.
var passedToBuilds = map[string]bool{
	"PATH": true, "LANG": true, "LC_ALL": true, "LC_CTYPE": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true, "ALL_PROXY": true,
	"http_proxy": true, "https_proxy": true, "no_proxy": true, "all_proxy": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "REQUESTS_CA_BUNDLE": true,
}

// notPassedToBuilds are PIP_* and UV_* settings a build does not get: they
// would install somewhere else than the environment, read the server's
// configuration files or use another cache than the build's.
var notPassedToBuilds = map[string]bool{
	"PIP_TARGET": true, "PIP_PREFIX": true, "PIP_USER": true, "PIP_ROOT": true, "PIP_REQUIRE_VIRTUALENV": true,
	"PIP_CACHE_DIR": true, "PIP_NO_CACHE_DIR": true, "PIP_CONFIG_FILE": true, "PIP_LOG": true, "PIP_SRC": true,
	"UV_PYTHON": true, "UV_CACHE_DIR": true, "UV_NO_CACHE": true, "UV_CONFIG_FILE": true, "UV_NO_CONFIG": true,
	"UV_PROJECT_ENVIRONMENT": true, "UV_SYSTEM_PYTHON": true, "UV_PYTHON_INSTALL_DIR": true, "UV_TOOL_DIR": true,
}

// fromServer reports whether builds get the server's variable name.
func fromServer(name string) bool {
	pkg := strings.HasPrefix(name, "PIP_") || strings.HasPrefix(name, "UV_")
	return passedToBuilds[name] || pkg && !notPassedToBuilds[name]
}

// buildEnviron is the whole environment of a build's commands. It is not
// the server's: only the variables of passedToBuilds and the admin's PIP_*
// and UV_* settings (index URLs, --only-binary policy...) are kept, so a
// package's build code sees none of the server's secrets. HOME and TMPDIR
// are the build's own, the installers' caches are under CacheDir, and
// prompts and version nags are off since nobody can answer them.
func buildEnviron(home, tmp, cache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); fromServer(name) {
			env = append(env, kv)
		}
	}
	if os.Getenv("UV_LINK_MODE") == "" {
		// The build's folder and the cache are separate mounts in a
		// sandbox, between which no hard link can be made; copying also
		// keeps a finished environment from sharing files with the
		// cache that later builds write.
		env = append(env, "UV_LINK_MODE=copy")
	}
	return append(env,
		"HOME="+home,
		"TMPDIR="+tmp,
		"PIP_CACHE_DIR="+filepath.Join(cache, "pip"),
		"UV_CACHE_DIR="+filepath.Join(cache, "uv"),
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"PYTHONUNBUFFERED=1",
		"UV_PYTHON_DOWNLOADS=never",
		"UV_NO_PROGRESS=1",
	)
}

// run runs one build command, through the Runner when there is one, with
// its output going to log, and on failure returns an error quoting the
// tool's last meaningful lines.
func (b *Builder) run(ctx context.Context, log io.Writer, step string, bc wharf.BuildCommand, name string, args ...string) error {
	fmt.Fprintf(log, "$ %s %s\n", name, strings.Join(args, " "))
	tail := &tailBuffer{max: 16 << 10}
	out := io.MultiWriter(log, tail)
	bc.Argv = append([]string{name}, args...)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = bc.Env, bc.Dir
	if b.Runner != nil {
		isolated, err := b.Runner.BuildCommand(bc)
		if err != nil {
			return fmt.Errorf("pyenv: %w", err)
		}
		cmd.Path, cmd.Args, cmd.Env, cmd.Dir, cmd.Stdin = isolated.Path, isolated.Args, isolated.Env, isolated.Dir, isolated.Stdin
	}
	cmd.Stdout = out
	cmd.Stderr = out
	// pip runs build backends as subprocesses; they go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	detail := lastLines(tail.String())
	if detail == "" {
		detail = err.Error()
	}
	return wharf.Errorf(wharf.EINVALID, "building the Python environment failed (%s: %v):\n%s", step, err, detail)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// lastLines picks the part of a build tool's output that explains a
// failure: pip's "ERROR:" lines if there are any (what comes before them is
// progress), else uv's last "error:" line and what follows it (its causes),
// else the last few non-empty lines.
func lastLines(output string) string {
	const keep = 8
	var meaningful, errorLines []string
	uvError := -1
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimRight(line, "\r \t")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "[notice]") {
			continue
		}
		if strings.HasPrefix(line, "ERROR:") {
			errorLines = append(errorLines, line)
		}
		if strings.HasPrefix(line, "error:") {
			uvError = len(meaningful)
		}
		meaningful = append(meaningful, line)
	}
	switch {
	case len(errorLines) > 0:
		meaningful = errorLines
	case uvError >= 0:
		meaningful = meaningful[uvError:]
	}
	if len(meaningful) > keep {
		meaningful = meaningful[len(meaningful)-keep:]
	}
	return strings.Join(meaningful, "\n")
}

// lockFile takes an exclusive flock on path, calling waiting once if it has
// to wait. flock locks belong to the open file, so they exclude goroutines of
// one process as well as other processes, and the kernel drops them if the
// holder dies. Polling rather than blocking lets ctx end the wait.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pyenv: open lock: %w", err)
	}
	pause := 10 * time.Millisecond
	for first := true; ; first = false {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("pyenv: lock %s: %w", path, err)
		}
		if first && waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		if pause < 500*time.Millisecond {
			pause *= 2
		}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
