package main

import (
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

// dataSpecJSON is a data asset's stored definition.
type dataSpecJSON struct {
	Type string `json:"type"`
	Path string `json:"path"`
	// Kind, FileName, Size and Files describe uploaded content.
	Kind     string `json:"kind,omitempty"`
	FileName string `json:"file_name,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Files    int    `json:"files,omitempty"`
}

func (a *app) dataCommand() *cobra.Command {
	data := &cobra.Command{Use: "data", Short: "Data assets"}
	var f createFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a data asset version; a local path is uploaded",
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
			if spec.Source.LocalPath == "" {
				return wharf.Errorf(wharf.EINVALID, "%s: path %s: only local files and folders can be uploaded by this server; "+
					"storage URIs are not readable by it", f.file, spec.Source.String()).WithField("path")
			}
			digest, kind, size, files, err := a.uploadLocal(cmd.Context(), c, ws, spec.Source.LocalPath, "data")
			if err != nil {
				return err
			}
			if spec.Type == jobspec.TypeURIFile && kind != "file" {
				return wharf.Errorf(wharf.EINVALID, "%s: type uri_file needs a file, but %s is a folder", f.file, spec.Source.LocalPath).WithField("path")
			}
			if spec.Type != jobspec.TypeURIFile && kind == "file" {
				return wharf.Errorf(wharf.EINVALID, "%s: type %s needs a folder, but %s is a file", f.file, spec.Type, spec.Source.LocalPath).WithField("path")
			}
			body := assetBody{Version: spec.Version, Digest: digest, Description: spec.Description, Tags: spec.Tags,
				Spec: dataSpecJSON{Type: spec.Type, Path: localUploadURI(digest, spec.Source.LocalPath), Kind: kind,
					FileName: filepath.Base(spec.Source.LocalPath), Size: size, Files: files}}
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
