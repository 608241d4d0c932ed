package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestReleaseBuildStampsVersion builds this machine's release archive with
// scripts/release, checks it against checksums.txt, and runs the binary in
// it: `wharf version` and `--version` report the stamped version, commit
// and date, and the binary is static (no cgo, no ELF interpreter).
func TestReleaseBuildStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	const version, commit, date = "1.2.3-rc.1", "0123456789abcdef0123456789abcdef01234567", "2026-12-07T01:02:03Z"
	releases, bin := buildRelease(t, version, commit, date)

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("release binary built with %v", settings)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("release binary is dynamically linked (has an ELF interpreter)")
			}
		}
	}

	env := append(os.Environ(), "WHARF_CONFIG_DIR="+t.TempDir())
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = env
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("wharf %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(run("version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if v["wharf"] != version || v["commit"] != commit || v["date"] != date {
		t.Errorf("wharf version: %v", v)
	}
	if got, want := run("--version"), "wharf "+version+" (commit "+commit+", built "+date+")\n"; got != want {
		t.Errorf("wharf --version: %q, want %q", got, want)
	}

	t.Run("CIInstallers", func(t *testing.T) { testCIInstallers(t, releases, version) })
}

// TestReleaseBinaryRunsTheQuickstart runs the quickstart as the README's
// first command does, through scripts/run, but with a release build's
// binary (WHARF_BIN) in place of a fresh build: the server it starts runs
// the pipeline's steps with that same binary.
func TestReleaseBinaryRunsTheQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	const version = "0.4.2"
	_, bin := buildRelease(t, version, "89abcdef0123456789abcdef0123456789abcdef", "2026-12-07T04:05:06Z")
	b, err := exec.Command(bin, "version", "--query", "wharf", "-o", "tsv").CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != version {
		t.Fatalf("wharf version: %v %q, want %s", err, b, version)
	}

	dir := t.TempDir()
	example := filepath.Join(dir, "taxi")
	copyTree(t, filepath.Join(repoRoot(t), "examples", "taxi"), example)
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "run"), "--exit", "--addr", "127.0.0.1:0", "--example", example, "--rows", "20000")
	cmd.Env = cleanEnv("HOME="+dir, "WHARF_BIN="+bin, "WHARF_DATA_DIR="+filepath.Join(dir, "data"), "WHARF_CONFIG_DIR="+filepath.Join(dir, "cli"))
	b, err = cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if strings.Contains(out, "building bin/wharf") || !strings.Contains(out, "==> using "+bin+" (wharf "+version+" ") {
		t.Errorf("scripts/run did not use the release binary:\n%s", out)
	}
	for _, want := range []string{"Acting as service principal ", "[prep_data]", "[train_model]", "[evaluate_model]", "[register_model]",
		"A new version of taxi-model was registered", "Batch predictions: ", "\nDone in ", "Wharf is running at http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out)
		}
	}
	preds := restOfLine(out, "Batch predictions: ")
	if b, err := os.ReadFile(preds); err != nil || strings.Count(string(b), "\n") < 2 {
		t.Errorf("batch predictions %s: %v\n%s", preds, err, b)
	}
}

// buildRelease builds this machine's release archive with scripts/release,
// stamped with version (without its v), commit and date, and checks it
// against checksums.txt. It returns the folder laid out as a release's
// downloads, RELEASE-URL/vVERSION/, and the wharf binary unpacked from the
// archive.
func buildRelease(t *testing.T, version, commit, date string) (releases, bin string) {
	t.Helper()
	releases = t.TempDir()
	out := filepath.Join(releases, "v"+version)
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "release"), "--host", "--out", out)
	cmd.Env = append(os.Environ(), "VERSION=v"+version, "COMMIT="+commit, "DATE="+date)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release --host: %v\n%s", err, b)
	}
	name := "wharf_" + version + "_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	sums, err := os.ReadFile(filepath.Join(out, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(filepath.Join(out, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Fatalf("checksums.txt:\n%s\nwant:\n%s", sums, want)
	}
	bin = filepath.Join(t.TempDir(), "wharf")
	extract(t, archive, "wharf", bin)
	return releases, bin
}

// TestReleasePlatformsCompile cross-compiles cmd/wharf as the release
// does for every platform it ships but this machine's (whose build the test
// above runs): code for Linux alone (mounts, parent-death signals) must
// keep a build for the others.
func TestReleasePlatformsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the release")
	}
	for _, p := range releasePlatforms(t) {
		goos, goarch, _ := strings.Cut(p, "/")
		if goos == runtime.GOOS && goarch == runtime.GOARCH {
			continue
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", os.DevNull, "github.com/wharfml/wharf/cmd/wharf")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", p, err, b)
		}
	}
}

// releasePlatforms are the OS/ARCH pairs scripts/release builds.
func releasePlatforms(t *testing.T) []string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "release"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^PLATFORMS=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/release has no PLATFORMS")
	}
	return strings.Fields(string(m[1]))
}

// extract writes the archive's member name to path.
func extract(t *testing.T, archive []byte, name, path string) {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("archive has no %s", name)
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Name != name {
			continue
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// TestGoReleaserConfigMatchesReleaseScript keeps .goreleaser.yaml and
// scripts/release building the same thing, and go.mod fit for `go install
// github.com/wharfml/wharf/cmd/wharf@VERSION` (that refuses a module with
// replace directives).
func TestGoReleaserConfigMatchesReleaseScript(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int
		Builds  []struct {
			Main    string
			Env     []string
			Flags   []string
			Ldflags []string
			Goos    []string
			Goarch  []string
			Ignore  []struct{ Goos, Goarch string }
		}
		Archives []struct {
			Formats      []string
			NameTemplate string `yaml:"name_template"`
		}
		Checksum struct {
			NameTemplate string `yaml:"name_template"`
			Algorithm    string
		}
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf(".goreleaser.yaml: want version 2, one build, one archive: %+v", cfg)
	}
	bd := cfg.Builds[0]
	if bd.Main != "./cmd/wharf" || !slices.Contains(bd.Env, "CGO_ENABLED=0") || !slices.Contains(bd.Flags, "-trimpath") {
		t.Errorf("build: %+v", bd)
	}
	ld := strings.Join(bd.Ldflags, " ")
	for _, v := range []string{"Version", "Commit", "BuildDate"} {
		if !strings.Contains(ld, "-X github.com/wharfml/wharf."+v+"=") {
			t.Errorf("ldflags do not stamp %s: %s", v, ld)
		}
	}
	var platforms []string
	for _, goos := range bd.Goos {
		for _, arch := range bd.Goarch {
			if !slices.Contains(bd.Ignore, struct{ Goos, Goarch string }{goos, arch}) {
				platforms = append(platforms, goos+"/"+arch)
			}
		}
	}
	scripted := releasePlatforms(t)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "release"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(platforms)
	slices.Sort(scripted)
	if !slices.Equal(platforms, scripted) || !slices.Equal(scripted, []string{"darwin/arm64", "linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms: .goreleaser.yaml %v, scripts/release %v", platforms, scripted)
	}
	for _, want := range []string{"-s -w -X $PKG.Version=$VERSION -X $PKG.Commit=$COMMIT -X $PKG.BuildDate=$DATE", "PKG=github.com/wharfml/wharf", "wharf_${VERSION}_${os}_${arch}", "checksums.txt"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/release lacks %q", want)
		}
	}
	a := cfg.Archives[0]
	if !slices.Equal(a.Formats, []string{"tar.gz"}) || a.NameTemplate != "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}" ||
		cfg.Checksum.NameTemplate != "checksums.txt" || cfg.Checksum.Algorithm != "sha256" {
		t.Errorf("archives %+v, checksum %+v", a, cfg.Checksum)
	}

	mod, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	sc := bufio.NewScanner(mod)
	sc.Scan()
	if sc.Text() != "module github.com/wharfml/wharf" {
		t.Errorf("go.mod begins %q", sc.Text())
	}
	for sc.Scan() {
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "replace") {
			t.Errorf("go.mod has %q: go install MODULE@VERSION refuses a module with replace directives", sc.Text())
		}
	}
}
