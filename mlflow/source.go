package mlflow

import (
	"context"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// A model version's source is checked as MLflow's server checks it
// (handlers.py, _create_model_version): a local path is refused unless it
// lies in the artifact directory of the run (or logged model) named with
// it, which a Wharf run's mlflow-artifacts: location never is; a path
// with ".." or other relative parts is refused; a runs:/, models:/ or
// mlflow-artifacts source must lie within the run or logged model the
// request names. Each refusal is MLflow's INVALID_PARAMETER_VALUE with
// MLflow's words.

// pyURL is a URI split as Python's urllib.parse.urlsplit splits it, which
// is what MLflow's checks see; Go's url.Parse refuses or reads
// differently some of the inputs they must judge.
type pyURL struct {
	scheme, netloc, path string
}

var (
	schemeRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*$`)
	slashesRE = regexp.MustCompile(`/+`)
)

func splitURL(s string) pyURL { return splitURLFragments(s, true) }

// splitURLFragments splits s; without fragments, '#' is part of the path,
// as in model URIs.
func splitURLFragments(s string, fragments bool) pyURL {
	var u pyURL
	if i := strings.IndexByte(s, ':'); i > 0 && schemeRE.MatchString(s[:i]) {
		u.scheme, s = strings.ToLower(s[:i]), s[i+1:]
	}
	if strings.HasPrefix(s, "//") {
		s = s[2:]
		end := strings.IndexAny(s, "/?#")
		if end < 0 {
			end = len(s)
		}
		u.netloc, s = s[:end], s[end:]
	}
	if i := strings.IndexByte(s, '#'); fragments && i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	u.path = s
	return u
}

// hostname is the host of the netloc, lowercased, as Python's hostname.
func (u pyURL) hostname() string {
	h := u.netloc
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return strings.ToLower(h[1:i])
		}
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(h)
}

// unquote decodes %XX escapes, and with plus '+' as a space, leaving
// malformed escapes as they are, as Python's unquote and unquote_plus do.
func unquote(s string, plus bool) string {
	if plus {
		s = strings.ReplaceAll(s, "+", " ")
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unquoteAll unquotes until nothing changes.
func unquoteAll(s string, plus bool) string {
	for {
		u := unquote(s, plus)
		if u == s {
			return s
		}
		s = u
	}
}

// isLocalURI is MLflow's is_local_uri: a path without a scheme, or a
// file: URI, which must not name a remote host.
func isLocalURI(s string) (bool, error) {
	u := splitURL(s)
	switch u.scheme {
	case "":
		return true, nil
	case "file":
		if h := u.hostname(); h != "" && h != "." && !strings.HasPrefix(h, "localhost") && !strings.HasPrefix(h, "127.0.0.1") {
			return false, wharf.Errorf(wharf.EINVALID, "%s is not a valid remote uri. For remote access on windows, please consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).", s)
		}
		return true, nil
	}
	return false, nil
}

// localPath is the path a local source names: file: URIs lose their
// scheme and host, and the path is made absolute and clean, as MLflow
// resolves it before naming it in its refusal.
func localPath(s string) string {
	u := splitURL(s)
	p := s
	if u.scheme == "file" {
		p = unquote(u.path, false)
	}
	if !strings.HasPrefix(p, "/") {
		return p
	}
	return path.Clean(p)
}

func invalidSource(format string, a ...any) error {
	return wharf.Errorf(wharf.EINVALID, format, a...).WithField("source")
}

// errSourceOwner is MLflow's refusal of a source that is not within the
// run (idName "run_id") or logged model ("model_id") of the request.
func errSourceOwner(source, idName string) error {
	return invalidSource("Invalid model version source: '%s'. The %s request parameter must identify the resource that contains the source.", source, idName)
}

// checkNoRelativeParts is MLflow's
// _validate_non_local_source_contains_relative_paths: once fully
// unquoted, the source's path must hold no ".." part, no NUL, and be the
// absolute, clean path it resolves to.
func checkNoRelativeParts(source string) error {
	bad := invalidSource("Invalid model version source: '%s'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.", source)
	s := unquoteAll(source, true)
	p := slashesRE.ReplaceAllString(strings.TrimRight(splitURL(s).path, "/"), "/")
	if strings.Contains(p, "\x00") {
		return bad
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return bad
		}
	}
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return bad
	}
	return nil
}

// uriParts is a URI as MLflow's _normalized_uri_parts compares them.
func uriParts(s string) (scheme, authority string, parts []string) {
	u := splitURL(s)
	for _, p := range strings.Split(u.path, "/") {
		if p != "" {
			parts = append(parts, unquoteAll(p, false))
		}
	}
	return u.scheme, strings.ToLower(u.netloc), parts
}

// withinRoot reports whether source lies at or below root.
func withinRoot(source, root string) bool {
	ss, sa, sp := uriParts(source)
	rs, ra, rp := uriParts(root)
	if ss != rs || sa != ra || len(rp) == 0 || len(sp) < len(rp) {
		return false
	}
	for i := range rp {
		if sp[i] != rp[i] {
			return false
		}
	}
	return true
}

// isArtifactProxySource reports whether source names the artifact proxy:
// an mlflow-artifacts URI, or an http(s) URL through its route.
func isArtifactProxySource(source string) bool {
	scheme, _, parts := uriParts(source)
	if scheme == "mlflow-artifacts" {
		return true
	}
	if scheme != "http" && scheme != "https" {
		return false
	}
	route := []string{"api", "2.0", "mlflow-artifacts", "artifacts"}
	for i := 0; i+len(route) <= len(parts); i++ {
		if strings.Join(parts[i:i+len(route)], "/") == strings.Join(route, "/") {
			return true
		}
	}
	return false
}

// modelURI is a models:/ URI parsed as MLflow's _parse_model_uri parses
// it: a logged model's id, or a registered model's name with a version, a
// stage, an alias or nothing (its latest version).
type modelURI struct {
	modelID, name, version, stage, alias string
}

func parseModelURI(s string) (modelURI, bool) {
	u := splitURLFragments(s, false)
	p := u.path
	if u.scheme != "models" || !strings.HasPrefix(p, "/") || len(p) <= 1 {
		return modelURI{}, false
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	if len(parts) > 2 || strings.TrimSpace(parts[0]) == "" {
		return modelURI{}, false
	}
	if len(parts) == 2 {
		name, suffix := parts[0], parts[1]
		switch {
		case strings.TrimSpace(suffix) == "":
			return modelURI{}, false
		case isDigits(suffix):
			return modelURI{name: name, version: suffix}, true
		case strings.EqualFold(suffix, "latest"):
			return modelURI{name: name}, true
		}
		return modelURI{name: name, stage: suffix}, true
	}
	if strings.Contains(p, "@") {
		i := strings.LastIndexByte(parts[0], '@')
		if i < 0 || strings.TrimSpace(parts[0][i+1:]) == "" {
			return modelURI{}, false
		}
		return modelURI{name: parts[0][:i], alias: parts[0][i+1:]}, true
	}
	return modelURI{modelID: parts[0]}, true
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// resolveSourceLineage is MLflow's _resolve_registered_model_source_lineage:
// a source naming a registered model version (by number, stage, alias or
// as the latest) becomes models:/<name>/<number>, and the new version
// inherits the run and logged model of that version unless the request
// names its own, which must then be the same.
func (h *Handler) resolveSourceLineage(ctx context.Context, ws string, v *wharf.ModelVersion, hasRunID, hasModelID bool) error {
	u := splitURL(v.Source)
	if u.scheme != "models" {
		return nil
	}
	if u.netloc != "" {
		return invalidSource("Invalid model version source: '%s'. Registered model sources must use the active model registry.", v.Source)
	}
	ref, ok := parseModelURI(v.Source)
	if !ok {
		return errSourceOwner(v.Source, "model_id")
	}
	if ref.modelID != "" {
		return nil
	}
	if _, err := h.Store.FindRegisteredModel(ctx, ws, ref.name); err != nil {
		return err
	}
	var src *wharf.ModelVersion
	var err error
	switch {
	case ref.version != "":
		n, perr := strconv.ParseInt(ref.version, 10, 64)
		if perr != nil {
			return errSourceOwner(v.Source, "model_id")
		}
		src, err = h.Store.FindModelVersion(ctx, ws, ref.name, n)
	case ref.alias != "":
		src, err = h.Store.FindModelVersionByAlias(ctx, ws, ref.name, ref.alias)
	default:
		var stages []string
		if ref.stage != "" {
			st, serr := canonicalStage("source", ref.stage)
			if serr != nil {
				return serr
			}
			stages = []string{st}
		}
		var vs []*wharf.ModelVersion
		vs, err = h.Store.LatestModelVersions(ctx, ws, ref.name, stages)
		if err == nil {
			for _, cand := range vs {
				if src == nil || cand.Version > src.Version {
					src = cand
				}
			}
			if src == nil {
				err = wharf.Errorf(wharf.ENOTFOUND, "No versions of model with name '%s' and stage '%s' found", ref.name, ref.stage)
			}
		}
	}
	if err != nil {
		return err
	}
	if (hasRunID && v.RunID != src.RunID) || (hasModelID && v.ModelID != src.ModelID) {
		return invalidSource("Invalid model version source: '%s'. The run_id and model_id request parameters must match the referenced model version.", v.Source)
	}
	v.Source = "models:/" + ref.name + "/" + strconv.FormatInt(src.Version, 10)
	if !hasRunID {
		v.RunID = src.RunID
	}
	if !hasModelID {
		v.ModelID = src.ModelID
	}
	return nil
}

// checkSourceOwner checks that v's source lies within the logged model
// its ModelID names, or, without one, within the run its RunID names:
// MLflow's _validate_source_model and _validate_source_run.
func (h *Handler) checkSourceOwner(ctx context.Context, ws string, v *wharf.ModelVersion) error {
	source, idName, id := v.Source, "run_id", v.RunID
	if v.ModelID != "" {
		idName, id = "model_id", v.ModelID
	}
	// root finds the artifact location of the run or logged model; a
	// missing one makes the source not its.
	root := func() (string, error) {
		if idName == "model_id" {
			m, err := h.Store.FindLoggedModel(ctx, ws, id)
			if wharf.IsNotFound(err) {
				return "", errSourceOwner(source, idName)
			}
			if err != nil {
				return "", err
			}
			return m.ArtifactURI, nil
		}
		r, err := h.Store.FindRun(ctx, ws, id)
		if wharf.IsNotFound(err) {
			return "", errSourceOwner(source, idName)
		}
		if err != nil {
			return "", err
		}
		return r.ArtifactURI, nil
	}
	local, err := isLocalURI(source)
	if err != nil {
		return err
	}
	if local {
		shown := source
		if id != "" {
			// MLflow looks the owner up first, and names the resolved
			// path; Wharf's artifact locations are never local paths, so
			// no local source is within them.
			if _, err := root(); err != nil {
				return err
			}
			shown = localPath(source)
		}
		what := "run specified by the " + idName
		return invalidSource("Invalid model version source: '%s'. To use a local path as a model version source, the %s request parameter has to be specified and the local path has to be contained within the artifact directory of the %s.", shown, idName, what)
	}
	if err := checkNoRelativeParts(source); err != nil {
		return err
	}
	u := splitURL(source)
	switch u.scheme {
	case "runs":
		if idName == "model_id" || u.netloc != "" {
			return errSourceOwner(source, idName)
		}
		runID, _, _ := strings.Cut(strings.TrimLeft(u.path, "/"), "/")
		if id != "" && runID == id {
			return nil
		}
		return errSourceOwner(source, "run_id")
	case "models":
		if u.netloc != "" {
			return errSourceOwner(source, "model_id")
		}
		ref, ok := parseModelURI(source)
		if !ok {
			return errSourceOwner(source, "model_id")
		}
		if ref.modelID != "" {
			if idName == "model_id" && ref.modelID == id {
				return nil
			}
			return errSourceOwner(source, "model_id")
		}
	}
	if isArtifactProxySource(source) {
		if id != "" {
			r, err := root()
			if err != nil {
				return err
			}
			if withinRoot(source, r) {
				return nil
			}
		}
		return errSourceOwner(source, idName)
	}
	return nil
}

// downloadURI is where MLflow's registry says a version's files are: a
// logged model's artifact location for models:/<model_id>, the location
// of the version a models:/<name>/<n> source names, and the source itself
// otherwise (a runs:/ URI included, which the client resolves).
func (h *Handler) downloadURI(ctx context.Context, ws string, v *wharf.ModelVersion) (string, error) {
	for range 10 {
		ref, ok := parseModelURI(v.Source)
		if !ok {
			return v.Source, nil
		}
		if ref.modelID != "" {
			m, err := h.Store.FindLoggedModel(ctx, ws, ref.modelID)
			if err != nil {
				return "", err
			}
			return m.ArtifactURI, nil
		}
		n, err := strconv.ParseInt(ref.version, 10, 64)
		if err != nil {
			return v.Source, nil
		}
		if v, err = h.Store.FindModelVersion(ctx, ws, ref.name, n); err != nil {
			return "", err
		}
	}
	return "", wharf.Errorf(wharf.EINVALID, "model version source %q names versions too deep to follow", v.Source)
}
