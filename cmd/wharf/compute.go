package main

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/yamlfile"
)

// computeSpec is the amlCompute YAML schema. Networking and identity keys
// are accepted and ignored: Wharf's clusters run on the server's own network.
type computeSpec struct {
	Name                    string            `yaml:"name"`
	Type                    string            `yaml:"type"`
	Size                    string            `yaml:"size"`
	MinInstances            *int              `yaml:"min_instances"`
	MaxInstances            *int              `yaml:"max_instances"`
	Tier                    string            `yaml:"tier"`
	IdleTimeBeforeScaleDown *int              `yaml:"idle_time_before_scale_down"`
	Location                string            `yaml:"location"`
	Description             string            `yaml:"description"`
	Tags                    map[string]string `yaml:"tags"`
	// Address is a `type: ray` cluster's Ray dashboard URL.
	Address string `yaml:"address"`
	// Sandbox: false runs a ray cluster's steps unsandboxed.
	Sandbox *bool `yaml:"sandbox"`
	// SandboxReadOnlyPaths are node folders a ray cluster's sandboxed
	// steps see read-only.
	SandboxReadOnlyPaths []string `yaml:"sandbox_read_only_paths"`

	Identity               any `yaml:"identity"`
	NetworkSettings        any `yaml:"network_settings"`
	SSHPublicAccessEnabled any `yaml:"ssh_public_access_enabled"`
	SSHSettings            any `yaml:"ssh_settings"`
	EnableNodePublicIP     any `yaml:"enable_node_public_ip"`
}

func (s computeSpec) request() map[string]any {
	m := map[string]any{
		"name": s.Name, "type": s.Type, "size": s.Size, "tier": s.Tier,
		"location": s.Location, "description": s.Description, "tags": s.Tags,
		"address": s.Address,
	}
	if s.MinInstances != nil {
		m["min_instances"] = *s.MinInstances
	}
	if s.Sandbox != nil {
		m["sandbox"] = *s.Sandbox
	}
	if s.SandboxReadOnlyPaths != nil {
		m["sandbox_read_only_paths"] = s.SandboxReadOnlyPaths
	}
	if s.MaxInstances != nil {
		m["max_instances"] = *s.MaxInstances
	}
	if s.IdleTimeBeforeScaleDown != nil {
		m["idle_time_before_scale_down"] = *s.IdleTimeBeforeScaleDown
	}
	return m
}

// computePath is the REST path of a workspace's compute name, or of its
// computes when name is empty.
func computePath(ws, name string) string { return resourcePath(ws, "computes", name) }

// resourcePath is the REST path of the resource name in a workspace's
// collection ("computes"), or of the collection when name is empty.
func resourcePath(ws, collection, name string) string {
	p := "/api/v1/workspaces/" + url.PathEscape(ws) + "/" + collection
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

func (a *app) computeCommand() *cobra.Command {
	compute := &cobra.Command{Use: "compute", Short: "Compute clusters"}

	var w wsFlags
	var file, name, typ, size, tier, location, description, address string
	var minI, maxI, idle int
	var sets, tags []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or update a compute cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			var spec computeSpec
			var doc *yamlfile.Document
			if file != "" {
				if doc, err = loadYAML(file, sets, &spec); err != nil {
					return err
				}
			} else if len(sets) > 0 {
				return usagef("--set needs --file")
			}
			fl := cmd.Flags()
			over := func(dst *string, flag, v string) {
				if fl.Changed(flag) {
					*dst = v
				}
			}
			over(&spec.Name, "name", name)
			over(&spec.Type, "type", typ)
			over(&spec.Size, "size", size)
			over(&spec.Tier, "tier", tier)
			over(&spec.Location, "location", location)
			over(&spec.Description, "description", description)
			over(&spec.Address, "address", address)
			if fl.Changed("min-instances") {
				spec.MinInstances = &minI
			}
			if fl.Changed("max-instances") {
				spec.MaxInstances = &maxI
			}
			if fl.Changed("idle-time-before-scale-down") {
				spec.IdleTimeBeforeScaleDown = &idle
			}
			if t, err := parseTags(tags); err != nil {
				return err
			} else if t != nil {
				spec.Tags = t
			}
			if spec.Name == "" {
				return usagef("--name/-n is required (or name: in --file)")
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", computePath(ws, spec.Name), spec.request(), &out); err != nil {
				return atFieldLine(doc, err)
			}
			return a.print(out)
		},
	}
	f := create.Flags()
	f.StringVarP(&file, "file", "f", "", "compute YAML")
	f.StringArrayVar(&sets, "set", nil, "override a YAML field: --set key.path=value")
	f.StringVarP(&name, "name", "n", "", "cluster name")
	f.StringVar(&typ, "type", "", "amlcompute or ray (any case)")
	f.StringVar(&address, "address", "", "a ray cluster's Ray dashboard URL, e.g. http://head:8265")
	f.StringVar(&size, "size", "", "VM size, e.g. Standard_DS3_v2")
	f.StringVar(&tier, "tier", "", "dedicated or low_priority (any case)")
	f.IntVar(&minI, "min-instances", 0, "minimum nodes")
	f.IntVar(&maxI, "max-instances", 1, "maximum nodes: steps run at once on this cluster")
	f.IntVar(&idle, "idle-time-before-scale-down", 120, "seconds before idle nodes are released")
	f.StringVarP(&location, "location", "l", "", "location")
	f.StringVar(&description, "description", "", "description")
	f.StringArrayVar(&tags, "tags", nil, "tags KEY=VALUE")
	f.String("identity-type", "", "accepted for az compatibility")
	f.String("vnet-name", "", "accepted for az compatibility")
	f.String("subnet", "", "accepted for az compatibility")
	f.Bool("no-wait", false, "accepted for az compatibility")
	w.add(create)

	update := &cobra.Command{
		Use:   "update",
		Short: "Change a cluster's scale settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			if name == "" {
				return usagef("--name/-n is required")
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var cur map[string]any
			if err := c.Do(cmd.Context(), "GET", computePath(ws, name), nil, &cur); err != nil {
				return err
			}
			fl := cmd.Flags()
			if fl.Changed("min-instances") {
				cur["min_instances"] = minI
			}
			if fl.Changed("max-instances") {
				cur["max_instances"] = maxI
			}
			if fl.Changed("idle-time-before-scale-down") {
				cur["idle_time_before_scale_down"] = idle
			}
			for _, k := range []string{"provisioning_state", "created_at", "updated_at"} {
				delete(cur, k)
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", computePath(ws, name), cur, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	update.Flags().StringVarP(&name, "name", "n", "", "cluster name")
	update.Flags().IntVar(&minI, "min-instances", 0, "minimum nodes")
	update.Flags().IntVar(&maxI, "max-instances", 1, "maximum nodes")
	update.Flags().IntVar(&idle, "idle-time-before-scale-down", 120, "seconds before idle nodes are released")
	w.add(update)

	list := a.listCommand("List compute clusters", func(ws string) string { return computePath(ws, "") })
	list.Flags().String("type", "", "accepted for az compatibility")
	show := a.showCommand("Show a compute cluster", "cluster name", computePath)

	var yes bool
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a compute cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			if name == "" {
				return usagef("--name/-n is required")
			}
			if err := a.confirm(yes, fmt.Sprintf("Delete compute %q in workspace %q?", name, ws)); err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", computePath(ws, name), nil, nil)
		},
	}
	del.Flags().StringVarP(&name, "name", "n", "", "cluster name")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt for confirmation")
	del.Flags().Bool("no-wait", false, "accepted for az compatibility")
	w.add(del)

	compute.AddCommand(create, update, list, show, del, a.computeAttachCommand())
	return compute
}

// datastoreSpec is the datastore YAML schema: Azure's azure_blob, and s3
// for S3-compatible storage. Credentials are sent to the server, which
// keeps them in the workspace's secret store; `show` never prints them.
type datastoreSpec struct {
	Name          string            `yaml:"name"`
	Type          string            `yaml:"type"`
	AccountName   string            `yaml:"account_name"`
	ContainerName string            `yaml:"container_name"`
	Endpoint      string            `yaml:"endpoint"`
	Protocol      string            `yaml:"protocol"`
	Bucket        string            `yaml:"bucket"`
	EndpointURL   string            `yaml:"endpoint_url"`
	Region        string            `yaml:"region"`
	PathStyle     bool              `yaml:"path_style"`
	Description   string            `yaml:"description"`
	Tags          map[string]string `yaml:"tags"`
	// Credentials is nil when the file has none, which keeps the
	// datastore's credential on an update.
	Credentials *wharf.DatastoreCredentials `yaml:"credentials"`
}

// datastorePath is the REST path of a workspace's datastore name, or of
// its datastores when name is empty.
func datastorePath(ws, name string) string { return resourcePath(ws, "datastores", name) }

func (a *app) datastoreCommand() *cobra.Command {
	ds := &cobra.Command{Use: "datastore", Short: "Datastores"}
	var w wsFlags
	var file, name string
	var sets []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or update a datastore",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			if file == "" {
				return usagef("--file/-f is required")
			}
			var spec datastoreSpec
			if _, err := loadYAML(file, sets, &spec); err != nil {
				return err
			}
			if name != "" {
				spec.Name = name
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			endpoint := spec.Endpoint
			if spec.Type == wharf.DatastoreS3 {
				if endpoint != "" && spec.EndpointURL == "" {
					return usagef("%s: an s3 datastore's service URL is endpoint_url", file)
				}
				endpoint = spec.EndpointURL
			}
			body := map[string]any{
				"name": spec.Name, "type": spec.Type, "account_name": spec.AccountName, "container_name": spec.ContainerName,
				"endpoint": endpoint, "protocol": spec.Protocol, "bucket": spec.Bucket, "region": spec.Region,
				"path_style": spec.PathStyle, "description": spec.Description, "tags": spec.Tags,
			}
			if spec.Credentials != nil {
				body["credentials"] = spec.Credentials
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", datastorePath(ws, spec.Name), body, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "datastore YAML")
	create.Flags().StringVarP(&name, "name", "n", "", "datastore name (overrides the file)")
	create.Flags().StringArrayVar(&sets, "set", nil, "override a YAML field")
	w.add(create)

	list := a.listCommand("List datastores", func(ws string) string { return datastorePath(ws, "") })
	show := a.showCommand("Show a datastore", "datastore name", datastorePath)
	ds.AddCommand(create, list, show)
	return ds
}

// atFieldLine places an error the server found in a field of a YAML
// file's request at that field's line of the file; other errors, and any
// without a file (doc nil), are returned as they are.
func atFieldLine(doc *yamlfile.Document, err error) error {
	var we *wharf.Error
	if doc == nil || !errors.As(err, &we) || we.Field == "" {
		return err
	}
	n := doc.Node(we.Field)
	if n == nil {
		return err
	}
	return yamlfile.NodeError(doc, n, we.Field, "%s", we.Message)
}
