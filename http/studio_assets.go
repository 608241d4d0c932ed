package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/tabular"
)

// assetPageTitles names the asset kinds' pages.
var assetPageTitles = map[string]string{
	wharf.AssetData:        "Data",
	wharf.AssetEnvironment: "Environments",
	wharf.AssetComponent:   "Components",
}

// assetRow is one asset name in a list, with its newest version.
type assetRow struct {
	*wharf.Asset
	// Summary says what the version is: a data asset's type and path, an
	// environment's image, a component's type.
	Summary string
}

func (s *Server) pageAssets(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.newStudioPage(r, assetPageTitles[kind], kind)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		as, err := s.Store.ListAssets(r.Context(), p.Workspace, kind, "")
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		as = wharf.NamedAssets(as)
		rows := make([]assetRow, len(as))
		for i, a := range as {
			rows[i] = assetRow{Asset: a, Summary: assetSummary(a)}
		}
		p.Data = rows
		s.renderStudio(w, r, http.StatusOK, "assets", p)
	}
}

// assetSummary is the line an asset list shows for a version.
func assetSummary(a *wharf.Asset) string {
	var spec map[string]any
	_ = json.Unmarshal(a.Spec, &spec)
	str := func(k string) string { v, _ := spec[k].(string); return v }
	switch a.Kind {
	case wharf.AssetData:
		return strings.TrimSpace(str("type") + " " + str("path"))
	case wharf.AssetEnvironment:
		if img := str("image"); img != "" {
			return img
		}
		if _, ok := spec["build"]; ok {
			return "built from a context"
		}
		return "conda or pip specification"
	}
	return str("type")
}

// assetView is the page of one asset name and one of its versions.
type assetView struct {
	Kind     string
	Name     string
	Versions []*wharf.Asset
	Version  *wharf.Asset
	// YAML is the version's definition as the CLI's YAML has it.
	YAML    string
	Preview *dataPreview
}

// dataPreview is the head of a data asset's first table file.
type dataPreview struct {
	File    string
	Columns []string
	Rows    [][]string
	// Note says why there is no preview, or what it leaves out.
	Note string
}

// previewRows is how many rows a data preview shows.
const previewRows = 20

func (s *Server) pageAsset(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, err := s.newStudioPage(r, "", kind)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		name := r.PathValue("name")
		vs, err := s.Store.ListAssets(ctx, p.Workspace, kind, name)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		if len(vs) == 0 {
			s.writeStudioError(w, r, wharf.Errorf(wharf.ENOTFOUND, "%s %q not found in workspace %s", strings.TrimSuffix(kind, "s"), name, p.Workspace))
			return
		}
		v := &assetView{Kind: kind, Name: name, Versions: vs, Version: vs[0]}
		if want := r.URL.Query().Get("version"); want != "" {
			if v.Version, err = s.Store.FindAsset(ctx, p.Workspace, kind, name, want); err != nil {
				s.writeStudioError(w, r, err)
				return
			}
		}
		v.YAML = specYAML(v.Version.Spec)
		if kind == wharf.AssetData {
			v.Preview = s.previewData(ctx, v.Version)
		}
		p.Title, p.Data = assetPageTitles[kind]+": "+name, v
		s.renderStudio(w, r, http.StatusOK, "asset", p)
	}
}

// specYAML shows a stored definition (JSON) as YAML.
func specYAML(spec json.RawMessage) string {
	var doc any
	if err := json.Unmarshal(spec, &doc); err != nil {
		return string(spec)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return string(spec)
	}
	return string(b)
}

// Data previews read at most previewCSVBytes of a CSV file and only
// Parquet files up to previewParquetBytes, whose footer, at the end,
// must be read first.
const (
	previewCSVBytes     = 256 << 10
	previewParquetBytes = 256 << 20
)

// previewData reads the first rows of a data asset's file, or of the
// first CSV or Parquet file of its folder.
func (s *Server) previewData(ctx context.Context, a *wharf.Asset) *dataPreview {
	var spec resolve.DataAsset
	_ = json.Unmarshal(a.Spec, &spec)
	if a.Digest == "" || s.Blobs == nil {
		return &dataPreview{Note: "No preview: the asset names a location whose content is resolved when a job runs."}
	}
	digest, file := a.Digest, spec.FileName
	if file == "" {
		file = path.Base(spec.Path)
	}
	if spec.Kind == "folder" {
		m, err := snapshot.Load(ctx, a.Digest, s.Blobs)
		if err != nil {
			return &dataPreview{Note: "No preview: " + wharf.ErrorMessage(err)}
		}
		digest = ""
		for _, f := range m.Files {
			switch strings.ToLower(path.Ext(f.Path)) {
			case ".csv", ".parquet", ".pq":
				digest, file = f.Digest, f.Path
			}
			if digest != "" {
				break
			}
		}
		if digest == "" {
			return &dataPreview{Note: "No preview: the folder holds no CSV or Parquet file."}
		}
	}
	if p, ok := previews.get(digest, file); ok {
		return p
	}
	p, err := s.readPreview(ctx, digest, file)
	if err != nil {
		return &dataPreview{File: file, Note: "No preview: " + wharf.ErrorMessage(err)}
	}
	previews.put(digest, file, p)
	return p
}

// previewCache keeps the previews of recently viewed files. Content is
// stored by digest and never changes, so a preview never goes stale.
type previewCache struct {
	mu    sync.Mutex
	byKey map[string]*dataPreview
	order []string
}

// previewsKept bounds the cache: a preview is at most 20 rows.
const previewsKept = 256

var previews = &previewCache{byKey: map[string]*dataPreview{}}

func (c *previewCache) get(digest, file string) (*dataPreview, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.byKey[digest+" "+file]
	return p, ok
}

func (c *previewCache) put(digest, file string, p *dataPreview) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := digest + " " + file
	if _, ok := c.byKey[k]; ok {
		return
	}
	if len(c.order) == previewsKept {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	c.byKey[k] = p
	c.order = append(c.order, k)
}

func (s *Server) readPreview(ctx context.Context, digest, file string) (*dataPreview, error) {
	size, err := s.Blobs.Stat(ctx, digest)
	if err != nil {
		return nil, err
	}
	ext := strings.ToLower(path.Ext(file))
	parquet := ext == ".parquet" || ext == ".pq"
	if parquet && size > previewParquetBytes {
		return &dataPreview{File: file, Note: "No preview: the Parquet file is larger than 256 MiB."}, nil
	}
	dir, err := os.MkdirTemp("", "wharf-preview-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if !parquet {
		ext = ".csv"
	}
	local := filepath.Join(dir, "data"+ext)
	truncated, err := s.copyHead(ctx, digest, local, parquet)
	if err != nil {
		return nil, err
	}
	rd, err := tabular.Open(local, tabular.Options{BatchRows: previewRows, BadRow: func(int64, error) {}})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	out := &dataPreview{File: file, Columns: rd.Columns()}
	fr, err := rd.Next()
	if errors.Is(err, io.EOF) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	for i := 0; i < fr.Len; i++ {
		row := make([]string, len(fr.Columns))
		for c := range fr.Columns {
			row[c] = fr.Value(c, i)
		}
		out.Rows = append(out.Rows, row)
	}
	if truncated && len(out.Rows) < previewRows {
		out.Note = "The preview read the first 256 KiB of the file."
	}
	return out, nil
}

// copyHead writes a blob to path: whole for Parquet, else its first
// previewCSVBytes cut at the last whole line. It reports whether it cut.
func (s *Server) copyHead(ctx context.Context, digest, path string, whole bool) (bool, error) {
	rc, _, err := s.Blobs.Open(ctx, digest)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if whole {
		f, err := os.Create(path)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, rc); err != nil {
			f.Close()
			return false, err
		}
		return false, f.Close()
	}
	b, err := io.ReadAll(io.LimitReader(rc, previewCSVBytes+1))
	if err != nil {
		return false, err
	}
	cut := len(b) > previewCSVBytes
	if cut {
		b = b[:previewCSVBytes]
		if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
			b = b[:i+1]
		}
	}
	return cut, os.WriteFile(path, b, 0o600)
}
