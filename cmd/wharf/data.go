package main

import (
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
)

// dataSpecJSON is a data asset's stored definition.
type dataSpecJSON = resolve.DataAsset

func (a *app) dataCommand() *cobra.Command {
	data := &cobra.Command{Use: "data", Short: "Data assets"}
	f := createFlags{fileOptional: true}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a data asset version from --file, or from --name, --path and --type; a local path is uploaded",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			spec, err := jobspec.LoadData(f.file, f.overrides())
			if err != nil {
				return err
			}
			source := f.file
			if source == "" {
				source = jobspec.FlagsSource
			}
			var digest, kind, fileName, uri string
			var size int64
			var files int
			switch {
			case spec.Source.LocalPath != "":
				if digest, kind, size, files, err = a.uploadLocal(cmd.Context(), c, ws, spec.Source.LocalPath, "data"); err != nil {
					return err
				}
				fileName, uri = filepath.Base(spec.Source.LocalPath), localUploadURI(digest, spec.Source.LocalPath)
			case spec.Source.Datastore != nil:
				// The server pins the asset to what the path holds.
				uri = spec.Source.Datastore.String()
			default:
				return wharf.Errorf(wharf.EINVALID, "%s: path %s: this server reads local files and folders and "+
					"azureml://datastores/ paths, not external storage", source, spec.Source.String()).WithField("path")
			}
			if kind != "" {
				if err := resolve.CheckKind(spec.Type, kind, spec.Source.String()); err != nil {
					return wharf.Errorf(wharf.EINVALID, "%s: %s", source, wharf.ErrorMessage(err)).WithField("path")
				}
			}
			body := assetBody{Version: spec.Version, Digest: digest, Description: spec.Description, Tags: spec.Tags,
				Spec: dataSpecJSON{Type: spec.Type, Path: uri, Kind: kind, FileName: fileName, Size: size, Files: files}}
			var out any
			if err := c.Do(cmd.Context(), "POST", assetsPath(ws, wharf.AssetData)+"/"+url.PathEscape(spec.Name)+"/versions", body, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f.add(create)
	f.field(create, "type", "t", "type", "uri_file, uri_folder or mltable (overrides the YAML's)")
	f.field(create, "path", "p", "path", "path (overrides the YAML's)")
	f.field(create, "description", "d", "description", "description")
	data.AddCommand(create)
	a.assetReadCommands(data, wharf.AssetData, "data asset")
	return data
}
