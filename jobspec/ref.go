package jobspec

import (
	"fmt"
	"regexp"
	"strings"
)

// RefForm says how an asset reference was written; callers may accept some
// forms only (a server without registries rejects RefRegistry).
type RefForm string

// Reference forms.
const (
	// RefShort is azureml:<name>:<version>, azureml:<name>@<label> or
	// <name>:<version> without the prefix.
	RefShort RefForm = "short"
	// RefARM is the Azure Resource Manager id of a workspace asset.
	RefARM RefForm = "arm"
	// RefRegistry is azureml://registries/<reg>/<kind>/<name>/versions/<v>.
	RefRegistry RefForm = "registry"
	// RefFile is file:<relative.yml>, a component defined in a local file.
	RefFile RefForm = "file"
)

// AssetKind names a kind of registered asset as it appears in ARM ids.
type AssetKind string

// Asset kinds.
const (
	AssetData        AssetKind = "data"
	AssetEnvironment AssetKind = "environments"
	AssetComponent   AssetKind = "components"
	AssetModel       AssetKind = "models"
	AssetCode        AssetKind = "codes"
)

// AssetRef is a parsed reference to a registered asset (or, for components,
// to a local file).
type AssetRef struct {
	// Raw is the text as written.
	Raw  string
	Form RefForm
	// Kind is the asset kind named inside ARM and registry forms; empty for
	// the short and file forms, where the context decides.
	Kind    AssetKind
	Name    string
	Version string
	// Label is set instead of Version for name@label; "latest" means the
	// most recently created version.
	Label string
	// Registry is set for the registry form.
	Registry string
	// Subscription, ResourceGroup and Workspace are set for the ARM form.
	Subscription, ResourceGroup, Workspace string
	// Path is the file named by the file form, as written.
	Path string
}

// IsLatest reports whether the reference asks for the newest version.
func (r AssetRef) IsLatest() bool { return r.Version == "" && r.Label == "latest" }

// String renders the reference in its shortest unambiguous form.
func (r AssetRef) String() string {
	switch r.Form {
	case RefFile:
		return "file:" + r.Path
	case RefRegistry:
		if r.Label != "" {
			return fmt.Sprintf("azureml://registries/%s/%s/%s/labels/%s", r.Registry, r.Kind, r.Name, r.Label)
		}
		return fmt.Sprintf("azureml://registries/%s/%s/%s/versions/%s", r.Registry, r.Kind, r.Name, r.Version)
	}
	if r.Label != "" {
		return "azureml:" + r.Name + "@" + r.Label
	}
	return "azureml:" + r.Name + ":" + r.Version
}

var (
	assetNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)
	versionRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)
	labelRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	resourceRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$`)
)

// parseComponentRef reads a step's component reference, where a YAML
// file may also be named by its bare path (./train.yml, the form Azure's
// samples use), not only as file:train.yml.
func parseComponentRef(s string) (AssetRef, error) {
	text := strings.TrimSpace(s)
	if isBareFile(text) {
		return AssetRef{Raw: s, Form: RefFile, Path: text}, nil
	}
	return ParseAssetRef(s)
}

// isBareFile reports whether a reference is a path to a YAML file rather
// than an asset name: it starts like a path or ends like a YAML file, and
// has no azureml: prefix or URI scheme.
func isBareFile(text string) bool {
	if strings.HasPrefix(text, "azureml:") || strings.Contains(text, "://") || strings.HasPrefix(text, "file:") {
		return false
	}
	lower := strings.ToLower(text)
	return strings.HasPrefix(text, "./") || strings.HasPrefix(text, "../") || strings.HasPrefix(text, "/") ||
		strings.HasSuffix(lower, ".yml") || strings.HasSuffix(lower, ".yaml")
}

// ParseAssetRef parses an asset reference in any of the forms az ml
// accepts: azureml:<name>:<version>, azureml:<name>@<label>, <name>:<version>,
// the ARM long form azureml:/subscriptions/.../workspaces/<ws>/<kind>/<name>/versions/<v>,
// the registry form azureml://registries/<reg>/<kind>/<name>/versions/<v>, and
// file:<path> for components.
func ParseAssetRef(s string) (AssetRef, error) {
	ref := AssetRef{Raw: s}
	text := strings.TrimSpace(s)
	switch {
	case text == "":
		return ref, fmt.Errorf("empty asset reference")
	case strings.HasPrefix(text, "file:"):
		ref.Form = RefFile
		ref.Path = strings.TrimPrefix(strings.TrimPrefix(text, "file:"), "//")
		if ref.Path == "" {
			return ref, fmt.Errorf("%q names no file", s)
		}
		return ref, nil
	case strings.HasPrefix(text, "azureml://registries/"):
		return parseRegistryRef(ref, strings.TrimPrefix(text, "azureml://registries/"))
	case strings.HasPrefix(text, "azureml://"):
		return ref, fmt.Errorf("%q is a storage URI, not an asset reference (expected azureml:<name>:<version> or azureml:<name>@latest)", s)
	case strings.HasPrefix(text, "azureml:/"):
		return parseARMRef(ref, strings.TrimPrefix(text, "azureml:"))
	case strings.HasPrefix(strings.ToLower(text), "/subscriptions/"):
		return parseARMRef(ref, text)
	case strings.Contains(text, "://"):
		return ref, fmt.Errorf("%q is a URI, not an asset reference (expected azureml:<name>:<version> or azureml:<name>@latest)", s)
	}
	ref.Form = RefShort
	body := strings.TrimPrefix(text, "azureml:")
	if name, label, ok := strings.Cut(body, "@"); ok {
		ref.Name, ref.Label = name, label
		if !labelRe.MatchString(label) {
			return ref, fmt.Errorf("%q: invalid label %q", s, label)
		}
	} else if name, version, ok := strings.Cut(body, ":"); ok {
		ref.Name, ref.Version = name, version
		if !versionRe.MatchString(version) {
			return ref, fmt.Errorf("%q: invalid version %q", s, version)
		}
	} else if isBareFile(body) || strings.Contains(body, "/") {
		return ref, fmt.Errorf("%q is a path, which is not a reference to a registered asset here (expected azureml:<name>:<version> or azureml:<name>@latest)", s)
	} else {
		return ref, fmt.Errorf("%q names no version: write azureml:%s:<version> or azureml:%s@latest", s, body, body)
	}
	if !assetNameRe.MatchString(ref.Name) {
		return ref, fmt.Errorf("%q: invalid asset name %q (letters, digits, '-', '_' and '.', starting with a letter or digit)", s, ref.Name)
	}
	return ref, nil
}

func parseRegistryRef(ref AssetRef, rest string) (AssetRef, error) {
	ref.Form = RefRegistry
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || (parts[3] != "versions" && parts[3] != "labels") {
		return ref, fmt.Errorf("%q: expected azureml://registries/<registry>/<kind>/<name>/versions/<version>", ref.Raw)
	}
	ref.Registry, ref.Kind, ref.Name = parts[0], AssetKind(parts[1]), parts[2]
	if parts[3] == "versions" {
		ref.Version = parts[4]
	} else {
		ref.Label = parts[4]
	}
	if !resourceRe.MatchString(ref.Registry) || !assetNameRe.MatchString(ref.Name) || !versionRe.MatchString(parts[4]) {
		return ref, fmt.Errorf("%q: invalid registry, name or version", ref.Raw)
	}
	if !knownKind(ref.Kind) {
		return ref, fmt.Errorf("%q: unknown asset kind %q", ref.Raw, ref.Kind)
	}
	return ref, nil
}

// parseARMRef reads
// /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>/<kind>/<name>/versions/<v>.
func parseARMRef(ref AssetRef, id string) (AssetRef, error) {
	ref.Form = RefARM
	parts := strings.Split(strings.Trim(id, "/"), "/")
	bad := fmt.Errorf("%q: expected azureml:/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<workspace>/<kind>/<name>/versions/<version>", ref.Raw)
	if len(parts) != 12 ||
		!strings.EqualFold(parts[0], "subscriptions") ||
		!strings.EqualFold(parts[2], "resourceGroups") ||
		!strings.EqualFold(parts[4], "providers") ||
		!strings.EqualFold(parts[5], "Microsoft.MachineLearningServices") ||
		!strings.EqualFold(parts[6], "workspaces") ||
		!strings.EqualFold(parts[10], "versions") {
		return ref, bad
	}
	ref.Subscription, ref.ResourceGroup, ref.Workspace = parts[1], parts[3], parts[7]
	ref.Kind, ref.Name, ref.Version = AssetKind(strings.ToLower(parts[8])), parts[9], parts[11]
	if !knownKind(ref.Kind) {
		return ref, fmt.Errorf("%q: unknown asset kind %q", ref.Raw, parts[8])
	}
	if !assetNameRe.MatchString(ref.Name) || !versionRe.MatchString(ref.Version) {
		return ref, bad
	}
	return ref, nil
}

func knownKind(k AssetKind) bool {
	switch k {
	case AssetData, AssetEnvironment, AssetComponent, AssetModel, AssetCode:
		return true
	}
	return false
}

// ParseResourceRef returns the name in a compute or datastore reference:
// azureml:<name>, a bare <name>, or an ARM id whose last segment is the name.
func ParseResourceRef(s string) (string, error) {
	text := strings.TrimSpace(s)
	body := strings.TrimPrefix(text, "azureml:")
	if strings.HasPrefix(body, "/") {
		parts := strings.Split(strings.Trim(body, "/"), "/")
		if len(parts) < 10 || !strings.EqualFold(parts[0], "subscriptions") {
			return "", fmt.Errorf("%q: expected azureml:<name> or an ARM resource id", s)
		}
		body = parts[len(parts)-1]
	}
	if !resourceRe.MatchString(body) {
		return "", fmt.Errorf("%q: expected azureml:<name> where the name uses letters, digits, '-' and '_'", s)
	}
	return body, nil
}

// DatastoreURI is a parsed azureml://datastores/<ds>/paths/<p> URI.
type DatastoreURI struct {
	Datastore string
	// Path is relative to the datastore root, without a leading slash; it
	// may hold globs (**) and server-side expressions such as ${{name}}.
	Path string
}

// String renders the short azureml://datastores form.
func (u DatastoreURI) String() string {
	return "azureml://datastores/" + u.Datastore + "/paths/" + u.Path
}

// IsDatastoreURI reports whether s is written as a datastore URI (short or
// workspace-qualified form).
func IsDatastoreURI(s string) bool {
	return strings.HasPrefix(s, "azureml://datastores/") || strings.HasPrefix(s, "azureml://subscriptions/")
}

// ParseDatastoreURI parses azureml://datastores/<ds>/paths/<p> and the
// workspace-qualified form
// azureml://subscriptions/<s>/resourcegroups/<rg>/workspaces/<ws>/datastores/<ds>/paths/<p>.
func ParseDatastoreURI(s string) (DatastoreURI, error) {
	rest, ok := strings.CutPrefix(s, "azureml://")
	bad := fmt.Errorf("%q: expected azureml://datastores/<datastore>/paths/<path>", s)
	if !ok {
		return DatastoreURI{}, bad
	}
	if strings.HasPrefix(rest, "subscriptions/") {
		i := strings.Index(rest, "/datastores/")
		if i < 0 {
			return DatastoreURI{}, bad
		}
		rest = rest[i+1:]
	}
	rest, ok = strings.CutPrefix(rest, "datastores/")
	if !ok {
		return DatastoreURI{}, bad
	}
	ds, p, ok := strings.Cut(rest, "/paths")
	if !ok || ds == "" || (p != "" && !strings.HasPrefix(p, "/")) {
		return DatastoreURI{}, bad
	}
	if strings.Contains(ds, "/") {
		return DatastoreURI{}, bad
	}
	return DatastoreURI{Datastore: ds, Path: strings.TrimPrefix(p, "/")}, nil
}

// urlSchemes are the storage URI schemes a data path may use directly.
var urlSchemes = []string{"http://", "https://", "wasb://", "wasbs://", "abfs://", "abfss://", "adl://"}

// isURL reports whether s is a plain storage or web URL (not azureml:).
func isURL(s string) bool {
	lower := strings.ToLower(s)
	for _, p := range urlSchemes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}
