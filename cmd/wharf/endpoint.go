package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/serving"
	"github.com/wharfml/wharf/yamlfile"
)

func endpointsPath(ws string) string {
	return "/api/v1/workspaces/" + url.PathEscape(ws) + "/onlineEndpoints"
}

// endpointSpec is the managed online endpoint YAML.
type endpointSpec struct {
	Name                string            `yaml:"name"`
	AuthMode            string            `yaml:"auth_mode"`
	Description         string            `yaml:"description"`
	Tags                map[string]string `yaml:"tags"`
	Traffic             map[string]int    `yaml:"traffic"`
	MirrorTraffic       map[string]int    `yaml:"mirror_traffic"`
	PublicNetworkAccess string            `yaml:"public_network_access"`
	Identity            *yaml.Node        `yaml:"identity"`
	Compute             string            `yaml:"compute"`
	Kind                string            `yaml:"kind"`
}

// parseTraffic reads az's "blue=90 green=10" form.
func parseTraffic(flag, s string) (map[string]int, error) {
	out := map[string]int{}
	for _, f := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(v)
		if !ok || k == "" || err != nil {
			return nil, usagef("%s: %q is not DEPLOYMENT=PERCENT", flag, f)
		}
		out[k] = n
	}
	return out, nil
}

func (a *app) onlineEndpointCommand() *cobra.Command {
	ep := &cobra.Command{Use: "online-endpoint", Short: "Online endpoints (real-time scoring)"}

	var cw wsFlags
	var file, name, authMode, traffic, mirror string
	var sets []string
	put := func(cmd *cobra.Command, creating bool) error {
		ws, err := a.workspaceName(cw.workspace)
		if err != nil {
			return err
		}
		var spec endpointSpec
		body := map[string]any{}
		if file != "" {
			if _, err := loadYAML(file, sets, &spec); err != nil {
				return err
			}
			body["description"], body["tags"] = spec.Description, spec.Tags
			if spec.AuthMode != "" {
				body["auth_mode"] = spec.AuthMode
			}
			if spec.Traffic != nil {
				body["traffic"] = spec.Traffic
			}
			if spec.MirrorTraffic != nil {
				body["mirror_traffic"] = spec.MirrorTraffic
			}
		}
		if name != "" {
			spec.Name = name
		}
		if spec.Name == "" {
			return usagef("--name is required (or name: in --file)")
		}
		if authMode != "" {
			body["auth_mode"] = authMode
		}
		if traffic != "" {
			t, err := parseTraffic("--traffic", traffic)
			if err != nil {
				return err
			}
			body["traffic"] = t
		}
		if mirror != "" {
			m, err := parseTraffic("--mirror-traffic", mirror)
			if err != nil {
				return err
			}
			body["mirror_traffic"] = m
		}
		c, _, err := a.client()
		if err != nil {
			return err
		}
		if !creating {
			// update needs the endpoint to exist, as in az.
			var cur any
			if err := c.Do(cmd.Context(), "GET", endpointsPath(ws)+"/"+url.PathEscape(spec.Name), nil, &cur); err != nil {
				return err
			}
		}
		var out any
		if err := c.Do(cmd.Context(), "PUT", endpointsPath(ws)+"/"+url.PathEscape(spec.Name), body, &out); err != nil {
			return err
		}
		return a.print(out)
	}
	create := &cobra.Command{Use: "create", Short: "Create (or update) an online endpoint", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return put(cmd, true) }}
	update := &cobra.Command{Use: "update", Short: "Update an endpoint: traffic split, mirroring, description, tags", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return put(cmd, false) }}
	for _, cmd := range []*cobra.Command{create, update} {
		f := cmd.Flags()
		f.StringVarP(&file, "file", "f", "", "online endpoint YAML")
		f.StringVarP(&name, "name", "n", "", "endpoint name (overrides the YAML's)")
		f.StringArrayVar(&sets, "set", nil, "override a YAML field")
		f.StringVar(&traffic, "traffic", "", `traffic split, e.g. "blue=90 green=10"`)
		f.StringVar(&mirror, "mirror-traffic", "", `mirrored traffic, e.g. "green=10"`)
		cw.add(cmd)
	}
	create.Flags().StringVar(&authMode, "auth-mode", "", "key or aml_token")

	var rw wsFlags
	var rname string
	named := a.namedVerbs(&rw, &rname, "endpoint name", true, nil)
	show := named("show", "Show an endpoint, with its scoring_uri", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, endpointsPath(ws)+"/"+url.PathEscape(rname))
	})
	var yes bool
	del := named("delete", "Delete an endpoint and its deployments", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "DELETE", endpointsPath(ws)+"/"+url.PathEscape(rname), nil, nil)
	})
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt (accepted for az compatibility)")
	creds := named("get-credentials", "Print the endpoint's keys (key mode) or a token (aml_token mode)", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		var out any
		if err := c.Do(cmd.Context(), "POST", endpointsPath(ws)+"/"+url.PathEscape(rname)+"/listKeys", struct{}{}, &out); err != nil {
			return err
		}
		return a.print(out)
	})
	var keyType string
	regen := named("regenerate-keys", "Replace the primary or secondary key; the old one stops working at once", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "POST", endpointsPath(ws)+"/"+url.PathEscape(rname)+"/regenerateKeys", map[string]string{"key_type": keyType}, nil)
	})
	regen.Flags().StringVar(&keyType, "key-type", "primary", "primary or secondary")
	var requestFile, deployment string
	invoke := named("invoke", "Score a request file and print the answer", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.invokeEndpoint(cmd, c, ws, rname, deployment, requestFile)
	})
	invoke.Flags().StringVarP(&requestFile, "request-file", "r", "", "JSON request body")
	invoke.Flags().StringVarP(&deployment, "deployment-name", "d", "", "send to this deployment, whatever the traffic split")
	_ = invoke.MarkFlagRequired("request-file")

	list := a.listCommand("List online endpoints", endpointsPath)
	ep.AddCommand(create, update, show, list, del, creds, regen, invoke)
	return ep
}

// invokeEndpoint posts a request file to the scoring URI with the
// endpoint's credential, as az ml online-endpoint invoke does.
func (a *app) invokeEndpoint(cmd *cobra.Command, c *wharfhttp.Client, ws, name, deployment, requestFile string) error {
	var ep struct {
		ScoringURI string `json:"scoring_uri"`
		AuthMode   string `json:"auth_mode"`
	}
	if err := c.Do(cmd.Context(), "GET", endpointsPath(ws)+"/"+url.PathEscape(name), nil, &ep); err != nil {
		return err
	}
	var creds struct {
		PrimaryKey  string `json:"primaryKey"`
		AccessToken string `json:"accessToken"`
	}
	if err := c.Do(cmd.Context(), "POST", endpointsPath(ws)+"/"+url.PathEscape(name)+"/listKeys", struct{}{}, &creds); err != nil {
		return err
	}
	body, err := os.Open(requestFile)
	if err != nil {
		return wharf.Errorf(wharf.EINVALID, "--request-file: %s", unwrapPathErr(err))
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, ep.ScoringURI, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	tok := creds.PrimaryKey
	if tok == "" {
		tok = creds.AccessToken
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if deployment != "" {
		req.Header.Set("azureml-model-deployment", deployment)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach %s: %s", ep.ScoringURI, err.Error())
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return wharf.Errorf(fmt.Sprintf("HTTP%d", resp.StatusCode), "scoring failed: %s", strings.TrimSpace(string(out)))
	}
	// az prints the response body as a JSON string.
	return a.print(string(out))
}

// deploymentSpec is the managed online deployment YAML. Keys Wharf
// records without acting on are listed so that files written for Azure
// load unchanged.
type deploymentSpec struct {
	Name                      string            `yaml:"name"`
	EndpointName              string            `yaml:"endpoint_name"`
	Model                     *yaml.Node        `yaml:"model"`
	CodeConfiguration         *codeConfig       `yaml:"code_configuration"`
	Environment               *yaml.Node        `yaml:"environment"`
	EnvironmentVariables      map[string]string `yaml:"environment_variables"`
	InstanceType              string            `yaml:"instance_type"`
	InstanceCount             int               `yaml:"instance_count"`
	AppInsightsEnabled        bool              `yaml:"app_insights_enabled"`
	ScaleSettings             map[string]any    `yaml:"scale_settings"`
	RequestSettings           *requestSettings  `yaml:"request_settings"`
	LivenessProbe             *probe            `yaml:"liveness_probe"`
	ReadinessProbe            *probe            `yaml:"readiness_probe"`
	DataCollector             map[string]any    `yaml:"data_collector"`
	EgressPublicNetworkAccess string            `yaml:"egress_public_network_access"`
	ModelMountPath            string            `yaml:"model_mount_path"`
	Description               string            `yaml:"description"`
	Tags                      map[string]string `yaml:"tags"`
	Properties                map[string]string `yaml:"properties"`
	PrivateNetworkConnection  *bool             `yaml:"private_network_connection"`
	WithPackage               *bool             `yaml:"with_package"`
	DefaultDeploymentTemplate map[string]any    `yaml:"default_deployment_template"`
}

type codeConfig struct {
	Code          string `yaml:"code" json:"-"`
	ScoringScript string `yaml:"scoring_script" json:"scoring_script"`
}

type requestSettings struct {
	RequestTimeoutMS                 int `yaml:"request_timeout_ms" json:"request_timeout_ms"`
	MaxConcurrentRequestsPerInstance int `yaml:"max_concurrent_requests_per_instance" json:"max_concurrent_requests_per_instance"`
	MaxQueueWaitMS                   int `yaml:"max_queue_wait_ms" json:"max_queue_wait_ms,omitempty"`
}

type probe struct {
	InitialDelay     int `yaml:"initial_delay" json:"initial_delay"`
	Period           int `yaml:"period" json:"period"`
	Timeout          int `yaml:"timeout" json:"timeout"`
	SuccessThreshold int `yaml:"success_threshold" json:"success_threshold"`
	FailureThreshold int `yaml:"failure_threshold" json:"failure_threshold"`
}

func (a *app) onlineDeploymentCommand() *cobra.Command {
	dep := &cobra.Command{Use: "online-deployment", Short: "Deployments behind online endpoints"}
	var cw wsFlags
	var file, name, endpoint string
	var sets []string
	var allTraffic, noWait bool
	put := func(cmd *cobra.Command) error {
		ws, err := a.workspaceName(cw.workspace)
		if err != nil {
			return err
		}
		if file == "" {
			return usagef("--file is required")
		}
		var spec deploymentSpec
		doc, err := loadYAML(file, sets, &spec)
		if err != nil {
			return err
		}
		if name != "" {
			spec.Name = name
		}
		if endpoint != "" {
			spec.EndpointName = endpoint
		}
		if spec.Name == "" || spec.EndpointName == "" {
			return usagef("--name and --endpoint-name are required (or name: and endpoint_name: in --file)")
		}
		if _, err := serving.ParseMicroBatch(spec.EnvironmentVariables, spec.CodeConfiguration != nil); err != nil {
			var me *serving.MicroBatchError
			if errors.As(err, &me) {
				field := "environment_variables." + me.Var
				return yamlfile.NodeError(doc, doc.Node(field), field, "%s", me.Msg)
			}
			return err
		}
		c, _, err := a.client()
		if err != nil {
			return err
		}
		model, err := a.deploymentModel(cmd, c, ws, doc.Dir(), spec)
		if err != nil {
			return err
		}
		stored := map[string]any{"instance_type": spec.InstanceType, "instance_count": max(spec.InstanceCount, 1),
			"environment_variables": spec.EnvironmentVariables, "description": spec.Description, "tags": spec.Tags,
			"app_insights_enabled": spec.AppInsightsEnabled, "egress_public_network_access": spec.EgressPublicNetworkAccess}
		rs := requestSettings{RequestTimeoutMS: 5000, MaxConcurrentRequestsPerInstance: 1}
		if spec.RequestSettings != nil {
			if spec.RequestSettings.RequestTimeoutMS > 0 {
				rs.RequestTimeoutMS = spec.RequestSettings.RequestTimeoutMS
			}
			if spec.RequestSettings.MaxConcurrentRequestsPerInstance > 0 {
				rs.MaxConcurrentRequestsPerInstance = spec.RequestSettings.MaxConcurrentRequestsPerInstance
			}
		}
		stored["request_settings"] = rs
		for k, p := range map[string]*probe{"liveness_probe": spec.LivenessProbe, "readiness_probe": spec.ReadinessProbe} {
			if p != nil {
				stored[k] = p
			}
		}
		if spec.DataCollector != nil {
			stored["data_collector"] = spec.DataCollector
		}
		if cc := spec.CodeConfiguration; cc != nil {
			code := cc.Code
			if !filepath.IsAbs(code) {
				code = filepath.Join(doc.Dir(), code)
			}
			digest, kind, _, _, err := a.uploadLocal(cmd.Context(), c, ws, code, "code")
			if err != nil {
				return err
			}
			if kind != "folder" {
				return wharf.Errorf(wharf.EINVALID, "%s: code_configuration.code must be a folder", file).WithField("code_configuration.code")
			}
			if _, err := os.Stat(filepath.Join(code, cc.ScoringScript)); err != nil || cc.ScoringScript == "" {
				return wharf.Errorf(wharf.EINVALID, "%s: scoring_script %q is not in %s", file, cc.ScoringScript, code).WithField("code_configuration.scoring_script")
			}
			stored["code_configuration"] = map[string]string{"code_digest": digest, "scoring_script": cc.ScoringScript,
				"code_path": resolve.UploadURI(digest, scheduler.KindFolder, filepath.Base(code))}
		}
		if spec.Environment != nil {
			env, err := a.deploymentEnvironment(cmd, c, ws, doc, spec.Environment)
			if err != nil {
				return err
			}
			stored["environment"] = env
		}
		var out map[string]any
		if err := c.Do(cmd.Context(), "PUT", endpointsPath(ws)+"/"+url.PathEscape(spec.EndpointName)+"/deployments/"+url.PathEscape(spec.Name),
			map[string]any{"model": model, "spec": stored}, &out); err != nil {
			return err
		}
		if !noWait {
			// Like az, create returns once the deployment is serving, or
			// fails with the reason it could not start.
			out, err = awaitProvisioned(cmd.Context(), c, endpointsPath(ws)+"/"+url.PathEscape(spec.EndpointName)+"/deployments/"+url.PathEscape(spec.Name), out)
			if err != nil {
				return err
			}
			if out["provisioning_state"] == "Failed" {
				return wharf.Errorf("DeploymentFailed", "deployment %s failed to start: %v", spec.Name, out["error"])
			}
		}
		if allTraffic {
			if err := c.Do(cmd.Context(), "PUT", endpointsPath(ws)+"/"+url.PathEscape(spec.EndpointName),
				map[string]any{"traffic": map[string]int{spec.Name: 100}}, nil); err != nil {
				return err
			}
		}
		return a.print(out)
	}
	create := &cobra.Command{Use: "create", Short: "Create (or update) a deployment", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return put(cmd) }}
	update := &cobra.Command{Use: "update", Short: "Update a deployment", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return put(cmd) }}
	for _, cmd := range []*cobra.Command{create, update} {
		f := cmd.Flags()
		f.StringVarP(&file, "file", "f", "", "online deployment YAML")
		f.StringVarP(&name, "name", "n", "", "deployment name (overrides the YAML's)")
		f.StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint (overrides the YAML's endpoint_name)")
		// az's argument parser accepts --endpoint as an abbreviation, and
		// the MLOps pipelines write it that way.
		f.StringVar(&endpoint, "endpoint", "", "same as --endpoint-name")
		_ = f.MarkHidden("endpoint")
		f.StringArrayVar(&sets, "set", nil, "override a YAML field")
		f.BoolVar(&noWait, "no-wait", false, "return before the deployment is serving")
		cw.add(cmd)
	}
	create.Flags().BoolVar(&allTraffic, "all-traffic", false, "send all of the endpoint's traffic to this deployment")

	var rw wsFlags
	var rname, rendpoint string
	named := a.namedVerbs(&rw, &rname, "deployment name", false, &rendpoint)
	show := named("show", "Show a deployment", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, endpointsPath(ws)+"/"+url.PathEscape(rendpoint)+"/deployments/"+url.PathEscape(rname))
	})
	list := named("list", "List an endpoint's deployments", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, endpointsPath(ws)+"/"+url.PathEscape(rendpoint)+"/deployments")
	})
	var yes bool
	del := named("delete", "Delete a deployment that takes no traffic", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "DELETE", endpointsPath(ws)+"/"+url.PathEscape(rendpoint)+"/deployments/"+url.PathEscape(rname), nil, nil)
	})
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt (accepted for az compatibility)")
	var lines int
	logs := named("get-logs", "Print the end of a deployment's log (worker output, environment build)", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		body, _, err := c.Get(cmd.Context(), endpointsPath(ws)+"/"+url.PathEscape(rendpoint)+"/deployments/"+url.PathEscape(rname)+"/logs?lines="+strconv.Itoa(lines))
		if err != nil {
			return err
		}
		defer body.Close()
		_, err = io.Copy(a.stdout, body)
		return err
	})
	logs.Flags().IntVarP(&lines, "lines", "l", 200, "how many lines from the end")
	dep.AddCommand(create, update, show, list, del, logs)
	return dep
}

// deploymentModel pins the deployment's model: a reference as written, or
// an inline path registered as a new version first.
func (a *app) deploymentModel(cmd *cobra.Command, c *wharfhttp.Client, ws, base string, spec deploymentSpec) (string, error) {
	n := spec.Model
	switch {
	case n == nil:
		return "", wharf.Errorf(wharf.EINVALID, "model is required").WithField("model")
	case n.Kind == yaml.ScalarNode:
		return n.Value, nil
	case n.Kind == yaml.MappingNode:
		var inline struct {
			Name    string `yaml:"name"`
			Version string `yaml:"version"`
			Path    string `yaml:"path"`
			Type    string `yaml:"type"`
		}
		if err := n.Decode(&inline); err != nil {
			return "", wharf.Errorf(wharf.EINVALID, "line %d: model: %s", n.Line, err.Error()).WithField("model")
		}
		if inline.Path == "" {
			return "", wharf.Errorf(wharf.EINVALID, "line %d: an inline model needs a path", n.Line).WithField("model.path")
		}
		if inline.Name == "" {
			inline.Name = spec.EndpointName + "-" + spec.Name + "-model"
		}
		local := inline.Path
		if !filepath.IsAbs(local) {
			local = filepath.Join(base, local)
		}
		out, err := a.registerOrReuseModel(cmd, c, ws, modelSpec{Name: inline.Name, Version: inline.Version, Type: inline.Type}, local)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%v:%v", out["name"], out["version"]), nil
	}
	return "", wharf.Errorf(wharf.EINVALID, "line %d: model must be a reference or a mapping", n.Line).WithField("model")
}

// verbFunc runs a verb in workspace ws with an API client.
type verbFunc func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error

// namedVerbs returns a maker of clientCommand verbs on one resource named
// by --name/-n (what its help calls it), bound to name: an endpoint, or
// with endpoint set a deployment, whose --endpoint-name/-e it binds too.
// --endpoint-name is required, and --name where nameRequired.
func (a *app) namedVerbs(w *wsFlags, name *string, what string, nameRequired bool, endpoint *string) func(use, short string, run verbFunc) *cobra.Command {
	return func(use, short string, run verbFunc) *cobra.Command {
		cmd := a.clientCommand(w, use, short, run)
		cmd.Flags().StringVarP(name, "name", "n", "", what)
		if nameRequired {
			_ = cmd.MarkFlagRequired("name")
		}
		if endpoint != nil {
			cmd.Flags().StringVarP(endpoint, "endpoint-name", "e", "", "endpoint name")
			_ = cmd.MarkFlagRequired("endpoint-name")
		}
		return cmd
	}
}

// clientCommand is a verb that runs against one workspace (from w) with an
// API client; it adds w's flags.
func (a *app) clientCommand(w *wsFlags, use, short string, run verbFunc) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		ws, err := a.workspaceName(w.workspace)
		if err != nil {
			return err
		}
		c, _, err := a.client()
		if err != nil {
			return err
		}
		return run(cmd, ws, c)
	}}
	w.add(cmd)
	return cmd
}

// awaitProvisioned polls the deployment at path, whose last answer was out,
// until its provisioning state is no longer Creating, and returns its last
// answer.
func awaitProvisioned(ctx context.Context, c *wharfhttp.Client, path string, out map[string]any) (map[string]any, error) {
	for out["provisioning_state"] == "Creating" {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		out = nil
		if err := c.Do(ctx, "GET", path, nil, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deploymentEnvironment pins an online or batch deployment's environment
// as a job's is pinned, so that it is built the same way: a registered
// one by reference, an inline one (image and conda_file, the file
// relative to the deployment's) from its definition.
func (a *app) deploymentEnvironment(cmd *cobra.Command, c *wharfhttp.Client, ws string, doc *yamlfile.Document, n *yaml.Node) (*scheduler.EnvSpec, error) {
	var ref string
	var e resolve.Environment
	if n.Kind == yaml.ScalarNode {
		r, err := jobspec.ParseAssetRef(n.Value)
		if err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "line %d: environment: %s", n.Line, err.Error()).WithField("environment")
		}
		asset, found, err := newAPIResolver(cmd.Context(), c, ws).fetch(wharf.AssetEnvironment, r)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, wharf.Errorf(wharf.EINVALID, "line %d: environment %s not found", n.Line, r.String()).WithField("environment")
		}
		if err := json.Unmarshal(asset.Spec, &e); err != nil {
			return nil, fmt.Errorf("environment %s:%s cannot be read: %w", asset.Name, asset.Version, err)
		}
		ref = asset.Name + ":" + asset.Version
	} else {
		spec, err := jobspec.InlineEnvironment(doc, n, "environment")
		if err != nil {
			return nil, err
		}
		if e, err = resolve.EnvironmentOf(spec); err != nil {
			return nil, err
		}
	}
	return resolve.DeploymentEnvironment(ref, e), nil
}
