package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

func (a *app) componentCommand() *cobra.Command {
	comp := &cobra.Command{Use: "component", Short: "Components"}
	var f createFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a command component version; its code folder is uploaded",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			res := newAPIResolver(cmd.Context(), c, ws)
			spec, err := jobspec.LoadComponent(f.file, f.overrides(), res)
			if err != nil {
				return err
			}
			digest := ""
			if spec.Code != "" {
				if digest, err = a.uploadCode(cmd.Context(), c, ws, spec.Code, spec.AdditionalIncludes); err != nil {
					return err
				}
			}
			stored := componentSpecJSON{Component: spec.Clone()}
			stored.Component.Code, stored.Component.AdditionalIncludes = "", nil
			if spec.Environment.Inline != nil {
				env, err := envSpecOf(spec.Environment.Inline)
				if err != nil {
					return err
				}
				stored.Environment = &env
			}
			body := assetBody{Version: spec.Version, Digest: digest, Description: spec.Description, Tags: spec.Tags, Spec: stored}
			var out any
			if err := c.Do(cmd.Context(), "POST", assetsPath(ws, wharf.AssetComponent)+"/"+url.PathEscape(spec.Name)+"/versions", body, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f.add(create)
	comp.AddCommand(create)
	a.assetReadCommands(comp, wharf.AssetComponent, "component")
	return comp
}
