package main

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/snapshot"
)

func assetsPath(ws, kind string) string {
	return "/api/v1/workspaces/" + url.PathEscape(ws) + "/" + kind
}

// assetBody is what the CLI posts to create an asset version.
type assetBody struct {
	Version     string            `json:"version,omitempty"`
	Spec        any               `json:"spec"`
	Digest      string            `json:"digest,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// createFlags are the flags of every `az ml <resource> create`.
type createFlags struct {
	wsFlags
	file, name, version string
	sets                []string
	fields              []fieldFlag
	// fileOptional lets flags alone define the asset, as az allows for
	// data assets.
	fileOptional bool
}

// fieldFlag is a flag that overrides one YAML field.
type fieldFlag struct {
	key   string
	value *string
}

func (f *createFlags) add(cmd *cobra.Command) {
	f.wsFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "YAML file")
	fl.StringVarP(&f.name, "name", "n", "", "name (overrides the YAML's)")
	fl.StringVarP(&f.version, "version", "v", "", "version (overrides the YAML's; default: the next one)")
	fl.StringArrayVar(&f.sets, "set", nil, "override a YAML field: --set key.path=value")
}

// field adds a flag that overrides the YAML field key.
func (f *createFlags) field(cmd *cobra.Command, flag, short, key, usage string) {
	v := new(string)
	cmd.Flags().StringVarP(v, flag, short, "", usage)
	f.fields = append(f.fields, fieldFlag{key, v})
}

// overrides turns --name, --version and the field flags into --set
// overrides, so they are checked by the same rules as the file.
func (f *createFlags) overrides() []string {
	sets := append([]string{}, f.sets...)
	if f.name != "" {
		sets = append(sets, "name="+f.name)
	}
	if f.version != "" {
		sets = append(sets, "version="+f.version)
	}
	for _, fl := range f.fields {
		if *fl.value != "" {
			sets = append(sets, fl.key+"="+*fl.value)
		}
	}
	return sets
}

// begin checks --file and returns the workspace and an API client.
func (f *createFlags) begin(a *app) (string, *wharfhttp.Client, error) {
	if f.file == "" && !f.fileOptional {
		return "", nil, usagef("--file is required")
	}
	ws, err := a.workspaceName(f.workspace)
	if err != nil {
		return "", nil, err
	}
	c, _, err := a.client()
	if err != nil {
		return "", nil, err
	}
	return ws, c, nil
}

// assetReadCommands adds list and show for an asset kind.
func (a *app) assetReadCommands(parent *cobra.Command, kind, noun string) {
	var w wsFlags
	var name string
	list := &cobra.Command{
		Use:   "list",
		Short: "List " + noun + "s (latest versions), or every version of --name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			p := assetsPath(ws, kind)
			if name != "" {
				p += "/" + url.PathEscape(name) + "/versions"
			}
			return a.getAndPrint(cmd, p)
		},
	}
	list.Flags().StringVarP(&name, "name", "n", "", "list every version of this "+noun)
	w.add(list)

	var sw wsFlags
	var sname, version, label string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a " + noun + " version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(sw.workspace)
			if err != nil {
				return err
			}
			v, err := versionOrLabel(version, label)
			if err != nil {
				return err
			}
			return a.getAndPrint(cmd, assetsPath(ws, kind)+"/"+url.PathEscape(sname)+"/versions/"+url.PathEscape(v))
		},
	}
	show.Flags().StringVarP(&sname, "name", "n", "", noun+" name")
	show.Flags().StringVarP(&version, "version", "v", "", "version")
	show.Flags().StringVarP(&label, "label", "l", "", "\"latest\" (the default without --version)")
	_ = show.MarkFlagRequired("name")
	sw.add(show)
	parent.AddCommand(list, show)
}

// versionOrLabel is the version a show command's --version or --label
// asks for: the version, or wharf.LatestVersion for --label latest or
// neither.
func versionOrLabel(version, label string) (string, error) {
	switch {
	case version != "" && label != "":
		return "", usagef("pass --version or --label, not both")
	case label != "" && label != wharf.LatestVersion:
		return "", usagef("--label supports only \"latest\"")
	case version == "":
		return wharf.LatestVersion, nil
	}
	return version, nil
}

// uploadLocal stores a local file or folder in the workspace's content
// store, showing progress on stderr, and returns its digest, its kind
// (file or folder), and its size and file count.
func (a *app) uploadLocal(ctx context.Context, c *wharfhttp.Client, ws, path, what string) (digest, kind string, size int64, files int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", 0, 0, wharf.Errorf(wharf.EINVALID, "%s %s: %s", what, path, unwrapPathErr(err))
	}
	var sent int64
	var prog *progress
	blobs := &wharfhttp.BlobClient{Client: c, Workspace: ws}
	blobs.Progress = func(n int64) {
		sent += n
		prog.update(sent, "")
	}
	defer func() {
		if err == nil {
			prog.done(sent, "")
		}
	}()
	if !st.IsDir() {
		prog = a.newProgress("Uploading "+what, st.Size())
		f, err := os.Open(path)
		if err != nil {
			return "", "", 0, 0, err
		}
		defer f.Close()
		d, n, err := blobs.Put(ctx, f)
		return d, "file", n, 1, err
	}
	m, err := snapshot.Take(path)
	if err != nil {
		return "", "", 0, 0, err
	}
	prog = a.newProgress("Uploading "+what, m.Size())
	if err := snapshot.Upload(ctx, m, path, blobs); err != nil {
		return "", "", 0, 0, err
	}
	return m.Digest, "folder", m.Size(), len(m.Files), nil
}

// uploadCode uploads a component's code folder with its additional
// includes laid beside its files, and returns the folder's digest.
func (a *app) uploadCode(ctx context.Context, c *wharfhttp.Client, ws, code string, includes []string) (string, error) {
	if len(includes) == 0 {
		digest, _, _, _, err := a.uploadLocal(ctx, c, ws, code, "code")
		return digest, err
	}
	tmp, err := os.MkdirTemp("", "wharf-code-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, filepath.Base(code))
	if err := snapshot.Gather(dir, code, includes); err != nil {
		return "", err
	}
	digest, _, _, _, err := a.uploadLocal(ctx, c, ws, dir, "code")
	return digest, err
}

func unwrapPathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// localUploadURI is where uploaded content shows in an asset's path, in
// the azureml://datastores form users know.
func localUploadURI(digest, path string) string {
	hexPart := strings.TrimPrefix(digest, "sha256:")
	if len(hexPart) > 32 {
		hexPart = hexPart[:32]
	}
	return "azureml://datastores/workspaceblobstore/paths/LocalUpload/" + hexPart + "/" + filepath.Base(path)
}
