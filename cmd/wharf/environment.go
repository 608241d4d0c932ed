package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
)

// envSpecJSON is an environment's stored definition.
type envSpecJSON = resolve.Environment

var envSpecOf = resolve.EnvironmentOf

func (a *app) environmentCommand() *cobra.Command {
	env := &cobra.Command{Use: "environment", Short: "Environments"}
	f := createFlags{fileOptional: true}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an environment version from --file, or from --name, --image and --conda-file",
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
	a.registryReads(env)
	return env
}

// registryReads gives environment list and show the --registry-name of
// az ml: with it they read the registry instead of a workspace. The
// server holds one registry, azureml, Azure's curated environments.
func (a *app) registryReads(env *cobra.Command) {
	for _, sub := range env.Commands() {
		name := sub.Name()
		if name != "list" && name != "show" {
			continue
		}
		var reg string
		sub.Flags().StringVar(&reg, "registry-name", "", "read the registry instead of a workspace (this server holds azureml, Azure's curated environments)")
		inWorkspace := sub.RunE
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			if reg == "" {
				return inWorkspace(cmd, args)
			}
			base := "/api/v1/registries/" + url.PathEscape(reg) + "/environments"
			if name == "list" {
				return a.getAndPrint(cmd, base)
			}
			fl := cmd.Flags()
			envName, _ := fl.GetString("name")
			version, _ := fl.GetString("version")
			label, _ := fl.GetString("label")
			v, err := versionOrLabel(version, label)
			if err != nil {
				return err
			}
			return a.getAndPrint(cmd, base+"/"+url.PathEscape(envName)+"/versions/"+url.PathEscape(v))
		}
	}
}
