package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
)

// modelInfo is what `wharf register model` writes as model_info.json.
type modelInfo struct {
	ID         string             `json:"id,omitempty"` // NAME:VERSION, as the Azure template writes it
	Name       string             `json:"name"`
	Version    string             `json:"version,omitempty"`
	Registered bool               `json:"registered"`
	RunID      string             `json:"run_id,omitempty"`
	Source     string             `json:"source,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Reason     string             `json:"reason"`
}

// registerCommand holds the built-in registration step.
func (a *app) registerCommand() *cobra.Command {
	reg := &cobra.Command{Use: "register", Short: "Built-in registration steps (run as pipeline steps)"}
	var name, modelDir, evalDir, infoDir string
	model := &cobra.Command{
		Use:   "model",
		Short: "Register a model folder with its metrics and the job's run as lineage, only when the evaluation's deploy_flag is 1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			flag, err := os.ReadFile(filepath.Join(evalDir, "deploy_flag"))
			if err != nil {
				return wharf.Errorf(wharf.EINVALID, "%s: no deploy_flag file (is it the evaluate step's output?): %v", evalDir, unwrapPathErr(err))
			}
			info := modelInfo{Name: name, Metrics: map[string]float64{}}
			if b, err := os.ReadFile(filepath.Join(evalDir, "metrics.json")); err == nil {
				var ev evaluation
				if err := json.Unmarshal(b, &ev); err == nil {
					c := ev.Candidate
					info.Metrics = map[string]float64{"r2": c.R2, "mse": c.MSE, "rmse": c.RMSE, "mae": c.MAE}
					info.Reason = ev.Reason
				}
			}
			if err := os.MkdirAll(infoDir, 0o755); err != nil {
				return err
			}
			write := func() error {
				b, _ := json.MarshalIndent(info, "", "  ")
				return os.WriteFile(filepath.Join(infoDir, "model_info.json"), b, 0o644)
			}
			switch strings.TrimSpace(string(flag)) {
			case "1":
			case "0":
				fmt.Fprintf(a.stderr, "not registering %s: deploy_flag is 0 (%s)\n", name, info.Reason)
				if err := write(); err != nil {
					return err
				}
				return a.print(info)
			default:
				return wharf.Errorf(wharf.EINVALID, "%s: deploy_flag is %q, want 0 or 1", filepath.Join(evalDir, "deploy_flag"), strings.TrimSpace(string(flag)))
			}
			if _, err := os.Stat(filepath.Join(modelDir, "MLmodel")); err != nil {
				return wharf.Errorf(wharf.EINVALID, "model %s has no MLmodel file", modelDir)
			}
			tc := stepTracking()
			if tc == nil {
				return wharf.Errorf(wharf.EINVALID, "registering needs the job's tracking server (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID); run this as a job step, or use `%s ml model create`", selfName())
			}
			var run struct {
				Run struct {
					Info struct {
						ArtifactURI string `json:"artifact_uri"`
					} `json:"info"`
				} `json:"run"`
			}
			if err := tc.call(ctx, http.MethodGet, "runs/get?run_id="+tc.run, nil, &run); err != nil {
				return fmt.Errorf("read the step's run: %w", err)
			}
			root, err := artifactPath(run.Run.Info.ArtifactURI)
			if err != nil {
				return err
			}
			if err := tc.uploadDir(ctx, modelDir, root+"/model"); err != nil {
				return err
			}
			info.Source = strings.TrimRight(run.Run.Info.ArtifactURI, "/") + "/model"
			err = tc.call(ctx, http.MethodPost, "registered-models/create", map[string]any{"name": name}, nil)
			var me *mlflowError
			if err != nil && !(errors.As(err, &me) && me.Code == "RESOURCE_ALREADY_EXISTS") {
				return fmt.Errorf("create registered model %s: %w", name, err)
			}
			tags := []map[string]string{}
			for k, v := range info.Metrics {
				tags = append(tags, map[string]string{"key": k, "value": strconv.FormatFloat(v, 'g', -1, 64)})
			}
			var created struct {
				Version modelVersion `json:"model_version"`
			}
			if err := tc.call(ctx, http.MethodPost, "model-versions/create", map[string]any{"name": name, "source": info.Source,
				"run_id": tc.run, "tags": tags, "description": info.Reason}, &created); err != nil {
				return fmt.Errorf("register %s: %w", name, err)
			}
			info.Registered, info.Version, info.RunID = true, created.Version.Version, tc.run
			info.ID = name + ":" + info.Version
			if err := write(); err != nil {
				return err
			}
			if err := logToTracking(ctx, nil, map[string]string{"registered_model": info.ID}); err != nil {
				fmt.Fprintf(a.stderr, "warning: not logged to tracking: %v\n", err)
			}
			fmt.Fprintf(a.stderr, "registered %s\n", info.ID)
			return a.print(info)
		},
	}
	f := model.Flags()
	f.StringVar(&name, "model-name", "", "registered model name")
	f.StringVar(&modelDir, "model-path", "", "the model folder to register")
	f.StringVar(&evalDir, "evaluation-output", "", "the evaluate step's output (deploy_flag, metrics.json)")
	f.StringVar(&infoDir, "model-info-output", "", "folder for model_info.json")
	for _, n := range []string{"model-name", "model-path", "evaluation-output", "model-info-output"} {
		_ = model.MarkFlagRequired(n)
	}
	reg.AddCommand(model)
	return reg
}
