package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation/federationtest"
)

// TestFederatedLoginFromGitHubActions: a CI job logs in without a secret.
// A real OIDC issuer runs on loopback over HTTPS (its CA given to the
// server with --oidc-ca-file); a small HTTP server plays GitHub Actions'
// ID token service: it checks the request token's bearer, as GitHub does,
// and returns an assertion the issuer mints for the audience asked for.
// With WHARF_CLIENT_ID and WHARF_TENANT_ID set and no secret, the CLI asks
// it for an assertion, exchanges it, and the job it creates completes.
func TestFederatedLoginFromGitHubActions(t *testing.T) {
	iss := federationtest.New(t)
	e := newCLIEnvWith(t, func(o *serverOptions) { o.oidcCAFile = iss.CAFile })
	var owner map[string]string
	_ = json.Unmarshal([]byte(e.owner), &owner)
	dir := t.TempDir()
	const subject = "repo:org/repo:ref:refs/heads/main"

	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	appID := strings.TrimSpace(e.ok("ad", "sp", "create-for-rbac", "-n", "gh-deploy", "--role", "Data Scientist", "--scopes", "/workspaces/dev", "--query", "appId", "-o", "tsv"))
	params := writeFile(t, dir, "fic.json", `{
  "name": "main-branch",
  "issuer": "`+iss.URL+`",
  "subject": "`+subject+`",
  "description": "deploys from main",
  "audiences": ["api://AzureADTokenExchange"]
}`)
	e.ok("ad", "app", "federated-credential", "create", "--id", appID, "--parameters", "@"+params)
	if got := strings.TrimSpace(e.ok("ad", "app", "federated-credential", "show", "--id", appID, "--federated-credential-id", "main-branch", "--query", "subject", "-o", "tsv")); got != subject {
		t.Fatalf("show: subject %q", got)
	}
	bad := writeFile(t, dir, "bad.json", "{\n  \"name\": \"pr\",\n  \"isuer\": \"https://x\"\n}")
	if _, errs, code := e.wharf("ad", "app", "federated-credential", "create", "--id", appID, "--parameters", "@"+bad); code == 0 ||
		!strings.Contains(errs, bad+": line 3") || !strings.Contains(errs, `"isuer"`) {
		t.Errorf("misspelt field: exit %d, %s", code, errs)
	}
	if _, errs, code := e.wharf("ad", "app", "federated-credential", "create", "--id", appID, "--parameters",
		`{"name": "any-repo", "issuer": "`+iss.URL+`", "subject": "repo:org/*"}`); code == 0 || !strings.Contains(errs, "wildcard") {
		t.Errorf("wildcard subject: exit %d, %s", code, errs)
	}

	// GitHub's part: the runner's ID token service.
	const requestToken = "runner-request-token"
	gh := iss.GitHubTokenService(t, requestToken, subject)

	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dir, "ci-cli"))
	t.Setenv("WHARF_CREDENTIALS", "")
	t.Setenv("WHARF_CLIENT_ID", appID)
	t.Setenv("WHARF_CLIENT_SECRET", "")
	t.Setenv("WHARF_TENANT_ID", owner["tenantId"])
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", gh.URL+"/idtoken?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", requestToken)

	job := writeFile(t, dir, "job.yml", `command: echo federated
environment: {image: python:3.11}
compute: azureml:cpu-cluster
`)
	out, errs, code := e.wharf("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv")
	if code != 0 {
		t.Fatalf("job create as the federated principal: exit %d\n%s", code, errs)
	}
	if got := e.waitJob("dev", lastLine(out)); got != "Completed" {
		t.Fatalf("job: %s", got)
	}
	if gh.Asked() == 0 {
		t.Fatal("the CLI never asked GitHub's ID token service")
	}
	// The role is the principal's: a Data Scientist cannot create a workspace.
	if _, errs, code := e.wharf("ml", "workspace", "create", "-n", "other"); code == 0 || !strings.Contains(errs, "AuthorizationFailed") {
		t.Errorf("workspace create as Data Scientist: exit %d %s", code, errs)
	}

	// Another branch's token is refused, with Entra's code and no detail.
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dir, "ci-cli-2"))
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(iss.Token(t, "repo:org/repo:ref:refs/heads/dev", wharf.DefaultFederatedAudience)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_FEDERATED_TOKEN_FILE", tokFile)
	if _, errs, code := e.wharf("ml", "workspace", "show", "-n", "dev"); code == 0 || !strings.Contains(errs, "AADSTS70021") {
		t.Errorf("other branch: exit %d %s", code, errs)
	}
	t.Setenv("WHARF_FEDERATED_TOKEN_FILE", "")
	t.Setenv("WHARF_CLIENT_ID", "")

	// wharf login --federated-token, then commands run on the token it got.
	assertion := iss.Token(t, subject, wharf.DefaultFederatedAudience)
	stdout, stderr, code := e.wharf("login", "--service-principal", "-u", appID, "--tenant", owner["tenantId"], "--federated-token", assertion)
	if code != 0 {
		t.Fatalf("login --federated-token: %d %s", code, stderr)
	}
	e.ok("ml", "workspace", "show", "-n", "dev")
	if strings.Contains(stdout+stderr, assertion) {
		t.Error("login printed the assertion")
	}
	creds, err := os.ReadFile(filepath.Join(dir, "ci-cli-2", "credentials.json"))
	if err != nil || strings.Contains(string(creds), assertion) {
		t.Errorf("credentials.json holds the assertion (or is missing: %v)", err)
	}

	// Only an Owner changes federated credentials, not the principal itself.
	if _, errs, code := e.wharf("ad", "app", "federated-credential", "delete", "--id", appID, "--federated-credential-id", "main-branch"); code == 0 ||
		!strings.Contains(errs, "AuthorizationFailed") {
		t.Errorf("delete by the federated principal: exit %d %s", code, errs)
	}
	t.Setenv("WHARF_CREDENTIALS", e.owner)
	e.ok("ad", "app", "federated-credential", "delete", "--id", appID, "--federated-credential-id", "main-branch")
	if list := strings.TrimSpace(e.ok("ad", "app", "federated-credential", "list", "--id", appID, "-o", "tsv")); list != "" {
		t.Errorf("after delete: %q", list)
	}
}

// TestFederatedLoginFromOtherCISystems: Azure Pipelines' OIDC request
// endpoint (played by a small HTTP server that checks what Azure DevOps
// checks: POST, the job's System.AccessToken as bearer, the service
// connection id), GitLab's id_tokens variable and a token file each log a
// principal in. Access tokens here live less than the CLI's five-minute
// margin, so every command needs a new one, and each asks for a fresh
// assertion.
func TestFederatedLoginFromOtherCISystems(t *testing.T) {
	iss := federationtest.New(t)
	e := newCLIEnvWith(t, func(o *serverOptions) {
		o.oidcCAFile = iss.CAFile
		o.tokenTTL = 4 * time.Minute
	})
	var owner map[string]string
	_ = json.Unmarshal([]byte(e.owner), &owner)
	e.ok("ml", "workspace", "create", "-n", "dev")
	appID := strings.TrimSpace(e.ok("ad", "sp", "create-for-rbac", "-n", "ado", "--role", "Reader", "--scopes", "/workspaces/dev", "--query", "appId", "-o", "tsv"))
	const adoSubject, glSubject, fileSubject = "sc://org/project/wharf-prod", "project_path:group/project:ref_type:branch:ref:main", "system:serviceaccount:ci:deployer"
	for name, sub := range map[string]string{"ado": adoSubject, "gitlab": glSubject, "k8s": fileSubject} {
		e.ok("ad", "app", "federated-credential", "create", "--id", appID, "--parameters",
			`{"name": "`+name+`", "issuer": "`+iss.URL+`", "subject": "`+sub+`", "audiences": "api://AzureADTokenExchange"}`)
	}

	const connection, accessToken = "5a1c2f9e-0000-4000-8000-00000000c0de", "system-access-token"
	ado := iss.AzureDevOpsTokenService(t, accessToken, connection, adoSubject, wharf.DefaultFederatedAudience)

	dir := t.TempDir()
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dir, "cli"))
	t.Setenv("WHARF_CREDENTIALS", "")
	t.Setenv("WHARF_CLIENT_ID", appID)
	t.Setenv("WHARF_TENANT_ID", owner["tenantId"])
	t.Setenv("SYSTEM_OIDCREQUESTURI", ado.URL+"/org/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken")
	t.Setenv("SYSTEM_ACCESSTOKEN", accessToken)
	t.Setenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", connection)
	for i := 1; i <= 2; i++ {
		e.ok("ml", "workspace", "show", "-n", "dev")
		if got := ado.Asked(); got != i {
			t.Fatalf("after %d commands Azure Pipelines was asked %d times", i, got)
		}
	}
	t.Setenv("SYSTEM_ACCESSTOKEN", "")
	if _, errs, code := e.wharf("ml", "workspace", "show", "-n", "dev"); code == 0 || !strings.Contains(errs, "SYSTEM_ACCESSTOKEN") {
		t.Errorf("without SYSTEM_ACCESSTOKEN: exit %d %s", code, errs)
	}
	t.Setenv("SYSTEM_OIDCREQUESTURI", "")

	t.Setenv("WHARF_ID_TOKEN", iss.Token(t, glSubject, wharf.DefaultFederatedAudience))
	e.ok("ml", "workspace", "show", "-n", "dev")
	t.Setenv("WHARF_ID_TOKEN", "")

	tokFile := filepath.Join(dir, "projected-token")
	if err := os.WriteFile(tokFile, []byte(iss.Token(t, fileSubject, wharf.DefaultFederatedAudience)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", tokFile)
	e.ok("ml", "workspace", "show", "-n", "dev")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "")

	// No secret and no source: a clear error, before anything is sent.
	if _, errs, code := e.wharf("ml", "workspace", "show", "-n", "dev"); code == 0 || !strings.Contains(errs, "neither WHARF_CLIENT_SECRET nor a federated token") {
		t.Errorf("no source: exit %d %s", code, errs)
	}
}
