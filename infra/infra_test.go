package infra

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wharfml/wharf/yamlfile"
)

// writeConfig stores src in a temporary config file and returns its path.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config-infra.yml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const minimal = `variables:
  namespace: mlopsv2
  postfix: 0659
  environment: prod
`

func TestLoadProd(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "config-infra-prod.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "mlopsv2" || c.Postfix != "0659" || c.Environment != "prod" || c.Location != "westus" {
		t.Errorf("core fields = %q %q %q %q", c.Namespace, c.Postfix, c.Environment, c.Location)
	}
	if !c.EnableComputeCluster || c.EnableMonitoring {
		t.Errorf("flags = compute %v monitoring %v, want true false", c.EnableComputeCluster, c.EnableMonitoring)
	}
	if c.File != filepath.Join("testdata", "config-infra-prod.yml") {
		t.Errorf("File = %q", c.File)
	}
	vars := map[string]string{
		"resource_group":               "rg-mlopsv2-0659prod",
		"container_registry":           "crmlopsv20659prod",
		"terraform_st_location":        "westus",
		"terraform_st_resource_group":  "rg-mlopsv2-0659prod-tf",
		"terraform_st_storage_account": "stmlopsv20659prodtf",
		"terraform_version":            "0.14.7",
		"ap_vm_image":                  "ubuntu-20.04",
		"ado_service_connection_rg":    "Azure-ARM-Prod",
	}
	for k, want := range vars {
		if got := c.Vars[k]; got != want {
			t.Errorf("Vars[%q] = %q, want %q", k, got, want)
		}
	}
	names := map[string][2]string{
		"WorkspaceName":   {c.WorkspaceName(), "mlw-mlopsv2-0659prod"},
		"ResourceGroup":   {c.ResourceGroup(), "rg-mlopsv2-0659prod"},
		"KeyVault":        {c.KeyVault(), "kv-mlopsv2-0659prod"},
		"MonitoringStore": {c.MonitoringStore(), "mlw-mlopsv2-0659prod"},
		"StorageAccount":  {c.StorageAccount(), "stmlopsv20659prod"},
	}
	for name, got := range names {
		if got[0] != got[1] {
			t.Errorf("%s() = %q, want %q", name, got[0], got[1])
		}
	}
}

func TestDerivedNames(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  [5]string // workspace, resource group, key vault, monitoring, storage
	}{
		{"template formulas", "", [5]string{"mlw-mlopsv2-0659prod", "rg-mlopsv2-0659prod", "kv-mlopsv2-0659prod", "mlw-mlopsv2-0659prod", "stmlopsv20659prod"}},
		{"explicit variables win", `
  aml_workspace: ws-$(environment)
  resource_group: shared-rg
  key_vault: vault$(postfix)
  application_insights: appi-$(namespace)
  storage_account: store1
`, [5]string{"ws-prod", "shared-rg", "vault0659", "appi-mlopsv2", "store1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, minimal+strings.TrimPrefix(tt.extra, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			got := [5]string{c.WorkspaceName(), c.ResourceGroup(), c.KeyVault(), c.MonitoringStore(), c.StorageAccount()}
			if got != tt.want {
				t.Errorf("names = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExpansion(t *testing.T) {
	c, err := Load(writeConfig(t, minimal+`  a: x
  b: $(a)-y
  c: $(b)-$(a)-$(NameSpace)
  d: $(c)/$(c)
  literal: $[variables.a] and $(not closed
  ref_location: at-$(location)
  empty:
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"b":            "x-y",
		"c":            "x-y-x-mlopsv2",
		"d":            "x-y-x-mlopsv2/x-y-x-mlopsv2",
		"literal":      "$[variables.a] and $(not closed",
		"location":     "local",
		"ref_location": "at-local",
		"empty":        "",
	}
	for k, w := range want {
		if got, ok := c.Vars[k]; !ok || got != w {
			t.Errorf("Vars[%q] = %q (present %v), want %q", k, got, ok, w)
		}
	}
	if c.Location != "local" {
		t.Errorf("Location default = %q, want local", c.Location)
	}
	if !c.EnableComputeCluster || c.EnableMonitoring {
		t.Errorf("flag defaults = %v %v, want true false", c.EnableComputeCluster, c.EnableMonitoring)
	}
}

func TestListFormVariables(t *testing.T) {
	c, err := Load(writeConfig(t, `variables:
- name: namespace
  value: mlopsv2
- name: postfix
  value: 0659
- name: environment
  value: dev
  readonly: true
- name: enable_monitoring
  value: "true"
- name: aml_workspace
  value: mlw-$(namespace)-$(postfix)$(environment)
- name: note
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkspaceName() != "mlw-mlopsv2-0659dev" || !c.EnableMonitoring || c.Postfix != "0659" {
		t.Errorf("config = %+v", c)
	}
	if v, ok := c.Vars["note"]; !ok || v != "" {
		t.Errorf("entry without value = %q, %v", v, ok)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // one substring per expected error, in order
	}{
		{"cycle", minimal + "  a: $(b)\n  b: x$(c)\n  c: $(a)\n", []string{
			":5:6: field variables.a: variable reference cycle: a -> b -> c -> a"}},
		{"self cycle", minimal + "  a: pre-$(a)\n", []string{
			":5:6: field variables.a: variable reference cycle: a -> a"}},
		{"unknown reference", minimal + "  resource_group: rg-$(namespce)\n", []string{
			`:5:19: field variables.resource_group: unknown variable "namespce" referenced as $(namespce)`}},
		{"missing namespace", "variables:\n  postfix: 0659\n  environment: prod\n", []string{
			`config-infra.yml:1: field variables.namespace: required variable is missing`}},
		{"missing two", "variables:\n  namespace: x\n", []string{
			"field variables.postfix: required variable is missing",
			"field variables.environment: required variable is missing"}},
		{"empty postfix", "variables:\n  namespace: x\n  postfix:\n  environment: dev\n", []string{
			":3:11: field variables.postfix: required variable is empty"}},
		{"bad boolean", minimal + "  enable_monitoring: maybe\n", []string{
			`:5:22: field variables.enable_monitoring: expected true or false, got "maybe"`}},
		{"yes is not a pipeline boolean", minimal + "  enable_aml_computecluster: yes\n", []string{
			`:5:30: field variables.enable_aml_computecluster: expected true or false, got "yes"`}},
		{"namespace with dash", "variables:\n  namespace: mlops-v2\n  postfix: 1\n  environment: dev\n", []string{
			`:2:14: field variables.namespace: namespace "mlops-v2" may contain only letters and digits`}},
		{"postfix via reference", "variables:\n  namespace: ns\n  suffix: a_b\n  postfix: $(suffix)\n  environment: dev\n", []string{
			`:4:12: field variables.postfix: postfix "a_b" may contain only letters and digits`}},
		{"environment uppercase", "variables:\n  namespace: ns\n  postfix: 1\n  environment: Prod\n", []string{
			`:4:16: field variables.environment: environment "Prod" must be a short lowercase word`}},
		{"environment too long", "variables:\n  namespace: ns\n  postfix: 1\n  environment: productionenv\n", []string{
			`field variables.environment: environment "productionenv" must be a short lowercase word`}},
		{"cluster max not a number", minimal + "  cpu_cluster_max_instances: many\n  batch_cluster_max_instances: -1\n", []string{
			`:5:30: field variables.cpu_cluster_max_instances: expected a non-negative integer, got "many"`,
			`:6:32: field variables.batch_cluster_max_instances: expected a non-negative integer, got "-1"`}},
		{"cluster size", minimal + "  cpu_cluster_size: big one\n", []string{
			`field variables.cpu_cluster_size: expected a VM size such as Standard_DS3_v2, got "big one"`}},
		{"bad explicit workspace name", minimal + "  aml_workspace: my workspace\n", []string{
			`:5:18: field variables.aml_workspace: workspace name "my workspace" is not a valid resource name`}},
		{"nested value", minimal + "  tags:\n    team: ml\n", []string{
			`:6:5: field variables.tags: expected a plain value, got a mapping`}},
		{"variables is a string", "variables: hello\n", []string{
			`:1:12: field variables: expected a mapping of name: value or a list of {name, value} entries`}},
		{"no variables", "stages: []\n", []string{
			`:1:1: field stages: unknown field "stages" (allowed: variables)`}},
		{"only schema", "$schema: https://example.com/s.json\n", []string{
			`config-infra.yml: field variables: missing section`}},
		{"empty variables", "variables:\n", []string{
			`field variables.namespace: required variable is missing`,
			`field variables.postfix: required variable is missing`,
			`field variables.environment: required variable is missing`}},
		{"list duplicates", "variables:\n- name: namespace\n  value: a\n- name: Namespace\n  value: b\n- name: postfix\n  value: 1\n- name: environment\n  value: dev\n", []string{
			`:5:10: field variables[1].value: variable "Namespace" is defined more than once (first at line 3)`}},
		{"list group and typo", "variables:\n- group: prod-secrets\n- name: namespace\n  valeu: a\n", []string{
			`:2:3: field variables[0].group: variable groups live in Azure DevOps`,
			`:4:3: field variables[1].valeu: unknown field "valeu" (allowed: name, value, readonly, group, template); did you mean "value"?`}},
		{"datastore type", minimal + "  datastore_type: nfs\n", []string{
			`:5:19: field variables.datastore_type: expected local, azure_blob or s3, got "nfs"`}},
		{"s3 without bucket", minimal + "  datastore_type: s3\n", []string{
			`:5:19: field variables.datastore_type: an s3 datastore needs the variable datastore_bucket`}},
		{"all collected", "variables:\n  namespace: a-b\n  postfix: 1\n  environment: dev\n  enable_monitoring: nope\n  x: $(y)\n", []string{
			`:2:14: field variables.namespace`,
			`:5:22: field variables.enable_monitoring`,
			`:6:6: field variables.x: unknown variable "y"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.src)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			got := yamlfile.AsList(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Error(), w) {
					t.Errorf("error %d = %q\nwant it to contain %q", i, got[i].Error(), w)
				}
				if got[i].File != path {
					t.Errorf("error %d names file %q, want %q", i, got[i].File, path)
				}
			}
			var e *yamlfile.Error
			if !errors.As(err, &e) {
				t.Errorf("errors.As(*yamlfile.Error) failed for %T", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want not-exist", err)
	}
}

func TestFromDocumentWithOverrides(t *testing.T) {
	doc, err := yamlfile.Load(filepath.Join("testdata", "config-infra-prod.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"variables.postfix=0660", "variables.enable_monitoring=true"} {
		if err := doc.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	c, err := FromDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkspaceName() != "mlw-mlopsv2-0660prod" || !c.EnableMonitoring {
		t.Errorf("after overrides: workspace %q monitoring %v", c.WorkspaceName(), c.EnableMonitoring)
	}

	if err := doc.Set("variables.enable_monitoring=sometimes"); err != nil {
		t.Fatal(err)
	}
	_, err = FromDocument(doc)
	want := `field variables.enable_monitoring: expected true or false, got "sometimes" (from --set variables.enable_monitoring=sometimes)`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error = %v\nwant suffix %q", err, want)
	}
}

func res(kind, name string, props ...string) Resource {
	r := Resource{Kind: kind, Name: name, Properties: map[string]string{}}
	for i := 0; i+1 < len(props); i += 2 {
		r.Properties[props[i]] = props[i+1]
	}
	return r
}

func TestDesired(t *testing.T) {
	base := Config{
		Namespace: "mlopsv2", Postfix: "0659", Environment: "prod", Location: "westus",
		Vars: map[string]string{},
	}
	cluster := func(name, size, maxN string) Resource {
		return res(KindCompute, name, "type", "amlcompute", "size", size, "min_instances", "0", "max_instances", maxN, "tier", "dedicated")
	}
	workspace := func(monitoring string) Resource {
		return res(KindWorkspace, "mlw-mlopsv2-0659prod", "resource_group", "rg-mlopsv2-0659prod", "location", "westus",
			"key_vault", "kv-mlopsv2-0659prod", "monitoring_store", monitoring, "environment", "prod")
	}
	datastore := res(KindDatastore, "workspaceblobstore", "type", "local", "default", "true")
	secrets := res(KindSecretStore, "kv-mlopsv2-0659prod")

	tests := []struct {
		name       string
		compute    bool
		monitoring bool
		vars       map[string]string
		want       []Resource
	}{
		{"bare", false, false, nil, []Resource{workspace(""), datastore, secrets}},
		{"monitoring", false, true, nil, []Resource{workspace("mlw-mlopsv2-0659prod"), datastore, secrets,
			res(KindMonitoringStore, "mlw-mlopsv2-0659prod")}},
		{"compute", true, false, nil, []Resource{workspace(""), datastore, secrets,
			cluster("batch-cluster", "Standard_DS3_v2", "5"), cluster("cpu-cluster", "Standard_DS3_v2", "4")}},
		{"compute overrides", true, true,
			map[string]string{"cpu_cluster_size": "Standard_DS2_v2", "cpu_cluster_max_instances": "08", "batch_cluster_max_instances": "1", "application_insights": "appi-x"},
			[]Resource{workspace("appi-x"), datastore, secrets, res(KindMonitoringStore, "appi-x"),
				cluster("batch-cluster", "Standard_DS3_v2", "1"), cluster("cpu-cluster", "Standard_DS2_v2", "8")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.EnableComputeCluster, c.EnableMonitoring = tt.compute, tt.monitoring
			if tt.vars != nil {
				c.Vars = tt.vars
			}
			got := c.Desired()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Desired() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDesiredFromDevFile(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "config-infra-dev.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range c.Desired() {
		kinds = append(kinds, r.Kind+" "+r.Name)
	}
	want := []string{
		"workspace mlw-mlopsv2-0659dev", "datastore workspaceblobstore", "secret_store kv-mlopsv2-0659dev",
		"monitoring_store mlw-mlopsv2-0659dev", "compute batch-cluster", "compute cpu-cluster",
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("Desired() = %q\nwant %q", kinds, want)
	}
	cpu := c.Desired()[5]
	if cpu.Properties["size"] != "Standard_DS2_v2" || cpu.Properties["max_instances"] != "2" {
		t.Errorf("cpu-cluster = %v", cpu.Properties)
	}
}

func TestDiffAndRender(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "config-infra-prod.yml"))
	if err != nil {
		t.Fatal(err)
	}
	desired := c.Desired()

	// What a server might report after the first apply: extra fields that
	// the config does not declare, and an unrelated resource.
	applied := func() []Resource {
		var out []Resource
		for _, r := range desired {
			cp := res(r.Kind, r.Name)
			for k, v := range r.Properties {
				cp.Properties[k] = v
			}
			cp.Properties["id"] = "srv-" + r.Name
			out = append(out, cp)
		}
		return append(out, res(KindCompute, "gpu-cluster", "size", "NC6"))
	}

	tests := []struct {
		name    string
		current func() []Resource
		actions []Action
		empty   bool
		render  string
	}{
		{
			name:    "create everything",
			current: func() []Resource { return nil },
			actions: []Action{Create, Create, Create, Create, Create},
			render: `+ workspace mlw-mlopsv2-0659prod
    + environment = prod
    + key_vault = kv-mlopsv2-0659prod
    + location = westus
    + monitoring_store = ""
    + resource_group = rg-mlopsv2-0659prod
+ datastore workspaceblobstore
    + default = true
    + type = local
+ secret_store kv-mlopsv2-0659prod
+ compute batch-cluster
    + max_instances = 5
    + min_instances = 0
    + size = Standard_DS3_v2
    + tier = dedicated
    + type = amlcompute
+ compute cpu-cluster
    + max_instances = 4
    + min_instances = 0
    + size = Standard_DS3_v2
    + tier = dedicated
    + type = amlcompute

Plan: 5 to create, 0 to update, 0 unchanged.
`,
		},
		{
			name:    "no changes despite server-side extras",
			current: applied,
			actions: []Action{NoOp, NoOp, NoOp, NoOp, NoOp},
			empty:   true,
			render:  "no changes\n",
		},
		{
			name: "update and create",
			current: func() []Resource {
				cur := applied()
				for i := range cur {
					switch cur[i].Name {
					case "cpu-cluster":
						cur[i].Properties["max_instances"] = "5"
						cur[i].Properties["size"] = "Standard DS2"
					case "mlw-mlopsv2-0659prod":
						delete(cur[i].Properties, "monitoring_store") // absent counts as empty
						delete(cur[i].Properties, "location")
					}
				}
				return slicesWithout(cur, "batch-cluster")
			},
			actions: []Action{Update, NoOp, NoOp, Create, Update},
			render: `~ workspace mlw-mlopsv2-0659prod
    ~ location: "" -> westus
+ compute batch-cluster
    + max_instances = 5
    + min_instances = 0
    + size = Standard_DS3_v2
    + tier = dedicated
    + type = amlcompute
~ compute cpu-cluster
    ~ max_instances: 5 -> 4
    ~ size: "Standard DS2" -> Standard_DS3_v2

Plan: 1 to create, 2 to update, 2 unchanged.
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Diff(desired, tt.current())
			var actions []Action
			for _, ch := range plan {
				actions = append(actions, ch.Action)
				if ch.Action == Delete {
					t.Errorf("Diff must never delete, got %v", ch)
				}
			}
			if !reflect.DeepEqual(actions, tt.actions) {
				t.Errorf("actions = %v, want %v", actions, tt.actions)
			}
			if plan.Empty() != tt.empty {
				t.Errorf("Empty() = %v, want %v", plan.Empty(), tt.empty)
			}
			var b strings.Builder
			if err := plan.Render(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.render {
				t.Errorf("Render:\n%s\nwant:\n%s", b.String(), tt.render)
			}
			var again strings.Builder
			_ = Diff(desired, tt.current()).Render(&again)
			if again.String() != b.String() {
				t.Error("Render output is not stable across runs")
			}
		})
	}
}

func slicesWithout(rs []Resource, name string) []Resource {
	var out []Resource
	for _, r := range rs {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return out
}

func TestDiffOrderIndependentOfInput(t *testing.T) {
	desired := []Resource{
		res(KindCompute, "b"), res("custom", "z"), res(KindCompute, "a"), res(KindWorkspace, "w"), res(KindCompute, "a"),
	}
	plan := Diff(desired, []Resource{res(KindCompute, "a", "x", "1")})
	var got []string
	for _, ch := range plan {
		got = append(got, ch.Action.String()+" "+ch.Resource.Kind+"/"+ch.Resource.Name)
	}
	want := []string{"create workspace/w", "no-op compute/a", "create compute/b", "create custom/z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	if ch := plan[1]; ch.Old["x"] != "1" {
		t.Errorf("NoOp change should carry the current properties, got %v", ch.Old)
	}
	if Delete.String() != "delete" || Action(9).String() != "Action(9)" {
		t.Error("Action.String")
	}
}

// TestDesiredObjectStorageDatastore: the datastore_* variables make the
// default datastore a Blob container of storage_account, or an S3 bucket.
func TestDesiredObjectStorageDatastore(t *testing.T) {
	for _, tt := range []struct {
		extra string
		want  Resource
	}{
		{"  datastore_type: azure_blob\n  datastore_endpoint: http://127.0.0.1:10000/devstoreaccount1\n",
			res(KindDatastore, "workspaceblobstore", "type", "azure_blob", "default", "true", "account_name", "stmlopsv20659prod",
				"container_name", "azureml-blobstore", "endpoint", "http://127.0.0.1:10000/devstoreaccount1", "protocol", "")},
		{"  datastore_type: s3\n  datastore_bucket: lake\n  datastore_region: eu-west-1\n  datastore_path_style: true\n",
			res(KindDatastore, "workspaceblobstore", "type", "s3", "default", "true", "bucket", "lake", "endpoint", "",
				"region", "eu-west-1", "path_style", "true")},
	} {
		c, err := Load(writeConfig(t, minimal+tt.extra))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range c.Desired() {
			if r.Kind == KindDatastore {
				found = true
				if !reflect.DeepEqual(r, tt.want) {
					t.Errorf("%s: datastore %+v, want %+v", tt.extra, r, tt.want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no datastore declared", tt.extra)
		}
	}
}
