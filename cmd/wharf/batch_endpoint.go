package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
)

func batchEndpointsPath(ws string) string {
	return "/api/v1/workspaces/" + url.PathEscape(ws) + "/batchEndpoints"
}

// batchEndpointSpec is the batch endpoint YAML.
type batchEndpointSpec struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
	AuthMode    string            `yaml:"auth_mode"`
	Defaults    struct {
		DeploymentName string `yaml:"deployment_name"`
	} `yaml:"defaults"`
}

// batchRunSettings are the settings of a batch deployment, written at the
// top level (the flat form) or under settings: (type: model).
type batchRunSettings struct {
	MaxConcurrencyPerInstance int               `yaml:"max_concurrency_per_instance"`
	MiniBatchSize             int               `yaml:"mini_batch_size"`
	OutputAction              string            `yaml:"output_action"`
	OutputFileName            string            `yaml:"output_file_name"`
	RetrySettings             *batchRetry       `yaml:"retry_settings"`
	ErrorThreshold            *int              `yaml:"error_threshold"`
	LoggingLevel              string            `yaml:"logging_level"`
	EnvironmentVariables      map[string]string `yaml:"environment_variables"`
}

type batchRetry struct {
	MaxRetries *int `yaml:"max_retries"`
	Timeout    *int `yaml:"timeout"`
}

// batchDeploymentSpec is the batch deployment YAML in either form.
type batchDeploymentSpec struct {
	batchRunSettings  `yaml:",inline"`
	Name              string            `yaml:"name"`
	EndpointName      string            `yaml:"endpoint_name"`
	Type              string            `yaml:"type"`
	Description       string            `yaml:"description"`
	Tags              map[string]string `yaml:"tags"`
	Model             *yaml.Node        `yaml:"model"`
	CodeConfiguration *codeConfig       `yaml:"code_configuration"`
	Environment       *yaml.Node        `yaml:"environment"`
	Compute           string            `yaml:"compute"`
	Resources         struct {
		InstanceCount int `yaml:"instance_count"`
	} `yaml:"resources"`
	Settings *batchRunSettings `yaml:"settings"`
}

func (a *app) batchEndpointCommand() *cobra.Command {
	be := &cobra.Command{Use: "batch-endpoint", Short: "Batch endpoints (score datasets as jobs)"}
	var cw wsFlags
	var file, name string
	var sets []string
	create := &cobra.Command{Use: "create", Short: "Create or update a batch endpoint", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(cw.workspace)
			if err != nil {
				return err
			}
			var spec batchEndpointSpec
			if file != "" {
				if _, err := loadYAML(file, sets, &spec); err != nil {
					return err
				}
			}
			if name != "" {
				spec.Name = name
			}
			if spec.Name == "" {
				return usagef("--name is required (or name: in --file)")
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", batchEndpointsPath(ws)+"/"+url.PathEscape(spec.Name), map[string]any{
				"description": spec.Description, "tags": spec.Tags, "default_deployment": spec.Defaults.DeploymentName}, &out); err != nil {
				return err
			}
			return a.print(out)
		}}
	create.Flags().StringVarP(&file, "file", "f", "", "batch endpoint YAML")
	create.Flags().StringVarP(&name, "name", "n", "", "endpoint name (overrides the YAML's)")
	create.Flags().StringArrayVar(&sets, "set", nil, "override a YAML field")
	cw.add(create)

	var rw wsFlags
	var rname string
	named := a.namedVerbs(&rw, &rname, "endpoint name", true, nil)
	show := named("show", "Show a batch endpoint", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, batchEndpointsPath(ws)+"/"+url.PathEscape(rname))
	})
	var yes bool
	del := named("delete", "Delete a batch endpoint and its deployments", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "DELETE", batchEndpointsPath(ws)+"/"+url.PathEscape(rname), nil, nil)
	})
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt (accepted for az compatibility)")
	var deployment, input, inputType, inputsFile string
	var invokeSets []string
	invoke := named("invoke", "Score an input, or run a pipeline deployment, as a job; prints the job at once", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		body := map[string]any{"deployment": deployment}
		if input != "" {
			in, err := a.batchInput(cmd, c, ws, input, inputType)
			if err != nil {
				return err
			}
			body["input"] = in
		}
		if inputsFile != "" || len(invokeSets) > 0 {
			// A pipeline deployment's inputs and outputs, written as a
			// pipeline job's; local data is uploaded.
			inputs, outputs, err := jobspec.InvocationDocument(inputsFile, invokeSets, a.documentUploader(cmd.Context(), c, ws))
			if err != nil {
				return err
			}
			body["inputs"], body["outputs"] = inputs, outputs
		}
		if input == "" && body["inputs"] == nil {
			return usagef("give --input, or a pipeline deployment's inputs with --file or --set inputs.<name>=...")
		}
		// The server resolves the input; what was local is uploaded and
		// named by its content.
		var out any
		if err := c.Do(cmd.Context(), "POST", batchEndpointsPath(ws)+"/"+url.PathEscape(rname)+"/invoke", body, &out); err != nil {
			return err
		}
		return a.print(out)
	})
	invoke.Flags().StringVarP(&deployment, "deployment-name", "d", "", "deployment (default: the endpoint's default)")
	invoke.Flags().StringVar(&input, "input", "", "local file or folder, azureml:<data>@latest, or azureml://datastores/... path")
	invoke.Flags().StringVar(&inputType, "input-type", "", "uri_file or uri_folder (accepted; the input says which it is)")
	invoke.Flags().StringVarP(&inputsFile, "file", "f", "", "YAML with the inputs and outputs of a pipeline deployment")
	invoke.Flags().StringArrayVar(&invokeSets, "set", nil, "set an input or output of a pipeline deployment (inputs.<name>=<value>)")
	listJobs := named("list-jobs", "List the jobs a batch endpoint's invocations made", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, batchEndpointsPath(ws)+"/"+url.PathEscape(rname)+"/jobs")
	})

	list := a.listCommand("List batch endpoints", batchEndpointsPath)
	be.AddCommand(create, show, list, del, invoke, listJobs)
	return be
}

// batchInput names an invocation's input for the server to resolve: a
// reference or datastore path as given, a local file or folder by the
// content it is uploaded as.
func (a *app) batchInput(cmd *cobra.Command, c *wharfhttp.Client, ws, input, inputType string) (map[string]string, error) {
	if strings.HasPrefix(input, "azureml:") {
		return map[string]string{"type": inputType, "path": input}, nil
	}
	digest, kind, _, _, err := a.uploadLocal(cmd.Context(), c, ws, input, "input")
	if err != nil {
		return nil, err
	}
	if inputType == "" {
		inputType = "uri_file"
		if kind == scheduler.KindFolder {
			inputType = "uri_folder"
		}
	}
	return map[string]string{"type": inputType, "path": resolve.UploadURI(digest, kind, filepath.Base(input))}, nil
}

func (a *app) batchDeploymentCommand() *cobra.Command {
	bd := &cobra.Command{Use: "batch-deployment", Short: "Deployments behind batch endpoints"}
	var cw wsFlags
	var file, name, endpoint string
	var sets []string
	var setDefault, noWait bool
	create := &cobra.Command{Use: "create", Short: "Create or update a batch deployment (flat, type: model or type: pipeline form)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(cw.workspace)
			if err != nil {
				return err
			}
			if file == "" {
				return usagef("--file is required")
			}
			if jobspec.IsPipelineDeployment(file, sets) {
				return a.createPipelineDeployment(cmd, ws, file, sets, name, endpoint, setDefault)
			}
			var spec batchDeploymentSpec
			doc, err := loadYAML(file, sets, &spec)
			if err != nil {
				return err
			}
			if err := deploymentNames(&spec.Name, &spec.EndpointName, name, endpoint); err != nil {
				return err
			}
			run := spec.batchRunSettings
			if spec.Settings != nil {
				run = *spec.Settings
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			model, err := a.deploymentModel(cmd, c, ws, doc.Dir(), deploymentSpec{Model: spec.Model, Name: spec.Name, EndpointName: spec.EndpointName})
			if err != nil {
				return err
			}
			compute, err := jobspec.ParseResourceRef(spec.Compute)
			if err != nil || compute == "" {
				return wharf.Errorf(wharf.EINVALID, "%s: compute is required (azureml:<cluster>)", file).WithField("compute")
			}
			stored := map[string]any{"compute": compute, "instance_count": max(spec.Resources.InstanceCount, 1),
				"max_concurrency_per_instance": max(run.MaxConcurrencyPerInstance, 1), "mini_batch_size": run.MiniBatchSize,
				"output_action": strings.ToLower(run.OutputAction), "output_file_name": run.OutputFileName,
				"environment_variables": run.EnvironmentVariables, "logging_level": run.LoggingLevel,
				"max_retries": 3, "timeout": 30, "error_threshold": -1, "description": spec.Description, "tags": spec.Tags}
			if run.MiniBatchSize == 0 {
				stored["mini_batch_size"] = 10
			}
			if r := run.RetrySettings; r != nil {
				if r.MaxRetries != nil {
					stored["max_retries"] = *r.MaxRetries
				}
				if r.Timeout != nil {
					stored["timeout"] = *r.Timeout
				}
			}
			if run.ErrorThreshold != nil {
				stored["error_threshold"] = *run.ErrorThreshold
			}
			if cc := spec.CodeConfiguration; cc != nil {
				cfg, err := a.batchCode(cmd, c, ws, file, doc.Dir(), cc)
				if err != nil {
					return err
				}
				stored["code_configuration"] = cfg
			}
			if spec.Environment != nil {
				env, err := a.deploymentEnvironment(cmd, c, ws, doc, spec.Environment)
				if err != nil {
					return err
				}
				stored["environment"] = env
			}
			path := batchEndpointsPath(ws) + "/" + url.PathEscape(spec.EndpointName) + "/deployments/" + url.PathEscape(spec.Name)
			var out map[string]any
			if err := c.Do(cmd.Context(), "PUT", path, map[string]any{"model": model, "spec": stored, "set_default": setDefault}, &out); err != nil {
				return err
			}
			if !noWait {
				// Like az, create returns once the deployment is
				// provisioned: here, once its jobs' Python is warm.
				if out, err = awaitProvisioned(cmd.Context(), c, path, out); err != nil {
					return err
				}
				if out["provisioning_state"] == "Failed" {
					return wharf.Errorf("DeploymentFailed", "deployment %s failed: %v", spec.Name, out["error"])
				}
				switch warm, _ := out["warm"].(string); warm {
				case "", "ready", "not needed", "off":
				default:
					fmt.Fprintf(a.stderr, "WARNING: the deployment's Python could not be warmed (%s); its jobs start their workers afresh\n", warm)
				}
			}
			return a.print(out)
		}}
	f := create.Flags()
	f.StringVarP(&file, "file", "f", "", "batch deployment YAML")
	f.StringVarP(&name, "name", "n", "", "deployment name (overrides the YAML's)")
	f.StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint (overrides the YAML's endpoint_name)")
	f.StringVar(&endpoint, "endpoint", "", "same as --endpoint-name")
	_ = f.MarkHidden("endpoint")
	f.StringArrayVar(&sets, "set", nil, "override a YAML field")
	f.BoolVar(&setDefault, "set-default", false, "make it the endpoint's default deployment")
	f.BoolVar(&noWait, "no-wait", false, "return before the deployment's Python is warm (its first jobs may start slower)")
	cw.add(create)

	var rw wsFlags
	var rname, rendpoint string
	named := a.namedVerbs(&rw, &rname, "deployment name", true, &rendpoint)
	deploymentPath := func(ws string) string {
		return batchEndpointsPath(ws) + "/" + url.PathEscape(rendpoint) + "/deployments/" + url.PathEscape(rname)
	}
	show := named("show", "Show a batch deployment", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, deploymentPath(ws))
	})
	var yes, noWaitDelete bool
	del := named("delete", "Delete a batch deployment", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "DELETE", deploymentPath(ws), nil, nil)
	})
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt (accepted for az compatibility)")
	del.Flags().BoolVar(&noWaitDelete, "no-wait", false, "accepted for az compatibility; deleting is immediate")

	var lw wsFlags
	var lendpoint string
	list := a.clientCommand(&lw, "list", "List the deployments of a batch endpoint", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.getAndPrint(cmd, batchEndpointsPath(ws)+"/"+url.PathEscape(lendpoint)+"/deployments")
	})
	list.Flags().StringVarP(&lendpoint, "endpoint-name", "e", "", "endpoint name")
	_ = list.MarkFlagRequired("endpoint-name")
	bd.AddCommand(create, show, list, del)
	return bd
}

// batchCode uploads a batch deployment's code folder and checks that its
// scoring script, the batch driver, is in it.
func (a *app) batchCode(cmd *cobra.Command, c *wharfhttp.Client, ws, file, base string, cc *codeConfig) (map[string]string, error) {
	if cc.Code == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: code_configuration.code is required", file).WithField("code_configuration.code")
	}
	code := cc.Code
	if !filepath.IsAbs(code) {
		code = filepath.Join(base, code)
	}
	if st, err := os.Stat(code); err != nil || !st.IsDir() {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: code_configuration.code %s is not a folder", file, code).WithField("code_configuration.code")
	}
	if cc.ScoringScript == "" || !filepath.IsLocal(cc.ScoringScript) {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: code_configuration.scoring_script %q must name a file in %s", file, cc.ScoringScript, code).WithField("code_configuration.scoring_script")
	}
	if st, err := os.Stat(filepath.Join(code, cc.ScoringScript)); err != nil || st.IsDir() {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: scoring_script %q is not in %s", file, cc.ScoringScript, code).WithField("code_configuration.scoring_script")
	}
	digest, _, _, _, err := a.uploadLocal(cmd.Context(), c, ws, code, "code")
	if err != nil {
		return nil, err
	}
	return map[string]string{"code_digest": digest, "scoring_script": cc.ScoringScript,
		"code_path": resolve.UploadURI(digest, scheduler.KindFolder, filepath.Base(code))}, nil
}

// createPipelineDeployment creates a batch deployment of type pipeline:
// its component (or job_definition) is read, its files inlined and their
// content uploaded, for the server to run at every invocation.
func (a *app) createPipelineDeployment(cmd *cobra.Command, ws, file string, sets []string, name, endpoint string, setDefault bool) error {
	c, _, err := a.client()
	if err != nil {
		return err
	}
	d, err := jobspec.LoadPipelineDeployment(file, sets, newAPIResolver(cmd.Context(), c, ws), a.documentUploader(cmd.Context(), c, ws))
	if err != nil {
		return err
	}
	if err := deploymentNames(&d.Name, &d.EndpointName, name, endpoint); err != nil {
		return err
	}
	spec := map[string]any{"job_definition": d.JobDefinition, "settings": d.Settings, "description": d.Description, "tags": d.Tags}
	if d.Job != nil {
		spec["job"] = d.Job
	}
	var out any
	path := batchEndpointsPath(ws) + "/" + url.PathEscape(d.EndpointName) + "/deployments/" + url.PathEscape(d.Name)
	if err := c.Do(cmd.Context(), "PUT", path, map[string]any{"type": "pipeline", "spec": spec, "set_default": setDefault}, &out); err != nil {
		return err
	}
	return a.print(out)
}

// deploymentNames applies --name and --endpoint-name over a batch
// deployment file's name and endpoint_name, which must then be set.
func deploymentNames(name, endpoint *string, nameFlag, endpointFlag string) error {
	if nameFlag != "" {
		*name = nameFlag
	}
	if endpointFlag != "" {
		*endpoint = endpointFlag
	}
	if *name == "" || *endpoint == "" {
		return usagef("--name and --endpoint-name are required (or name: and endpoint_name: in --file)")
	}
	return nil
}
