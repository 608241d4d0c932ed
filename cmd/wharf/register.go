package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/steps"
)

// registerCommand holds the built-in registration step.
func (a *app) registerCommand() *cobra.Command {
	reg := &cobra.Command{Use: "register", Short: "Built-in registration steps (run as pipeline steps)"}
	var cfg steps.RegisterConfig
	model := &cobra.Command{
		Use:   "model",
		Short: "Register a model folder with its metrics and the job's run as lineage, only when the evaluation's deploy_flag is 1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Tracking = steps.TrackingFromEnv()
			info, err := steps.RegisterModel(cmd.Context(), cfg, a.stderr)
			if errors.Is(err, steps.ErrNoTracking) {
				return wharf.Errorf(wharf.EINVALID, "%s, or use `%s ml model create`", steps.ErrNoTracking.Message, selfName())
			}
			if err != nil {
				return err
			}
			return a.print(info)
		},
	}
	f := model.Flags()
	f.StringVar(&cfg.ModelName, "model-name", "", "registered model name")
	f.StringVar(&cfg.ModelPath, "model-path", "", "the model folder to register")
	f.StringVar(&cfg.EvaluationOutput, "evaluation-output", "", "the evaluate step's output (deploy_flag, metrics.json)")
	f.StringVar(&cfg.ModelInfoOutput, "model-info-output", "", "folder for model_info.json")
	for _, n := range []string{"model-name", "model-path", "evaluation-output", "model-info-output"} {
		_ = model.MarkFlagRequired(n)
	}
	reg.AddCommand(model)
	return reg
}
