package http_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// Principals of the matrix, each with one grant.
var matrixPrincipals = []struct {
	name  string
	grant [2]string // role, scope; empty = no grant
}{
	{"owner", [2]string{wharf.RoleOwner, "/"}},
	{"contributor", [2]string{wharf.RoleContributor, "/"}},
	{"reader", [2]string{wharf.RoleReader, "/"}},
	{"datasci", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"}},
	{"computeop", [2]string{wharf.RoleComputeOperator, "/workspaces/ws-a"}},
	{"ownerB", [2]string{wharf.RoleOwner, "/workspaces/ws-b"}},
	{"nobody", [2]string{}},
}

// Who may call what, written out by hand from the role semantics (Azure's
// built-in roles), not computed from the code under test. Every route is
// called against workspace ws-a; ownerB holds Owner on ws-b only, so it must
// be denied on every ws-a and server route.
const (
	everyone = "owner contributor reader datasci computeop ownerB nobody"
	readers  = "owner contributor reader datasci"
	admins   = "owner contributor"
	srvRead  = "owner contributor reader"
	onlyOwn  = "owner"
)

var matrixExpect = map[string]string{
	"GET /api/v1/me":              everyone,
	"GET /api/v1/roleDefinitions": everyone,
	"GET /api/v1/workspaces":      everyone, // filtered: tested separately

	// Azure's curated environments, the same for everyone.
	"GET /api/v1/registries/{registry}/environments":                           everyone,
	"GET /api/v1/registries/{registry}/environments/{name}/versions/{version}": everyone,

	"GET /api/v1/users":         srvRead,
	"GET /api/v1/users/{id}":    srvRead,
	"POST /api/v1/users":        onlyOwn,
	"PATCH /api/v1/users/{id}":  onlyOwn,
	"DELETE /api/v1/users/{id}": onlyOwn,

	"GET /api/v1/workspaces/{workspace}":    readers,
	"PUT /api/v1/workspaces/{workspace}":    admins,
	"DELETE /api/v1/workspaces/{workspace}": admins,

	// The Azure ML SDK's ARM-shaped routes (package arm): the roles of
	// the Wharf routes they translate to.
	"GET " + arm + "/{workspace}":                                                                        readers,
	"GET " + arm + "/{workspace}/jobs":                                                                   readers,
	"GET " + arm + "/{workspace}/jobs/{name}":                                                            readers,
	"GET " + arm + "/{workspace}/environments/{name}/versions":                                           readers,
	"GET " + arm + "/{workspace}/environments/{name}/versions/{version}":                                 readers,
	"PUT " + arm + "/{workspace}/environments/{name}/versions/{version}":                                 admins + " datasci",
	"PUT " + arm + "/{workspace}/jobs/{name}":                                                            admins + " datasci",
	"POST " + arm + "/{workspace}/jobs/{name}/cancel":                                                    admins + " datasci",
	"GET " + arm + "/{workspace}/jobs/{name}/cancelStatus":                                               readers,
	"GET " + arm + "/{workspace}/computes":                                                               readers + " computeop",
	"GET " + arm + "/{workspace}/computes/{name}":                                                        readers + " computeop",
	"GET " + arm + "/{workspace}/datastores":                                                             readers,
	"GET " + arm + "/{workspace}/datastores/{name}":                                                      readers,
	"POST " + arm + "/{workspace}/datastores/{name}/listSecrets":                                         admins + " datasci",
	"GET " + arm + "/{workspace}/codes/{name}/versions":                                                  readers,
	"GET " + arm + "/{workspace}/codes/{name}/versions/{version}":                                        readers,
	"PUT " + arm + "/{workspace}/codes/{name}/versions/{version}":                                        admins + " datasci",
	"POST " + arm + "/{workspace}/codes/{name}/versions/{version}/startPendingUpload":                    admins + " datasci",
	"GET /history/v1.0" + arm + "/{workspace}/runs/{name}/details":                                       readers,
	"GET /history/v1.0" + arm + "/{workspace}/runs/{name}/children":                                      readers,
	"POST /history/v1.0" + arm + "/{workspace}/rundata":                                                  readers,
	"POST /data/v1.0" + arm + "/{workspace}/dataversion/batchGetResolvedUris":                            readers,
	"GET " + arm + "/{workspace}/components":                                                             readers,
	"GET " + arm + "/{workspace}/components/{name}/versions":                                             readers,
	"GET " + arm + "/{workspace}/components/{name}/versions/{version}":                                   readers,
	"PUT " + arm + "/{workspace}/components/{name}/versions/{version}":                                   admins + " datasci",
	"GET " + arm + "/{workspace}/data":                                                                   readers,
	"GET " + arm + "/{workspace}/data/{name}":                                                            readers,
	"GET " + arm + "/{workspace}/data/{name}/versions":                                                   readers,
	"GET " + arm + "/{workspace}/data/{name}/versions/{version}":                                         readers,
	"PUT " + arm + "/{workspace}/data/{name}/versions/{version}":                                         admins + " datasci",
	"GET " + arm + "/{workspace}/models":                                                                 readers,
	"GET " + arm + "/{workspace}/models/{name}":                                                          readers,
	"GET " + arm + "/{workspace}/models/{name}/versions":                                                 readers,
	"GET " + arm + "/{workspace}/models/{name}/versions/{version}":                                       readers,
	"PUT " + arm + "/{workspace}/models/{name}/versions/{version}":                                       admins + " datasci",
	"GET " + arm + "/{workspace}/onlineEndpoints":                                                        readers,
	"GET " + arm + "/{workspace}/onlineEndpoints/{name}":                                                 readers,
	"PUT " + arm + "/{workspace}/onlineEndpoints/{name}":                                                 admins + " datasci",
	"DELETE " + arm + "/{workspace}/onlineEndpoints/{name}":                                              admins + " datasci",
	"GET " + arm + "/{workspace}/onlineEndpoints/{name}/operations/{operation}":                          readers,
	"POST " + arm + "/{workspace}/onlineEndpoints/{name}/listKeys":                                       admins + " datasci",
	"POST " + arm + "/{workspace}/onlineEndpoints/{name}/token":                                          admins + " datasci",
	"POST " + arm + "/{workspace}/onlineEndpoints/{name}/regenerateKeys":                                 admins + " datasci",
	"GET " + arm + "/{workspace}/onlineEndpoints/{name}/deployments":                                     readers,
	"GET " + arm + "/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":                        readers,
	"PUT " + arm + "/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":                        admins + " datasci",
	"DELETE " + arm + "/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":                     admins + " datasci",
	"GET " + arm + "/{workspace}/onlineEndpoints/{name}/deployments/{deployment}/operations/{operation}": readers,

	"GET /api/v1/workspaces/{workspace}/computes":           readers + " computeop",
	"GET /api/v1/workspaces/{workspace}/computes/{name}":    readers + " computeop",
	"PUT /api/v1/workspaces/{workspace}/computes/{name}":    admins + " computeop",
	"DELETE /api/v1/workspaces/{workspace}/computes/{name}": admins + " computeop",

	// A Ray-backed cluster's driver's routes take its compute token,
	// and a task's routes its job's token, never a principal's: every
	// principal is refused (TestComputeTokenRoutes covers the tokens).
	"POST /api/v1/workspaces/{workspace}/computes/{name}/driver/poll":               ``,
	"POST /api/v1/workspaces/{workspace}/computes/{name}/driver/attempts/{attempt}": ``,
	"GET /api/v1/workspaces/{workspace}/computes/{name}/attempts/{attempt}/files":   ``,
	"POST /api/v1/workspaces/{workspace}/computes/{name}/attempts/{attempt}/log":    ``,
	"PUT /api/v1/workspaces/{workspace}/computes/{name}/attempts/{attempt}/outputs": ``,
	// The server's executable, which Ray nodes fetch with a compute or
	// a job token (TestExecutableRoute covers the tokens).
	"GET /api/v1/ray/wharf": ``,

	"GET /api/v1/workspaces/{workspace}/datastores":           readers,
	"GET /api/v1/workspaces/{workspace}/datastores/{name}":    readers,
	"PUT /api/v1/workspaces/{workspace}/datastores/{name}":    admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/datastores/{name}": admins + " datasci",

	"GET /api/v1/workspaces/{workspace}/secrets":                 readers,
	"GET /api/v1/workspaces/{workspace}/secrets/{name}/versions": readers,
	"GET /api/v1/workspaces/{workspace}/secrets/{name}":          admins,
	"PUT /api/v1/workspaces/{workspace}/secrets/{name}":          admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/secrets/{name}":       admins + " datasci",

	"GET /api/v1/servicePrincipals":                                            srvRead,
	"POST /api/v1/servicePrincipals":                                           onlyOwn,
	"GET /api/v1/servicePrincipals/{id}":                                       srvRead,
	"DELETE /api/v1/servicePrincipals/{id}":                                    onlyOwn,
	"GET /api/v1/servicePrincipals/{id}/credentials":                           srvRead,
	"POST /api/v1/servicePrincipals/{id}/credentials":                          onlyOwn,
	"DELETE /api/v1/servicePrincipals/{id}/credentials/{keyId}":                onlyOwn,
	"GET /api/v1/servicePrincipals/{id}/federatedIdentityCredentials":          srvRead,
	"POST /api/v1/servicePrincipals/{id}/federatedIdentityCredentials":         onlyOwn,
	"GET /api/v1/servicePrincipals/{id}/federatedIdentityCredentials/{fic}":    srvRead,
	"PATCH /api/v1/servicePrincipals/{id}/federatedIdentityCredentials/{fic}":  onlyOwn,
	"DELETE /api/v1/servicePrincipals/{id}/federatedIdentityCredentials/{fic}": onlyOwn,

	"GET /api/v1/roleAssignments":                                srvRead,
	"POST /api/v1/roleAssignments":                               onlyOwn,
	"DELETE /api/v1/roleAssignments/{id}":                        onlyOwn,
	"GET /api/v1/workspaces/{workspace}/roleAssignments":         srvRead,
	"POST /api/v1/workspaces/{workspace}/roleAssignments":        onlyOwn,
	"DELETE /api/v1/workspaces/{workspace}/roleAssignments/{id}": onlyOwn,

	"GET /api/v1/auditEvents": srvRead,

	"GET /api/v1/workspaces/{workspace}/models":                                 readers,
	"GET /api/v1/workspaces/{workspace}/models/{name}/versions/{version}":       readers,
	"GET /api/v1/workspaces/{workspace}/models/{name}/versions/{version}/files": readers,
	"POST /api/v1/workspaces/{workspace}/models/{name}/versions":                admins + " datasci",

	"GET /api/v1/workspaces/{workspace}/data":                                                 readers,
	"GET /api/v1/workspaces/{workspace}/data/{name}/versions":                                 readers,
	"GET /api/v1/workspaces/{workspace}/data/{name}/versions/{version}":                       readers,
	"POST /api/v1/workspaces/{workspace}/data/{name}/versions":                                admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/environments":                                         readers,
	"GET /api/v1/workspaces/{workspace}/environments/{name}/versions":                         readers,
	"GET /api/v1/workspaces/{workspace}/environments/{name}/versions/{version}":               readers,
	"POST /api/v1/workspaces/{workspace}/environments/{name}/versions":                        admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/components":                                           readers,
	"GET /api/v1/workspaces/{workspace}/components/{name}/versions":                           readers,
	"GET /api/v1/workspaces/{workspace}/components/{name}/versions/{version}":                 readers,
	"POST /api/v1/workspaces/{workspace}/components/{name}/versions":                          admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/jobs":                                                admins + " datasci",
	"PUT /api/v1/workspaces/{workspace}/jobs/{name}":                                          admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/jobs":                                                 readers,
	"GET /api/v1/workspaces/{workspace}/jobs/{name}":                                          readers,
	"POST /api/v1/workspaces/{workspace}/jobs/{name}/cancel":                                  admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/jobs/{name}/logs":                                     readers,
	"GET /api/v1/workspaces/{workspace}/job-submissions/{id}":                                 admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/schedules":                                            readers,
	"GET /api/v1/workspaces/{workspace}/schedules/{name}":                                     readers,
	"PUT /api/v1/workspaces/{workspace}/schedules/{name}":                                     admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/schedules/{name}":                                  admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/schedules/{name}/trigger":                            admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/schedules/{name}/enable":                             admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/schedules/{name}/disable":                            admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/schedules/{name}/results":                             readers,
	"POST /api/v1/workspaces/{workspace}/jobs/{name}/rerun":                                   admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/datastores/{name}/paths/{path...}":                    readers,
	"GET /api/v1/workspaces/{workspace}/onlineEndpoints":                                      readers,
	"GET /api/v1/workspaces/{workspace}/onlineEndpoints/{name}":                               readers,
	"PUT /api/v1/workspaces/{workspace}/onlineEndpoints/{name}":                               admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/onlineEndpoints/{name}":                            admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/listKeys":                     admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/regenerateKeys":               admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/deployments":                   readers,
	"GET /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":      readers,
	"PUT /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":      admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/deployments/{deployment}":   admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/onlineEndpoints/{name}/deployments/{deployment}/logs": readers,
	"GET /api/v1/workspaces/{workspace}/batchEndpoints":                                       readers,
	"GET /api/v1/workspaces/{workspace}/batchEndpoints/{name}":                                readers,
	"PUT /api/v1/workspaces/{workspace}/batchEndpoints/{name}":                                admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/batchEndpoints/{name}":                             admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/batchEndpoints/{name}/deployments":                    readers,
	"GET /api/v1/workspaces/{workspace}/batchEndpoints/{name}/deployments/{deployment}":       readers,
	"PUT /api/v1/workspaces/{workspace}/batchEndpoints/{name}/deployments/{deployment}":       admins + " datasci",
	"DELETE /api/v1/workspaces/{workspace}/batchEndpoints/{name}/deployments/{deployment}":    admins + " datasci",
	"POST /api/v1/workspaces/{workspace}/batchEndpoints/{name}/invoke":                        admins + " datasci",
	"GET /api/v1/workspaces/{workspace}/batchEndpoints/{name}/jobs":                           readers,
	"HEAD /api/v1/workspaces/{workspace}/blobs/{digest}":                                      readers,
	"GET /api/v1/workspaces/{workspace}/blobs/{digest}":                                       readers,
	"PUT /api/v1/workspaces/{workspace}/blobs/{digest}":                                       admins + " datasci",

	// The studio's operations pages (see TestStudioOps*): the audit log
	// is the Owner's alone.
	"GET /workspaces/{workspace}/models":                    readers,
	"GET /workspaces/{workspace}/models/{name}":             readers,
	"GET /workspaces/{workspace}/endpoints":                 readers,
	"GET /workspaces/{workspace}/endpoints/{name}":          readers,
	"GET /workspaces/{workspace}/endpoints/{name}/series":   readers,
	"POST /workspaces/{workspace}/endpoints/{name}/traffic": admins + " datasci",
	"POST /workspaces/{workspace}/endpoints/{name}/test":    admins + " datasci",
	"GET /workspaces/{workspace}/batch-endpoints":           readers,
	"GET /workspaces/{workspace}/batch-endpoints/{name}":    readers,
	"GET /workspaces/{workspace}/data":                      readers,
	"GET /workspaces/{workspace}/data/{name}":               readers,
	"GET /workspaces/{workspace}/environments":              readers,
	"GET /workspaces/{workspace}/environments/{name}":       readers,
	"GET /workspaces/{workspace}/components":                readers,
	"GET /workspaces/{workspace}/components/{name}":         readers,
	"GET /workspaces/{workspace}/computes":                  readers + " computeop",
	"GET /workspaces/{workspace}/schedules":                 readers,
	"GET /workspaces/{workspace}/audit":                     onlyOwn,

	// The routes of MLflow's web UI, named here although the MLflow
	// policy (mlflowMatrixExpect) would cover them: who may read charts,
	// datasets and files, and who may upload a run's file from the UI.
	mlflowRoute("GET", "api/2.0/mlflow/metrics/get-history-bulk"):                      readers,
	mlflowRoute("GET", "ajax-api/2.0/mlflow/metrics/get-history-bulk"):                 readers,
	mlflowRoute("GET", "api/2.0/mlflow/metrics/get-history-bulk-interval"):             readers,
	mlflowRoute("GET", "ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"):        readers,
	mlflowRoute("POST", "api/2.0/mlflow/experiments/search-datasets"):                  readers,
	mlflowRoute("POST", "ajax-api/2.0/mlflow/experiments/search-datasets"):             readers,
	mlflowRoute("POST", "api/2.0/mlflow/upload-artifact"):                              admins + " datasci",
	mlflowRoute("POST", "ajax-api/2.0/mlflow/upload-artifact"):                         admins + " datasci",
	mlflowRoute("GET", "get-artifact"):                                                 readers,
	mlflowRoute("GET", "model-versions/get-artifact"):                                  readers,
	mlflowRoute("GET", "api/2.0/mlflow/logged-models/{model_id}/artifacts/files"):      readers,
	mlflowRoute("GET", "ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"): readers,

	// The studio's pages: the same roles as the API calls behind them.
	"GET /workspaces":                                 everyone, // the picker's redirect
	"GET /workspaces/{workspace}":                     readers,
	"GET /workspaces/{workspace}/jobs":                readers,
	"GET /workspaces/{workspace}/jobs/{name}":         readers,
	"GET /workspaces/{workspace}/jobs/{name}/graph":   readers,
	"POST /workspaces/{workspace}/jobs/{name}/cancel": admins + " datasci",
	"POST /workspaces/{workspace}/jobs/{name}/rerun":  admins + " datasci",
	"GET /workspaces/{workspace}/experiments":         readers,
	"GET /workspaces/{workspace}/experiments/{id}":    readers,
	"GET /workspaces/{workspace}/runs/{id}":           readers,
	"GET /workspaces/{workspace}/runs/{id}/artifact":  readers,
	"GET /workspaces/{workspace}/compare":             readers,
	"GET /workspaces/{workspace}/metric-history":      readers,
}

// arm is the prefix of the Azure ML SDK's ARM-shaped routes.
const arm = "/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces"

// publicRoutes need no credentials at all.
var publicRoutes = map[string]bool{
	// The Ray-backed clusters' driver program, Wharf's own code.
	"GET /api/v1/ray/driver.py": true,
	// A new driver's registration: its one-time code is its credential.
	"POST /api/v1/workspaces/{workspace}/computes/{name}/driver/register": true,
	"GET /healthz":                          true,
	"GET /readyz":                           true,
	"GET /metrics":                          true,
	"POST /oauth2/v2.0/token":               true,
	"POST /{tenant}/oauth2/v2.0/token":      true,
	"GET /.well-known/openid-configuration": true,
	"GET /discovery/v2.0/keys":              true,
	// MSAL's reading of the OpenID configuration below a tenant, and
	// the documents the Azure ML SDK reads before it holds a token.
	"GET /" + testTenant + "/v2.0/.well-known/openid-configuration": true,
	"GET /common/v2.0/.well-known/openid-configuration":             true,
	"GET /organizations/v2.0/.well-known/openid-configuration":      true,
	"GET /metadata/endpoints":                                       true,
	"GET /azureml/discovery":                                        true,
	// Log files and the Blob API: the URL's signature is checked
	// instead (see arm's TestBlobSignatures), and ARM's 404 for any
	// other path below a subscription's resource groups.
	"GET /azureml/logs/{workspace}/{name}/{file...}":                true,
	"PUT /blob/{account}/{container}/{blob...}":                     true,
	"GET /blob/{account}/{container}/{blob...}":                     true,
	"GET /blob/{account}/{container}":                               true,
	"GET /subscriptions/{subscription}/resourceGroups/{path...}":    true,
	"PUT /subscriptions/{subscription}/resourceGroups/{path...}":    true,
	"POST /subscriptions/{subscription}/resourceGroups/{path...}":   true,
	"PATCH /subscriptions/{subscription}/resourceGroups/{path...}":  true,
	"DELETE /subscriptions/{subscription}/resourceGroups/{path...}": true,
	// The web sign-in pages and the device-code flow check the session
	// cookie themselves (see TestSignIn* and TestDevice*).
	"GET /{$}":                              true,
	"GET /signin":                           true,
	"POST /signin":                          true,
	"POST /signout":                         true,
	"GET /signin/sso":                       true,
	"GET /signin/sso/callback":              true,
	"GET /device":                           true,
	"POST /device":                          true,
	"POST /oauth2/v2.0/devicecode":          true,
	"POST /{tenant}/oauth2/v2.0/devicecode": true,
	// The studio's stylesheets and scripts.
	"GET /static/{path...}": true,
}

// matrixBodies are valid request bodies, so that an allowed call reaches
// the handler and a denied one is stopped before it.
var matrixBodies = map[string]string{
	"PUT " + arm + "/{workspace}/jobs/{name}":                                     `{"properties":{"jobType":"Command","command":"true"}}`,
	"PUT " + arm + "/{workspace}/codes/{name}/versions/{version}":                 `{"properties":{"codeUri":"https://wharf.blob.example/ws-a.workspaceblobstore/LocalUpload/x/src"}}`,
	"PUT " + arm + "/{workspace}/environments/{name}/versions/{version}":          `{"properties":{"image":"python:3.11-slim"}}`,
	"PUT " + arm + "/{workspace}/models/{name}/versions/{version}":                `{"properties":{"modelUri":"mlflow-artifacts:/nothing"}}`,
	"PUT " + arm + "/{workspace}/onlineEndpoints/{name}":                          `{"properties":{"authMode":"Key"}}`,
	"POST " + arm + "/{workspace}/onlineEndpoints/{name}/regenerateKeys":          `{"keyType":"Primary"}`,
	"PUT " + arm + "/{workspace}/onlineEndpoints/{name}/deployments/{deployment}": `{"properties":{"model":"azureml:m:1"}}`,
	"PUT /api/v1/workspaces/{workspace}":                                          `{}`,
	"PUT /api/v1/workspaces/{workspace}/computes/{name}":                          `{"type":"amlcompute","max_instances":2}`,
	"PUT /api/v1/workspaces/{workspace}/datastores/{name}":                        `{"type":"local"}`,
	"PUT /api/v1/workspaces/{workspace}/secrets/{name}":                           `{"value":"v"}`,
	"POST /api/v1/servicePrincipals":                                              `{"displayName":"made-by-test"}`,
	"POST /api/v1/users":                                                          `{"displayName":"T","userPrincipalName":"t@team","passwordProfile":{"password":"a long enough password"}}`,
	"PATCH /api/v1/users/{id}":                                                    `{"passwordProfile":{"password":"a long enough password"}}`,
	"POST /api/v1/servicePrincipals/{id}/credentials":                             `{"append":true}`,
	"POST /api/v1/servicePrincipals/{id}/federatedIdentityCredentials":            `{"name":"made-by-test","issuer":"https://issuer.example","subject":"s"}`,
	"PATCH /api/v1/servicePrincipals/{id}/federatedIdentityCredentials/{fic}":     `{"issuer":"https://issuer.example","subject":"s"}`,
	"POST /api/v1/roleAssignments":                                                `{"assignee":"nobody","role":"Reader"}`,
	"POST /api/v1/workspaces/{workspace}/roleAssignments":                         `{"assignee":"nobody","role":"Reader"}`,
	"DELETE /api/v1/servicePrincipals/{id}/credentials/{keyId}":                   ``,
	"DELETE /api/v1/workspaces/{workspace}/roleAssignments/{id}":                  ``,
	"GET /api/v1/workspaces/{workspace}/secrets/{name}/versions":                  ``,
	"DELETE /api/v1/workspaces/{workspace}/datastores/{name}":                     ``,
	"DELETE /api/v1/workspaces/{workspace}/computes/{name}":                       ``,
	"DELETE /api/v1/workspaces/{workspace}":                                       ``,
	"GET /api/v1/workspaces/{workspace}/computes/{name}":                          ``,
	"GET /api/v1/workspaces/{workspace}/datastores/{name}":                        ``,
	"GET /api/v1/workspaces/{workspace}/secrets/{name}":                           ``,
	"DELETE /api/v1/workspaces/{workspace}/secrets/{name}":                        ``,
	"DELETE /api/v1/servicePrincipals/{id}":                                       ``,
	"GET /api/v1/servicePrincipals/{id}/credentials":                              ``,
	"GET /api/v1/servicePrincipals/{id}":                                          ``,
	"DELETE /api/v1/roleAssignments/{id}":                                         ``,
}

func fillPath(p string) string {
	return strings.NewReplacer("{workspace}", "ws-a", "{name}", "thing", "{id}", "nobody", "{keyId}", "no-such-key", "{fic}", "no-such-fic", "{tenant}", testTenant,
		"{path...}", "0/run/artifacts/model/MLmodel", "{model_id}", "m-00000000000000000000000000000000", "{tag_key...}", "k", "{rest...}", "no/such/endpoint",
		"{subscription}", "sub-1", "{resourceGroup}", "rg-1", "{attempt}", "no-such-attempt").Replace(p)
}

// TestRouteRoleMatrix calls every registered route as every kind of
// principal. A route missing from the expectation table fails the test, so
// no endpoint can be added without deciding who may call it.
func TestRouteRoleMatrix(t *testing.T) {
	probe := newFixture(t)
	routes := probe.srv.Routes()
	if len(routes) < len(matrixExpect) {
		t.Fatalf("only %d routes registered, the table names %d", len(routes), len(matrixExpect))
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		seen[key] = true
		if publicRoutes[key] || rt.Access == wharfhttp.AccessEndpoint {
			continue
		}
		allowed, ok := matrixExpect[key]
		if !ok {
			allowed, ok = mlflowMatrixExpect(rt)
		}
		if !ok {
			t.Errorf("route %s has no entry in the authorization matrix: decide which roles may call it", key)
			continue
		}
		allow := map[string]bool{}
		for _, n := range strings.Fields(allowed) {
			allow[n] = true
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			// A fresh server per route: mutating calls of one principal
			// must not change what the next one is allowed to do.
			f := newFixture(t)
			f.workspace("ws-a")
			f.workspace("ws-b")
			tokens := map[string]string{}
			for _, p := range matrixPrincipals {
				if p.grant[0] == "" {
					tokens[p.name] = f.principal(p.name)
				} else {
					tokens[p.name] = f.principal(p.name, p.grant)
				}
			}
			// Callers that may be allowed run after the denied ones, so a
			// successful delete cannot turn a later 403 into a 404.
			order := append([]string{}, "nobody", "ownerB", "computeop", "datasci", "reader", "contributor", "owner")
			for _, name := range order {
				status := call(t, f, rt.Method, fillPath(rt.Pattern), matrixBodies[key], tokens[name])
				if status == http.StatusUnauthorized {
					t.Errorf("%s as %s: got 401 with a valid token", key, name)
				}
				if allow[name] && status == http.StatusForbidden {
					t.Errorf("%s as %s: got 403, want allowed", key, name)
				}
				if !allow[name] && status != http.StatusForbidden {
					t.Errorf("%s as %s: got %d, want 403", key, name, status)
				}
			}
			// And with no token at all: 401, or for a studio page, the
			// way to the sign-in page.
			if rt.Page && rt.Method == http.MethodGet {
				if loc := signInRedirect(t, f, fillPath(rt.Pattern)); !strings.HasPrefix(loc, "/signin?next=") {
					t.Errorf("%s without a session: redirected to %q, want the sign-in page", key, loc)
				}
			} else if status := call(t, f, rt.Method, fillPath(rt.Pattern), matrixBodies[key], ""); status != http.StatusUnauthorized {
				t.Errorf("%s without a token: got %d, want 401", key, status)
			}
		})
	}
	for key := range matrixExpect {
		if !seen[key] {
			t.Errorf("matrix names %s, which is not a registered route", key)
		}
	}
}

// signInRedirect requests a page without credentials and returns where the
// answer, which must be 303, sends the browser.
func signInRedirect(t *testing.T, f *fixture, path string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(f.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET %s without a session: %d, want 303", path, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func call(t *testing.T, f *fixture, method, path, body, token string) int {
	t.Helper()
	var rd *bytes.Reader
	if body == "" && (method == "PUT" || method == "POST") {
		body = "{}"
	}
	rd = bytes.NewReader([]byte(body))
	req, err := http.NewRequestWithContext(context.Background(), method, f.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPublicRoutesNeedNoToken checks the public set is exactly what the
// server registers as public, and that each answers without credentials.
func TestPublicRoutesNeedNoToken(t *testing.T) {
	f := newFixture(t)
	for _, rt := range f.srv.Routes() {
		key := rt.Method + " " + rt.Pattern
		if !publicRoutes[key] {
			continue
		}
		status := call(t, f, rt.Method, fillPath(rt.Pattern), "", "")
		if status == http.StatusUnauthorized && rt.Method == "GET" {
			t.Errorf("public route %s answered 401", key)
		}
	}
}
