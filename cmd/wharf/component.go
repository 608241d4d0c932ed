package main

import (
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
)

func (a *app) componentCommand() *cobra.Command {
	comp := &cobra.Command{Use: "component", Short: "Components"}
	var f createFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a command or pipeline component version; code folders are uploaded",
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
			if spec.IsPipeline() {
				// Its steps are read at every use: the server keeps them
				// as a document, their files inlined and content uploaded.
				doc, err := jobspec.ComponentDocument(f.file, f.overrides(), a.documentUploader(cmd.Context(), c, ws))
				if err != nil {
					return err
				}
				stored := componentSpecJSON{Component: spec.Clone()}
				stored.Component.Jobs = &jobspec.PipelineJobs{Document: doc.JSON}
				return a.registerComponent(cmd, c, ws, spec, "", stored)
			}
			digest := ""
			if spec.Code != "" {
				if digest, err = a.uploadCode(cmd.Context(), c, ws, spec.Code, spec.AdditionalIncludes); err != nil {
					return err
				}
			}
			stored := componentSpecJSON{Component: spec.Clone()}
			stored.Component.Code, stored.Component.AdditionalIncludes = "", nil
			if digest != "" {
				stored.CodePath = resolve.UploadURI(digest, scheduler.KindFolder, filepath.Base(spec.Code))
			}
			if spec.Environment.Inline != nil {
				env, err := envSpecOf(spec.Environment.Inline)
				if err != nil {
					return err
				}
				stored.Environment = &env
			}
			return a.registerComponent(cmd, c, ws, spec, digest, stored)
		},
	}
	f.add(create)
	comp.AddCommand(create)
	a.assetReadCommands(comp, wharf.AssetComponent, "component")
	return comp
}

// registerComponent stores a component version whose code snapshot is
// digest (empty for none).
func (a *app) registerComponent(cmd *cobra.Command, c *wharfhttp.Client, ws string, spec *jobspec.ComponentSpec, digest string, stored componentSpecJSON) error {
	body := assetBody{Version: spec.Version, Digest: digest, Description: spec.Description, Tags: spec.Tags, Spec: stored}
	var out any
	if err := c.Do(cmd.Context(), "POST", assetsPath(ws, wharf.AssetComponent)+"/"+url.PathEscape(spec.Name)+"/versions", body, &out); err != nil {
		return err
	}
	return a.print(out)
}
