package wharf

import (
	"context"
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
