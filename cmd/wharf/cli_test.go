package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliEnv is a running server plus a CLI configuration directory.
type cliEnv struct {
	t     *testing.T
	srv   *runningServer
	owner string // owner-credentials.json content
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	return newCLIEnvWith(t, func(*serverOptions) {})
}

// newCLIEnvWith is newCLIEnv with server options changed by set.
func newCLIEnvWith(t *testing.T, set func(o *serverOptions)) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	o := serverOptions{dataDir: filepath.Join(dir, "data"), addr: "127.0.0.1:0", tokenTTL: time.Hour, logLevel: "error",
		stepReadOnly: testVenvs()}
	set(&o)
	m, err := startServer(context.Background(), o, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := os.ReadFile(m.OwnerFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dir, "cli"))
	t.Setenv("WHARF_URL", m.HTTP.URL)
	t.Setenv("WHARF_CREDENTIALS", string(b))
	t.Setenv("WHARF_CLIENT_ID", "")
	return &cliEnv{t: t, srv: m, owner: string(b)}
}

// testVenvs are the test suite's Python environments (scripts/test builds
// them), which jobs in the tests run by absolute path: sandboxed steps see
// them only when the server shares them, as an administrator would share a
// team's interpreter with --step-ro-path.
func testVenvs() []string {
	var out []string
	for _, k := range []string{"WHARF_TEST_MLFLOW2_PYTHON", "WHARF_TEST_MLFLOW3_PYTHON", "WHARF_TEST_PYTHON", "WHARF_TEST_TORCH_PYTHON",
		"WHARF_TEST_MPI4PY_PYTHON"} {
		if py := os.Getenv(k); py != "" {
			out = append(out, filepath.Dir(filepath.Dir(py)))
		}
	}
	return out
}

// wharf runs one command line and returns stdout, stderr and the exit code.
func (e *cliEnv) wharf(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.wharf(args...)
	if code != 0 {
		e.t.Fatalf("wharf %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const infraConfig = `variables:
  namespace: mlopsv2
  postfix: 0659
  location: westus
  environment: prod
  enable_aml_computecluster: true
  enable_monitoring: false
  resource_group: rg-$(namespace)-$(postfix)$(environment)
  aml_workspace: mlw-$(namespace)-$(postfix)$(environment)
  key_vault: kv-$(namespace)-$(postfix)$(environment)
`

func TestInfraApplyIsIdempotentAndDryRunChangesNothing(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config-infra-prod.yml", infraConfig)

	// A dry run prints the plan and creates nothing.
	out := e.ok("infra", "apply", "--file", cfg, "--dry-run")
	if !strings.Contains(out, "+ workspace mlw-mlopsv2-0659prod") || !strings.Contains(out, "+ compute cpu-cluster") {
		t.Fatalf("dry-run plan:\n%s", out)
	}
	if _, _, code := e.wharf("ml", "workspace", "show", "-n", "mlw-mlopsv2-0659prod"); code != exitNotFound {
		t.Fatalf("dry run created the workspace (show exit %d)", code)
	}

	out = e.ok("infra", "apply", "--file", cfg)
	if !strings.Contains(out, "Apply complete: 5 created, 0 updated.") {
		t.Fatalf("first apply:\n%s", out)
	}
	if out := e.ok("infra", "apply", "--file", cfg); strings.TrimSpace(out) != "no changes" {
		t.Fatalf("second apply must print only 'no changes', got:\n%s", out)
	}
	ws := e.ok("ml", "workspace", "show", "-n", "mlw-mlopsv2-0659prod", "--query", "[resource_group, key_vault, tags.environment]", "-o", "tsv")
	if strings.TrimSpace(ws) != "rg-mlopsv2-0659prod\nkv-mlopsv2-0659prod\nprod" {
		t.Fatalf("workspace fields: %q", ws)
	}
	uri := strings.TrimSpace(e.ok("ml", "workspace", "show", "-n", "mlw-mlopsv2-0659prod", "--query", "mlflow_tracking_uri", "-o", "tsv"))
	if uri != e.srv.HTTP.URL+"/mlflow/v1.0/workspaces/mlw-mlopsv2-0659prod" {
		t.Fatalf("mlflow_tracking_uri: %q", uri)
	}
	stores := e.ok("ml", "datastore", "list", "-w", "mlw-mlopsv2-0659prod", "--query", "[?is_default].name", "-o", "tsv")
	if strings.TrimSpace(stores) != "workspaceblobstore" {
		t.Fatalf("default datastore: %q", stores)
	}

	// A changed config shows an update in the dry run and changes nothing;
	// the real apply then updates exactly that.
	changed := writeFile(t, dir, "changed.yml", strings.Replace(infraConfig, "enable_monitoring: false", "enable_monitoring: true", 1)+"  cpu_cluster_max_instances: 8\n")
	out = e.ok("infra", "apply", "--file", changed, "--dry-run")
	if !strings.Contains(out, "~ compute cpu-cluster") || !strings.Contains(out, "max_instances: 4 -> 8") || !strings.Contains(out, "+ monitoring_store mlw-mlopsv2-0659prod") {
		t.Fatalf("dry-run update plan:\n%s", out)
	}
	if got := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "cpu-cluster", "-w", "mlw-mlopsv2-0659prod", "--query", "max_instances", "-o", "tsv")); got != "4" {
		t.Fatalf("dry run changed max_instances to %s", got)
	}
	e.ok("infra", "apply", "--file", changed)
	if got := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "cpu-cluster", "-w", "mlw-mlopsv2-0659prod", "--query", "max_instances", "-o", "tsv")); got != "8" {
		t.Fatalf("apply did not update max_instances: %s", got)
	}
	if out := e.ok("infra", "apply", "--file", changed); strings.TrimSpace(out) != "no changes" {
		t.Fatalf("re-apply after update:\n%s", out)
	}
}

func TestInfraConfigErrorsNameFileAndLine(t *testing.T) {
	e := newCLIEnv(t)
	cfg := writeFile(t, t.TempDir(), "bad.yml", "variables:\n  namespace: x\n  postfix: 1\n  environment: dev\n  aml_workspace: mlw-$(nmespace)\n")
	out, errs, code := e.wharf("infra", "apply", "--file", cfg)
	if code == 0 || out != "" {
		t.Fatalf("bad config: exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errs, "bad.yml:5") || !strings.Contains(errs, "nmespace") {
		t.Fatalf("error must name file, line and the variable: %s", errs)
	}
	if strings.Contains(errs, "goroutine") || strings.Contains(errs, "panic") {
		t.Fatalf("stack trace printed: %s", errs)
	}
}

func TestMissingResourcePrintsNothingAndFails(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws1")
	out, errs, code := e.wharf("ml", "compute", "show", "-n", "ghost", "-w", "ws1", "--query", "name", "-o", "tsv")
	if out != "" || code != exitNotFound || !strings.Contains(errs, "ResourceNotFound") {
		t.Fatalf("missing compute: stdout %q exit %d stderr %q", out, code, errs)
	}
	// The az idiom `[ -z "$(az ml compute show ...)" ] && az ml compute create ...`.
	e.ok("ml", "compute", "create", "--name", "cpu-cluster", "--type", "AmlCompute", "--size", "STANDARD_D4S_V3", "--min-instances", "0", "--max-instances", "4", "--tier", "Dedicated", "-w", "ws1")
	got := e.ok("ml", "compute", "show", "-n", "cpu-cluster", "-w", "ws1", "--query", "[[type, tier, max_instances]]", "-o", "tsv")
	if strings.TrimSpace(got) != "amlcompute\tdedicated\t4" {
		t.Fatalf("case-insensitive type/tier: %q", got)
	}
	if name := e.ok("ml", "compute", "show", "-n", "cpu-cluster", "-w", "ws1", "--query", "name", "-o", "tsv"); name != "cpu-cluster\n" {
		t.Fatalf("--query name -o tsv must print only the name: %q", name)
	}
}

func TestConfigureDefaultsPersist(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws-default", "-g", "rg1", "-l", "local")
	if _, errs, code := e.wharf("ml", "compute", "list"); code != exitUsage || !strings.Contains(errs, "configure --defaults") {
		t.Fatalf("no workspace given: exit %d %s", code, errs)
	}
	e.ok("configure", "--defaults", "group=rg1", "workspace=ws-default")
	cfgFile := filepath.Join(os.Getenv("WHARF_CONFIG_DIR"), "config.json")
	b, err := os.ReadFile(cfgFile)
	if err != nil || !strings.Contains(string(b), `"workspace": "ws-default"`) {
		t.Fatalf("defaults not persisted: %s %v", b, err)
	}
	e.ok("ml", "compute", "create", "-n", "c1", "--max-instances", "2")
	if got := e.ok("ml", "compute", "list", "--query", "[].name", "-o", "tsv"); got != "c1\n" {
		t.Fatalf("list with default workspace: %q", got)
	}
	list := e.ok("configure", "--list-defaults", "--query", "[?name=='workspace'].value", "-o", "tsv")
	if strings.TrimSpace(list) != "ws-default" {
		t.Fatalf("list-defaults: %q", list)
	}
}

func TestYAMLFileWithSetAndErrors(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws1")
	dir := t.TempDir()
	good := writeFile(t, dir, "cluster.yml", "$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json\nname: gpu-cluster\ntype: amlcompute\nsize: Standard_NC6\nmin_instances: 0\nmax_instances: 2\ntier: low_priority\n")
	out := e.ok("ml", "compute", "create", "--file", good, "-w", "ws1", "--set", "max_instances=6", "description=from-set", "--query", "[[name, max_instances, description, tier]]", "-o", "tsv")
	if strings.TrimSpace(out) != "gpu-cluster\t6\tfrom-set\tlow_priority" {
		t.Fatalf("--set overrides: %q", out)
	}
	// --name beats the file's name.
	e.ok("ml", "compute", "create", "--file", good, "-w", "ws1", "--name", "renamed")
	e.ok("ml", "compute", "show", "-n", "renamed", "-w", "ws1")

	bad := writeFile(t, dir, "bad.yml", "name: broken\ntype: amlcompute\nmax_instnces: 2\nmin_instances: two\n")
	out, errs, code := e.wharf("ml", "compute", "create", "--file", bad, "-w", "ws1")
	if code == 0 || out != "" {
		t.Fatalf("bad yaml accepted: exit %d", code)
	}
	for _, want := range []string{"bad.yml:3", "max_instnces", "bad.yml:4", "min_instances"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error output lacks %q:\n%s", want, errs)
		}
	}
	if _, _, code := e.wharf("ml", "compute", "show", "-n", "broken", "-w", "ws1"); code != exitNotFound {
		t.Fatal("a rejected file created a compute")
	}
	// A server-side validation error names the field too.
	out, errs, code = e.wharf("ml", "compute", "create", "-n", "c2", "-w", "ws1", "--min-instances", "3", "--max-instances", "1")
	if code != exitError || out != "" || !strings.Contains(errs, "min_instances") {
		t.Fatalf("server validation: exit %d %q", code, errs)
	}
}

func TestServicePrincipalsAndRolesFromTheCLI(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws-a")
	e.ok("ml", "workspace", "create", "-n", "ws-b")
	out := e.ok("ad", "sp", "create-for-rbac", "--name", "github-ci", "--role", "Data Scientist", "--scopes", "/workspaces/ws-a", "--sdk-auth")
	var sdk map[string]string
	if err := json.Unmarshal([]byte(out), &sdk); err != nil {
		t.Fatalf("--sdk-auth output is not JSON: %s", out)
	}
	for _, k := range []string{"clientId", "clientSecret", "tenantId", "subscriptionId", "serverUrl"} {
		if sdk[k] == "" {
			t.Errorf("--sdk-auth lacks %s", k)
		}
	}
	plain := e.ok("ad", "sp", "create-for-rbac", "--name", "reader-bot", "--role", "Reader", "--scopes", "/")
	var pl map[string]string
	_ = json.Unmarshal([]byte(plain), &pl)
	if pl["appId"] == "" || pl["password"] == "" || pl["tenant"] == "" || pl["displayName"] != "reader-bot" {
		t.Fatalf("create-for-rbac output: %s", plain)
	}
	if _, errs, code := e.wharf("ad", "sp", "create-for-rbac", "--name", "x", "--role", "Reader"); code != exitUsage || !strings.Contains(errs, "both --role and --scopes") {
		t.Fatalf("role without scopes: %d %s", code, errs)
	}
	roles := e.ok("role", "assignment", "list", "--scope", "/workspaces/ws-a", "--query", "[].roleDefinitionName", "-o", "tsv")
	if strings.TrimSpace(roles) != "Data Scientist" {
		t.Fatalf("assignments at ws-a: %q", roles)
	}
	// Filtered by assignee and role, and removed by them.
	count := func(role string) string {
		return strings.TrimSpace(e.ok("role", "assignment", "list", "--scope", "/", "--assignee", "reader-bot", "--role", role, "--query", "length(@)", "-o", "tsv"))
	}
	if n, other := count("Reader"), count("Owner"); n != "1" || other != "0" {
		t.Fatalf("reader-bot's assignments at /: %s as Reader, %s as Owner", n, other)
	}
	e.ok("role", "assignment", "delete", "--scope", "/", "--assignee", "reader-bot", "--role", "Reader")
	if n := count("Reader"); n != "0" {
		t.Fatalf("reader-bot's Reader assignments after delete: %s", n)
	}

	// Act as the CI principal, exactly as a pipeline would.
	t.Setenv("WHARF_CREDENTIALS", out)
	e.ok("ml", "workspace", "show", "-n", "ws-a")
	if _, errs, code := e.wharf("ml", "compute", "create", "-n", "c1", "-w", "ws-a"); code != exitError || !strings.Contains(errs, "AuthorizationFailed") {
		t.Fatalf("data scientist created compute: %d %s", code, errs)
	}
	if _, errs, code := e.wharf("ml", "workspace", "show", "-n", "ws-b"); code != exitError || !strings.Contains(errs, "AuthorizationFailed") {
		t.Fatalf("ws-a principal read ws-b: %d %s", code, errs)
	}
	names := e.ok("ml", "workspace", "list", "--query", "[].display_name", "-o", "tsv")
	if names != "ws-a\n" {
		t.Fatalf("list for ws-a principal: %q", names)
	}

	// Back to the owner: rotate the CI secret; the old one stops working.
	t.Setenv("WHARF_CREDENTIALS", e.owner)
	rot := e.ok("ad", "sp", "credential", "reset", "--id", "github-ci", "--query", "password", "-o", "tsv")
	t.Setenv("WHARF_CREDENTIALS", out)
	_ = os.Remove(filepath.Join(os.Getenv("WHARF_CONFIG_DIR"), "token.json"))
	if _, errs, code := e.wharf("ml", "workspace", "show", "-n", "ws-a"); code == 0 || !strings.Contains(errs, "invalid_client") {
		t.Fatalf("old secret still works after reset: %d %s", code, errs)
	}
	sdk["clientSecret"] = strings.TrimSpace(rot)
	nb, _ := json.Marshal(sdk)
	t.Setenv("WHARF_CREDENTIALS", string(nb))
	e.ok("ml", "workspace", "show", "-n", "ws-a")
}

func TestLoginAccountAndHousekeeping(t *testing.T) {
	e := newCLIEnv(t)
	var owner map[string]string
	_ = json.Unmarshal([]byte(e.owner), &owner)
	t.Setenv("WHARF_CREDENTIALS", "")
	if _, errs, code := e.wharf("account", "show"); code == 0 || !strings.Contains(errs, "wharf login") {
		t.Fatalf("not logged in: %d %s", code, errs)
	}
	if _, _, code := e.wharf("login", "--service-principal", "-u", owner["clientId"], "-p", "wrong", "--tenant", owner["tenantId"]); code == 0 {
		t.Fatal("login with a wrong secret succeeded")
	}
	e.ok("login", "--service-principal", "-u", owner["clientId"], "-p", owner["clientSecret"], "--tenant", owner["tenantId"])
	st, err := os.Stat(filepath.Join(os.Getenv("WHARF_CONFIG_DIR"), "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	tok := e.ok("account", "get-access-token")
	var at map[string]any
	if err := json.Unmarshal([]byte(tok), &at); err != nil || at["accessToken"] == "" || at["expiresOn"] == "" || at["tokenType"] != "Bearer" {
		t.Fatalf("get-access-token: %s", tok)
	}
	if id := e.ok("account", "show", "--query", "tenantId", "-o", "tsv"); strings.TrimSpace(id) != owner["tenantId"] {
		t.Fatalf("account show tenant: %q", id)
	}
	// az-only housekeeping succeeds.
	e.ok("extension", "add", "-n", "ml", "-y")
	e.ok("extension", "update", "-n", "ml")
	e.ok("version")
	e.ok("group", "create", "--name", "rg1", "--location", "westus")
	e.ok("logout")
	if _, _, code := e.wharf("account", "show"); code == 0 {
		t.Fatal("still logged in after logout")
	}
	// Environment variables the way CI secrets provide them.
	t.Setenv("WHARF_CLIENT_ID", owner["clientId"])
	t.Setenv("WHARF_CLIENT_SECRET", owner["clientSecret"])
	t.Setenv("WHARF_TENANT_ID", owner["tenantId"])
	e.ok("account", "show")
}

func TestUsageErrorsExit2(t *testing.T) {
	e := newCLIEnv(t)
	for _, args := range [][]string{
		{"ml", "compute", "show", "--nope"},
		{"ml", "nosuchresource", "list"},
		{"ml", "compute", "frobnicate"},
		{"ml", "job", "create"},                  // a resource without verbs in this version
		{"ml", "workspace", "delete", "-n", "x"}, // needs --yes without a terminal
	} {
		out, errs, code := e.wharf(args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, "ERROR: ") {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, out, errs)
		}
	}
}
