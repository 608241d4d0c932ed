package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/output"
	"github.com/wharfml/wharf/snapshot"
)

// modelSpec is the az ml model YAML.
type modelSpec struct {
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	Path        string            `yaml:"path"`
	Type        string            `yaml:"type"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
	Properties  map[string]string `yaml:"properties"`
	Stage       any               `yaml:"stage"`
	JobName     string            `yaml:"job_name"`
}

func modelsPath(ws string) string { return "/api/v1/workspaces/" + url.PathEscape(ws) + "/models" }

func artifactURL(ws, p string) string {
	return "/mlflow/v1.0/workspaces/" + url.PathEscape(ws) + "/api/2.0/mlflow-artifacts/artifacts/" + escapePath(p)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// registerModel uploads a local model file or folder and registers it as a
// new version of m.Name; the type defaults to mlflow_model for a folder
// with an MLmodel file.
func (a *app) registerModel(cmd *cobra.Command, c *wharfhttp.Client, ws string, m modelSpec, local string) (map[string]any, error) {
	st, err := os.Stat(local)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "model path %s: %s", local, err.Error()).WithField("path")
	}
	if m.Type == "" {
		m.Type = localModelType(local, st)
	}
	abs, err := filepath.Abs(local)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	// The model's path ends in the name of the folder or file it was
	// registered from, which a deployment's model folder keeps
	// (AZUREML_MODEL_DIR/model/...), as Azure ML's does.
	dir := "models/" + m.Name + "/" + hex.EncodeToString(id[:])
	root := dir + "/" + filepath.Base(abs)
	if !st.IsDir() {
		root = dir // the file is uploaded under its own name
	}
	if err := a.uploadTree(cmd, c, ws, local, root); err != nil {
		return nil, err
	}
	body := map[string]any{"version": m.Version, "type": strings.ToLower(m.Type), "path": "mlflow-artifacts:/" + dir + "/" + filepath.Base(abs),
		"description": m.Description, "tags": m.Tags, "job_name": m.JobName}
	var out map[string]any
	if err := c.Do(cmd.Context(), "POST", modelsPath(ws)+"/"+url.PathEscape(m.Name)+"/versions", body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// localModelType is the type of a model registered from local without
// one: an MLflow model when it is a folder with an MLmodel file.
func localModelType(local string, st os.FileInfo) string {
	if _, err := os.Stat(filepath.Join(local, "MLmodel")); err == nil && st.IsDir() {
		return wharf.ModelTypeMLflow
	}
	return wharf.ModelTypeCustom
}

// registerOrReuseModel registers local as a version of m.Name unless a
// version of that name already holds the same files (same folder name,
// same contents, same type): that one is reused, as Azure reuses an
// inline model that is created again. A version named in m that exists
// with other files is an error, since a version never changes.
func (a *app) registerOrReuseModel(cmd *cobra.Command, c *wharfhttp.Client, ws string, m modelSpec, local string) (map[string]any, error) {
	st, err := os.Stat(local)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "model path %s: %s", local, err.Error()).WithField("path")
	}
	if m.Type == "" {
		m.Type = localModelType(local, st)
	}
	digest, err := snapshot.ModelContentDigest(local)
	if err != nil {
		return nil, err
	}
	var versions []map[string]any
	if err := c.Do(cmd.Context(), "GET", modelsPath(ws)+"?name="+url.QueryEscape(m.Name), nil, &versions); err != nil {
		return nil, err
	}
	for _, v := range versions {
		same := v["content_digest"] == digest && v["type"] == strings.ToLower(m.Type)
		switch {
		case m.Version != "" && fmt.Sprint(v["version"]) == m.Version && same:
			return v, nil
		case m.Version != "" && fmt.Sprint(v["version"]) == m.Version:
			return nil, wharf.Errorf(wharf.ECONFLICT, "model %s version %s already exists with other files; a version never changes: give the model another version, or none to take the next", m.Name, m.Version).WithField("model.version")
		case m.Version == "" && same:
			return v, nil // the newest identical version: they are listed newest first
		}
	}
	return a.registerModel(cmd, c, ws, m, local)
}

func (a *app) modelCommand() *cobra.Command {
	model := &cobra.Command{Use: "model", Short: "Models (one registry with the mlflow client)"}
	var w wsFlags
	var spec modelSpec
	var file string
	var sets, tags []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Upload a model folder or file and register it as a new version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			var m modelSpec
			base := ""
			if file != "" {
				doc, err := loadYAML(file, sets, &m)
				if err != nil {
					return err
				}
				base = doc.Dir()
			} else if len(sets) > 0 {
				return usagef("--set needs --file")
			}
			fl := cmd.Flags()
			over := func(flag, v string, dst *string) {
				if fl.Changed(flag) {
					*dst = v
				}
			}
			over("name", spec.Name, &m.Name)
			over("version", spec.Version, &m.Version)
			over("path", spec.Path, &m.Path)
			over("type", spec.Type, &m.Type)
			over("description", spec.Description, &m.Description)
			if t, err := parseTags(tags); err != nil {
				return err
			} else if t != nil {
				m.Tags = t
			}
			if m.Name == "" || m.Path == "" {
				return usagef("--name and --path are required (or name: and path: in --file)")
			}
			local := m.Path
			if base != "" && !filepath.IsAbs(local) && !fl.Changed("path") {
				local = filepath.Join(base, local)
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			out, err := a.registerModel(cmd, c, ws, m, local)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f := create.Flags()
	f.StringVarP(&spec.Name, "name", "n", "", "model name")
	f.StringVarP(&spec.Version, "version", "v", "", "version (default: the next one)")
	f.StringVarP(&spec.Path, "path", "p", "", "local model folder or file")
	f.StringVar(&spec.Type, "type", "", "mlflow_model or custom_model (default: mlflow_model when the folder has an MLmodel file)")
	f.StringVarP(&spec.Description, "description", "d", "", "description")
	f.StringVarP(&file, "file", "f", "", "model YAML")
	f.StringArrayVar(&sets, "set", nil, "override a YAML field")
	f.StringArrayVar(&tags, "tags", nil, "tags KEY=VALUE")
	w.add(create)

	var name, version, label, dest string
	list := &cobra.Command{
		Use:   "list",
		Short: "List models (latest versions), or every version of --name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			p := modelsPath(ws)
			if name != "" {
				p += "?name=" + url.QueryEscape(name)
			}
			return a.getAndPrint(cmd, p)
		},
	}
	list.Flags().StringVarP(&name, "name", "n", "", "list every version of this model")
	w.add(list)

	versionOf := func() (string, error) {
		switch {
		case version != "" && label != "":
			return "", usagef("pass --version or --label, not both")
		case version != "":
			return version, nil
		case label == "latest":
			return "latest", nil
		case label != "":
			return "", usagef("--label supports only \"latest\"")
		}
		return "", usagef("--version or --label latest is required")
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a model version with its lineage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			v, err := versionOf()
			if err != nil {
				return err
			}
			return a.getAndPrint(cmd, modelsPath(ws)+"/"+url.PathEscape(name)+"/versions/"+url.PathEscape(v))
		},
	}
	show.Flags().StringVarP(&name, "name", "n", "", "model name")
	show.Flags().StringVarP(&version, "version", "v", "", "version")
	show.Flags().StringVarP(&label, "label", "l", "", "\"latest\"")
	_ = show.MarkFlagRequired("name")
	w.add(show)

	download := &cobra.Command{
		Use:   "download",
		Short: "Download a model version's files into DOWNLOAD_PATH/NAME",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			v, err := versionOf()
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var listing struct {
				Root  string `json:"root"`
				Files []struct {
					Path string `json:"path"`
					Size int64  `json:"size"`
				} `json:"files"`
			}
			if err := c.Do(cmd.Context(), "GET", modelsPath(ws)+"/"+url.PathEscape(name)+"/versions/"+url.PathEscape(v)+"/files", nil, &listing); err != nil {
				return err
			}
			out := filepath.Join(dest, name)
			var total, done int64
			for _, f := range listing.Files {
				total += f.Size
			}
			for i, f := range listing.Files {
				target := filepath.Join(out, filepath.FromSlash(f.Path))
				if !strings.HasPrefix(target, filepath.Clean(out)+string(filepath.Separator)) {
					return fmt.Errorf("refusing to write %q outside %s", f.Path, out)
				}
				if err := downloadFile(cmd, c, artifactURL(ws, listing.Root+"/"+f.Path), target); err != nil {
					return err
				}
				done += f.Size
				fmt.Fprintf(a.stderr, "\rDownloading %s: %d/%d files, %s/%s", name, i+1, len(listing.Files), output.Bytes(done), output.Bytes(total))
			}
			if len(listing.Files) > 0 {
				fmt.Fprintln(a.stderr)
			}
			return nil
		},
	}
	download.Flags().StringVarP(&name, "name", "n", "", "model name")
	download.Flags().StringVarP(&version, "version", "v", "", "version")
	download.Flags().StringVarP(&label, "label", "l", "", "\"latest\"")
	download.Flags().StringVarP(&dest, "download-path", "p", ".", "folder to download into")
	_ = download.MarkFlagRequired("name")
	w.add(download)

	model.AddCommand(create, list, show, download)
	return model
}

// uploadTree streams every file under local (or local itself) to the
// artifact store under root, with a progress line on stderr. A folder is
// listed by snapshot.Files, so a link inside it uploads its target's
// content and a link out of it fails the upload, naming the link.
func (a *app) uploadTree(cmd *cobra.Command, c *wharfhttp.Client, ws, local, root string) error {
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	files := []snapshot.LocalFile{{Path: filepath.Base(local), Real: local}}
	if st.IsDir() {
		if files, err = snapshot.Files(local); err != nil {
			return err
		}
	}
	var total int64
	for _, f := range files {
		if info, err := os.Stat(f.Real); err == nil {
			total += info.Size()
		}
	}
	var done int64
	prog := a.newProgress("Uploading", total)
	for i, f := range files {
		n, err := uploadFile(cmd.Context(), c, artifactURL(ws, root+"/"+f.Path), f.Real)
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.Path, err)
		}
		done += n
		prog.update(done, fmt.Sprintf("%d/%d files, ", i+1, len(files)))
	}
	if len(files) > 0 {
		prog.done(done, fmt.Sprintf("%d/%d files, ", len(files), len(files)))
	}
	return nil
}

// uploadFile sends one file with the size it has once open, so a file
// that changed since it was listed cannot send a length that its body
// contradicts.
func uploadFile(ctx context.Context, c *wharfhttp.Client, path, file string) (int64, error) {
	fh, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	return info.Size(), c.Upload(ctx, path, fh, info.Size())
}

func downloadFile(cmd *cobra.Command, c *wharfhttp.Client, path, target string) error {
	body, err := c.Download(cmd.Context(), path)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp := target + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("download %s: %w", filepath.Base(target), err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}
