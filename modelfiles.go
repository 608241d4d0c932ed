package wharf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// ModelStore is what resolving a model version's files needs.
type ModelStore interface {
	TrackingService
	RegistryService
}

// ModelLocation resolves a version's source to where its files can be
// fetched: runs:/<run>/<path> becomes the run's artifact URI plus the
// path, models:/m-<id> the logged model's artifact URI; any other URI is
// already a location (mlflow-artifacts:/..., s3://...).
func ModelLocation(ctx context.Context, s ModelStore, workspace string, v *ModelVersion) (string, error) {
	src := v.Source
	switch {
	case strings.HasPrefix(src, "runs:/"):
		rest := strings.TrimLeft(strings.TrimPrefix(src, "runs:/"), "/")
		runID, sub, _ := strings.Cut(rest, "/")
		if runID == "" {
			return "", Errorf(EINVALID, "model version source %q names no run", src)
		}
		run, err := s.FindRun(ctx, workspace, runID)
		if err != nil {
			return "", err
		}
		if sub = strings.Trim(sub, "/"); sub == "" {
			return run.ArtifactURI, nil
		}
		return strings.TrimRight(run.ArtifactURI, "/") + "/" + sub, nil
	case strings.HasPrefix(src, "models:/m-"):
		id, _, _ := strings.Cut(strings.TrimPrefix(src, "models:/"), "/")
		m, err := s.FindLoggedModel(ctx, workspace, id)
		if err != nil {
			return "", err
		}
		return m.ArtifactURI, nil
	}
	return src, nil
}

// ModelDirPath returns where a file of a model version sits in a
// deployment's model folder (AZUREML_MODEL_DIR), laid out as Azure ML lays
// out a registered model: root is the artifact path of the version's files
// (its location without the scheme) and p the file's artifact path. The
// files of a model registered from a folder keep that folder, named after
// root's last segment (AZUREML_MODEL_DIR/model/MLmodel); a model
// registered from a single file is that file, directly in the model folder
// (AZUREML_MODEL_DIR/model.pkl). Scoring scripts written for Azure join
// these paths themselves, or take the one folder below the model folder.
func ModelDirPath(root, p string) string {
	root = strings.Trim(root, "/")
	base := root[strings.LastIndex(root, "/")+1:]
	rel := strings.Trim(strings.TrimPrefix(p, root), "/")
	switch {
	case rel == "":
		return base
	case base == "":
		return rel
	}
	return base + "/" + rel
}

// ModelFile is one file of a model version: its path in the deployment's
// model folder (see ModelDirPath) and its content digest ("sha256:<hex>").
type ModelFile struct {
	Path   string
	Digest string
}

// ModelContentDigest identifies a model's files: their paths, including
// the folder the model was registered from (which a deployment's model
// folder keeps), and their contents. Registering the same files again,
// from the same folder name, gives the same digest, whatever the order
// they were listed or uploaded in.
func ModelContentDigest(files []ModelFile) string {
	sorted := append([]ModelFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	h := sha256.New()
	for _, f := range sorted {
		h.Write([]byte(f.Path))
		h.Write([]byte{0})
		h.Write([]byte(f.Digest))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
