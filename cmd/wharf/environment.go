package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

// envSpecJSON is an environment's stored definition: what the local
// executor builds (Python version and pip requirements) and what a
// container executor would (image, conda spec).
type envSpecJSON struct {
	Image         string             `json:"image,omitempty"`
	PythonVersion string             `json:"python_version,omitempty"`
	Pip           []string           `json:"pip,omitempty"`
	Conda         *jobspec.CondaSpec `json:"conda,omitempty"`
	OSType        string             `json:"os_type,omitempty"`
	Hash          string             `json:"hash"`
}

func envSpecOf(e *jobspec.EnvironmentSpec) (envSpecJSON, error) {
	h, err := e.Hash()
	if err != nil {
		return envSpecJSON{}, err
	}
	return envSpecJSON{Image: e.Image, PythonVersion: e.PythonVersion(), Pip: e.PipRequirements(), Conda: e.Conda,
		OSType: e.OSType, Hash: h}, nil
}

func (a *app) environmentCommand() *cobra.Command {
	env := &cobra.Command{Use: "environment", Short: "Environments"}
	var f createFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an environment version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			spec, err := jobspec.LoadEnvironment(f.file, f.overrides())
			if err != nil {
				return err
			}
			stored, err := envSpecOf(spec)
			if err != nil {
				return err
			}
			body := assetBody{Version: spec.Version, Description: spec.Description, Tags: spec.Tags, Spec: stored}
			var out any
			if err := c.Do(cmd.Context(), "POST", assetsPath(ws, wharf.AssetEnvironment)+"/"+url.PathEscape(spec.Name)+"/versions", body, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f.add(create)
	f.field(create, "conda-file", "", "conda_file", "conda file (overrides the YAML's)")
	f.field(create, "image", "i", "image", "base image (overrides the YAML's)")
	f.field(create, "description", "d", "description", "description")
	env.AddCommand(create)
	a.assetReadCommands(env, wharf.AssetEnvironment, "environment")
	return env
}
