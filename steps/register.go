package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// RegisterConfig is one run of RegisterModel (`wharf register model`).
type RegisterConfig struct {
	ModelName string
	ModelPath string // the model folder to register
	// EvaluationOutput is the evaluate step's output folder: deploy_flag,
	// and metrics.json for the metrics and reason to register with.
	EvaluationOutput string
	ModelInfoOutput  string // folder model_info.json is written to
	Tracking         *Tracking
}

// ModelInfo is what RegisterModel writes as model_info.json.
type ModelInfo struct {
	ID         string             `json:"id,omitempty"` // NAME:VERSION, as the Azure template writes it
	Name       string             `json:"name"`
	Version    string             `json:"version,omitempty"`
	Registered bool               `json:"registered"`
	RunID      string             `json:"run_id,omitempty"`
	Source     string             `json:"source,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Reason     string             `json:"reason"`
}

// ErrNoTracking is RegisterModel's answer outside a job: registering
// goes through the job's tracking server, so that the version records the
// step's run as its lineage.
var ErrNoTracking = wharf.Errorf(wharf.EINVALID, "registering needs the job's tracking server (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID); run this as a job step")

// RegisterModel registers the model folder under the model name, with the
// evaluation's metrics as tags and the step's run as lineage, only when
// the evaluation's deploy_flag is 1; either way it writes
// model_info.json. The model's files are uploaded as the run's "model"
// artifact first. What it did goes to log.
func RegisterModel(ctx context.Context, cfg RegisterConfig, log io.Writer) (*ModelInfo, error) {
	log = orDiscard(log)
	flagPath := filepath.Join(cfg.EvaluationOutput, "deploy_flag")
	flag, err := os.ReadFile(flagPath)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: no deploy_flag file (is it the evaluate step's output?): %v", cfg.EvaluationOutput, pathErr(err))
	}
	info := &ModelInfo{Name: cfg.ModelName, Metrics: map[string]float64{}}
	if b, err := os.ReadFile(filepath.Join(cfg.EvaluationOutput, "metrics.json")); err == nil {
		var ev Evaluation
		if err := json.Unmarshal(b, &ev); err == nil {
			c := ev.Candidate
			info.Metrics = map[string]float64{"r2": c.R2, "mse": c.MSE, "rmse": c.RMSE, "mae": c.MAE}
			info.Reason = ev.Reason
		}
	}
	if err := os.MkdirAll(cfg.ModelInfoOutput, 0o755); err != nil {
		return nil, err
	}
	write := func() error {
		b, _ := json.MarshalIndent(info, "", "  ")
		return os.WriteFile(filepath.Join(cfg.ModelInfoOutput, "model_info.json"), b, 0o644)
	}
	switch strings.TrimSpace(string(flag)) {
	case "1":
	case "0":
		fmt.Fprintf(log, "not registering %s: deploy_flag is 0 (%s)\n", cfg.ModelName, info.Reason)
		if err := write(); err != nil {
			return nil, err
		}
		return info, nil
	default:
		return nil, wharf.Errorf(wharf.EINVALID, "%s: deploy_flag is %q, want 0 or 1", flagPath, strings.TrimSpace(string(flag)))
	}
	if _, err := os.Stat(filepath.Join(cfg.ModelPath, "MLmodel")); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "model %s has no MLmodel file", cfg.ModelPath)
	}
	tc := cfg.Tracking
	if tc == nil {
		return nil, ErrNoTracking
	}
	if err := tc.register(ctx, cfg.ModelPath, info); err != nil {
		return nil, err
	}
	if err := write(); err != nil {
		return nil, err
	}
	tc.logOrWarn(ctx, log, "not logged to tracking", nil, map[string]string{"registered_model": info.ID})
	fmt.Fprintf(log, "registered %s\n", info.ID)
	return info, nil
}

// register uploads the model folder to the run's artifacts and creates a
// version of info.Name from it, the registered model too if it is new;
// it fills in info's source, version, run and ID.
func (tc *Tracking) register(ctx context.Context, modelDir string, info *ModelInfo) error {
	runURI, err := tc.runArtifactURI(ctx, tc.RunID)
	if err != nil {
		return fmt.Errorf("read the step's run: %w", err)
	}
	root, err := artifactPath(runURI)
	if err != nil {
		return err
	}
	if err := tc.uploadDir(ctx, modelDir, root+"/model"); err != nil {
		return err
	}
	info.Source = strings.TrimRight(runURI, "/") + "/model"
	err = tc.call(ctx, http.MethodPost, "registered-models/create", map[string]any{"name": info.Name}, nil)
	var me *mlflowError
	if err != nil && !(errors.As(err, &me) && me.Code == "RESOURCE_ALREADY_EXISTS") {
		return fmt.Errorf("create registered model %s: %w", info.Name, err)
	}
	tags := []map[string]string{}
	for k, v := range info.Metrics {
		tags = append(tags, map[string]string{"key": k, "value": strconv.FormatFloat(v, 'g', -1, 64)})
	}
	var created struct {
		Version modelVersion `json:"model_version"`
	}
	if err := tc.call(ctx, http.MethodPost, "model-versions/create", map[string]any{"name": info.Name, "source": info.Source,
		"run_id": tc.RunID, "tags": tags, "description": info.Reason}, &created); err != nil {
		return fmt.Errorf("register %s: %w", info.Name, err)
	}
	info.Registered, info.Version, info.RunID = true, created.Version.Version, tc.RunID
	info.ID = info.Name + ":" + info.Version
	return nil
}
