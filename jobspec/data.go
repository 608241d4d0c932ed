package jobspec

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// DataSpec is a data asset definition (data.schema.json).
type DataSpec struct {
	Name        string
	Version     string
	Description string
	Tags        map[string]string
	// Type is uri_file, uri_folder (default) or mltable.
	Type string
	// Source says where the data lives; a local path is absolute.
	Source DataRef
	Pos    Position
}

// DataRef says where data comes from: exactly one of Asset, Datastore,
// LocalPath and URL is set.
type DataRef struct {
	Type string
	Mode string
	// Asset is a registered data (or, for model types, model) asset.
	Asset *AssetRef
	// Datastore is an azureml://datastores/... location.
	Datastore *DatastoreURI
	// LocalPath is an absolute local file or folder, uploaded at submit.
	LocalPath string
	// URL is an http(s), wasbs, abfss or adl location.
	URL string
}

// String renders the location the way it would be written in YAML.
func (d DataRef) String() string {
	switch {
	case d.Asset != nil:
		return d.Asset.String()
	case d.Datastore != nil:
		return d.Datastore.String()
	case d.LocalPath != "":
		return d.LocalPath
	}
	return d.URL
}

type rawData struct {
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
	Type        string            `yaml:"type"`
	Path        *yaml.Node        `yaml:"path"`
}

// LoadData reads a data asset YAML file, applying --set overrides.
//
// With no path the asset is given by sets alone (`--name --path --type`
// on the command line, as `az ml data create` allows); a relative local
// path is then relative to the working folder.
func LoadData(path string, sets []string) (*DataSpec, error) {
	errs := &problems{}
	doc := loadOrFlags(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return DataFromDocument(doc)
}

// FlagsSource names, in messages, an asset given by flags without a file.
const FlagsSource = "(command line)"

// loadOrFlags reads the YAML file at path with sets applied, or, with no
// path, makes the document from the sets alone, as az builds an asset
// from --name, --path and the like; relative paths in it are relative to
// the working directory.
func loadOrFlags(path string, sets []string, errs *problems) *yamlfile.Document {
	if path != "" {
		return loadDocument(path, sets, errs)
	}
	doc, err := yamlfile.Parse(FlagsSource, []byte("{}"))
	if err != nil {
		errs.add(err)
		return nil
	}
	applySets(doc, sets, errs)
	if len(errs.list) > 0 {
		return nil
	}
	return doc
}

// DataFromDocument reads a data asset from an already parsed (and
// overridden) document.
func DataFromDocument(doc *yamlfile.Document) (*DataSpec, error) {
	errs := &problems{}
	s := scope{doc, errs}
	var raw rawData
	s.decode(doc.Root, "", &raw)
	d := &DataSpec{Name: raw.Name, Version: raw.Version, Description: raw.Description, Tags: raw.Tags,
		Type: raw.Type, Pos: s.position(doc.Root, "")}
	if d.Type == "" {
		d.Type = TypeURIFolder
	}
	switch {
	case d.Name == "":
		s.fail(doc.Root, "name", "name is required")
	case !assetNameRe.MatchString(d.Name):
		s.fail(doc.Node("name"), "name", "invalid name %q (letters, digits, '-', '_' and '.', starting with a letter or digit)", d.Name)
	}
	switch d.Type {
	case TypeURIFile, TypeURIFolder, TypeMLTable:
	default:
		s.fail(doc.Node("type"), "type", "type must be uri_file, uri_folder or mltable, got %q", d.Type)
	}
	if raw.Path == nil || isNull(raw.Path) {
		s.fail(doc.Root, "path", "path is required")
	} else if raw.Path.Kind != yaml.ScalarNode {
		s.fail(raw.Path, "path", "path must be a string")
	} else if ref, ok := s.dataLocation(raw.Path, "path", d.Type, false); ok {
		if ref.Asset != nil {
			s.fail(raw.Path, "path", "a data asset's path must be a local path or a storage URI, not an asset reference")
		}
		ref.Type = d.Type
		d.Source = ref
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// dataLocation classifies a data path: asset reference, datastore URI, URL
// or local path (made absolute and checked against the type). It reports
// false after recording a problem.
func (s scope) dataLocation(n *yaml.Node, field, typ string, allowAsset bool) (DataRef, bool) {
	p := localFromFileURI(strings.TrimSpace(n.Value))
	ref := DataRef{Type: typ}
	switch {
	case p == "":
		s.fail(n, field, "path is empty")
		return ref, false
	case IsDatastoreURI(p):
		u, err := ParseDatastoreURI(p)
		if err != nil {
			s.fail(n, field, "%v", err)
			return ref, false
		}
		ref.Datastore = &u
	case strings.HasPrefix(p, "azureml:"):
		if !allowAsset {
			s.fail(n, field, "%q: expected a local path or a storage URI", p)
			return ref, false
		}
		a, err := ParseAssetRef(p)
		if err != nil {
			s.fail(n, field, "%v", err)
			return ref, false
		}
		ref.Asset = &a
	case isURL(p):
		ref.URL = p
	case strings.Contains(p, "://"):
		s.fail(n, field, "unsupported URI %q (use azureml://datastores/..., http(s), wasbs, abfss or adl)", p)
		return ref, false
	default:
		abs, ok := s.localPath(n, field, p)
		if !ok {
			return ref, false
		}
		ref.LocalPath = abs
		if msg := checkLocal(ref.LocalPath, typ); msg != "" {
			s.fail(n, field, "%s", msg)
			return ref, false
		}
	}
	return ref, true
}

// localFromFileURI reads a file URI as the local path it names, as
// Azure's CLI does: file:///abs/path and file:/abs/path are /abs/path,
// file://data and file:data are data, relative to the YAML file. Anything else is
// returned as it is.
func localFromFileURI(p string) string {
	if rest, ok := strings.CutPrefix(p, "file://"); ok && rest != "" {
		return rest
	}
	if rest, ok := strings.CutPrefix(p, "file:"); ok && rest != "" {
		return rest
	}
	return p
}

// checkLocal verifies a local path exists and fits the data type, so a typo
// fails at submit rather than when the job starts.
func checkLocal(p, typ string) string {
	if strings.ContainsAny(p, "*?[") {
		return ""
	}
	st, err := os.Stat(p)
	if err != nil {
		return "local path " + p + " does not exist"
	}
	switch typ {
	case TypeURIFile:
		if st.IsDir() {
			return "local path " + p + " is a folder but the type is uri_file"
		}
	case TypeURIFolder:
		if !st.IsDir() {
			return "local path " + p + " is a file but the type is uri_folder"
		}
	case TypeMLTable:
		if !st.IsDir() {
			return "local path " + p + " must be a folder containing an MLTable file"
		}
		if _, err := os.Stat(filepath.Join(p, "MLTable")); err != nil {
			return "folder " + p + " has no MLTable file (required for type mltable)"
		}
	case TypeMLflowModel:
		if st.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "MLmodel")); err != nil {
				return "folder " + p + " has no MLmodel file (required for type mlflow_model)"
			}
		}
	}
	return ""
}

// FetchURL is the https (or http) URL a data path given as a URL is read
// from when a step runs: http(s) URLs as written, and Azure blob URIs,
// wasb(s)://<container>@<account>.blob.core.windows.net/<path> and
// abfs(s)://<container>@<account>.dfs.core.windows.net/<path>, as the
// public blob URL https://<account>.blob.core.windows.net/<container>/<path>.
func FetchURL(p string) (string, error) {
	u, err := url.Parse(p)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid URL: %v", p, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", fmt.Errorf("%q has no host", p)
		}
		return p, nil
	case "wasb", "wasbs", "abfs", "abfss":
		container, host := u.User.Username(), u.Hostname()
		account, suffix, ok := strings.Cut(host, ".")
		if u.User == nil || container == "" || !ok || account == "" {
			return "", fmt.Errorf("%q: expected %s://<container>@<account>.<host>/<path>", p, strings.ToLower(u.Scheme))
		}
		if rest, ok := strings.CutPrefix(strings.ToLower(suffix), "dfs."); ok {
			suffix = "blob." + rest
		}
		out := url.URL{Scheme: "https", Host: account + "." + suffix, Path: "/" + container + "/" + strings.TrimPrefix(u.Path, "/"),
			RawQuery: u.RawQuery}
		return out.String(), nil
	}
	return "", fmt.Errorf("%s cannot be read by this server; use an https:// URL, a data asset or an azureml://datastores/ path", p)
}
