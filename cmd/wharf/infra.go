package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/infra"
)

func (a *app) infraCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "infra", Short: "Declare a workspace and its stores and clusters from an MLOps infra config"}
	var file string
	var dryRun bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create or update what config-infra-*.yml declares; a second apply changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usagef("--file/-f is required")
			}
			cfg, err := infra.Load(file)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			_, err = a.applyInfra(cmd.Context(), c, cfg, dryRun)
			return err
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "infra config, e.g. config-infra-prod.yml")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.AddCommand(apply)
	return cmd
}

// applyInfra plans against the server's state, prints the plan, and unless
// dryRun applies it in dependency order.
func (a *app) applyInfra(ctx context.Context, c *wharfhttp.Client, cfg *infra.Config, dryRun bool) (infra.Plan, error) {
	wsName := cfg.WorkspaceName()
	current, ws, err := currentInfra(ctx, c, wsName)
	if err != nil {
		return nil, err
	}
	plan := infra.Diff(cfg.Desired(), current)
	if dryRun {
		fmt.Fprintf(a.stdout, "Plan for workspace %s (dry run, nothing changed):\n", wsName)
	}
	if err := plan.Render(a.stdout); err != nil {
		return nil, err
	}
	if dryRun || plan.Empty() {
		return plan, nil
	}
	created, updated := 0, 0
	workspaceDone := false
	for _, ch := range plan {
		if ch.Action != infra.Create && ch.Action != infra.Update {
			continue
		}
		if ch.Action == infra.Create {
			created++
		} else {
			updated++
		}
		switch ch.Resource.Kind {
		case infra.KindWorkspace, infra.KindSecretStore, infra.KindMonitoringStore:
			// The stores are properties of the workspace: one PUT carries all.
			if workspaceDone {
				continue
			}
			workspaceDone = true
			if err := putWorkspace(ctx, c, cfg, ws); err != nil {
				return nil, err
			}
		case infra.KindDatastore:
			p := ch.Resource.Properties
			body := map[string]any{"type": p["type"], "is_default": p["default"] == "true",
				"account_name": p["account_name"], "container_name": p["container_name"], "endpoint": p["endpoint"],
				"protocol": p["protocol"], "bucket": p["bucket"], "region": p["region"], "path_style": p["path_style"] == "true"}
			if creds := datastoreCredentialsFromEnv(p["type"]); creds != nil {
				body["credentials"] = creds
			}
			if err := c.Do(ctx, "PUT", "/api/v1/workspaces/"+url.PathEscape(wsName)+"/datastores/"+url.PathEscape(ch.Resource.Name), body, nil); err != nil {
				return nil, err
			}
		case infra.KindCompute:
			p := ch.Resource.Properties
			minI, _ := strconv.Atoi(p["min_instances"])
			maxI, _ := strconv.Atoi(p["max_instances"])
			body := map[string]any{"type": p["type"], "size": p["size"], "tier": p["tier"], "min_instances": minI, "max_instances": maxI}
			if err := c.Do(ctx, "PUT", computePath(wsName, ch.Resource.Name), body, nil); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("infra: unknown resource kind %q", ch.Resource.Kind)
		}
	}
	fmt.Fprintf(a.stdout, "Apply complete: %d created, %d updated.\n", created, updated)
	return plan, nil
}

// putWorkspace writes the workspace with the config's settings, keeping
// tags that someone added by hand.
func putWorkspace(ctx context.Context, c *wharfhttp.Client, cfg *infra.Config, cur *wharf.Workspace) error {
	tags := map[string]string{}
	if cur != nil {
		for k, v := range cur.Tags {
			tags[k] = v
		}
	}
	tags["environment"] = cfg.Environment
	monitoring := ""
	if cfg.EnableMonitoring {
		monitoring = cfg.MonitoringStore()
	}
	body := map[string]any{
		"resource_group": cfg.ResourceGroup(), "location": cfg.Location, "key_vault": cfg.KeyVault(),
		"application_insights": monitoring, "storage_account": cfg.StorageAccount(), "tags": tags,
	}
	if cur != nil {
		body["display_name"], body["description"] = cur.DisplayName, cur.Description
	}
	return c.Do(ctx, "PUT", "/api/v1/workspaces/"+url.PathEscape(cfg.WorkspaceName()), body, nil)
}

// currentInfra reads the server's state of a workspace as infra resources.
func currentInfra(ctx context.Context, c *wharfhttp.Client, wsName string) ([]infra.Resource, *wharf.Workspace, error) {
	var ws wharf.Workspace
	err := c.Do(ctx, "GET", "/api/v1/workspaces/"+url.PathEscape(wsName), nil, &ws)
	if wharf.IsNotFound(err) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	out := []infra.Resource{{Kind: infra.KindWorkspace, Name: ws.Name, Properties: map[string]string{
		"resource_group": ws.ResourceGroup, "location": ws.Location, "key_vault": ws.KeyVault,
		"monitoring_store": ws.ApplicationInsights, "environment": ws.Tags["environment"],
	}}}
	if ws.KeyVault != "" {
		out = append(out, infra.Resource{Kind: infra.KindSecretStore, Name: ws.KeyVault, Properties: map[string]string{}})
	}
	if ws.ApplicationInsights != "" {
		out = append(out, infra.Resource{Kind: infra.KindMonitoringStore, Name: ws.ApplicationInsights, Properties: map[string]string{}})
	}
	var stores []wharf.Datastore
	if err := c.Do(ctx, "GET", "/api/v1/workspaces/"+url.PathEscape(wsName)+"/datastores", nil, &stores); err != nil {
		return nil, nil, err
	}
	for _, d := range stores {
		out = append(out, infra.Resource{Kind: infra.KindDatastore, Name: d.Name, Properties: map[string]string{
			"type": d.Type, "default": strconv.FormatBool(d.IsDefault), "account_name": d.AccountName,
			"container_name": d.ContainerName, "endpoint": d.Endpoint, "protocol": d.Protocol, "bucket": d.Bucket,
			"region": d.Region, "path_style": strconv.FormatBool(d.PathStyle),
		}})
	}
	var computes []wharf.Compute
	if err := c.Do(ctx, "GET", computePath(wsName, ""), nil, &computes); err != nil {
		return nil, nil, err
	}
	for _, cp := range computes {
		out = append(out, infra.Resource{Kind: infra.KindCompute, Name: cp.Name, Properties: map[string]string{
			"type": cp.Type, "size": cp.Size, "min_instances": strconv.Itoa(cp.MinInstances),
			"max_instances": strconv.Itoa(cp.MaxInstances), "tier": cp.Tier,
		}})
	}
	return out, &ws, nil
}

// datastoreCredentialsFromEnv is the default datastore's credential for
// `infra apply`, from the variables the az CLI and the AWS SDK read
// (AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY), so that it is never written in the config file.
// nil when there is none: the datastore keeps the credential it has.
func datastoreCredentialsFromEnv(datastoreType string) *wharf.DatastoreCredentials {
	var c wharf.DatastoreCredentials
	switch datastoreType {
	case wharf.DatastoreAzureBlob:
		c.AccountKey, c.SASToken = os.Getenv("AZURE_STORAGE_KEY"), os.Getenv("AZURE_STORAGE_SAS_TOKEN")
	case wharf.DatastoreS3:
		c.AccessKeyID, c.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if c == (wharf.DatastoreCredentials{}) {
		return nil
	}
	return &c
}
