package mlflow

import "testing"

// TestSourceChecks pins the pieces of MLflow's model-version source checks
// to answers read from MLflow's server (the parity test in mlflowtest
// compares whole requests with a running one).
func TestSourceChecks(t *testing.T) {
	for source, ok := range map[string]bool{
		"s3://bucket/path/model":                              true,
		"mlflow-artifacts:/1/abc/artifacts/model":             true,
		"runs:/abc/model":                                     true,
		"models:/m-0123":                                      true,
		"s3://bucket":                                         false, // no path: resolves to the server's cwd
		"s3://bucket/a/../b":                                  false,
		"s3://bucket/a/%2E%2E/b":                              false,
		"s3://bucket/a/%252E%252E/b":                          false, // unquoted until it stops changing
		"s3://bucket/a/./b":                                   false,
		"http://host/api/2.0/mlflow-artifacts/artifacts/x/..": false,
		"s3://bucket/a%00b":                                   false,
		"s3://bucket/a/b/":                                    true, // a trailing slash is dropped
	} {
		if err := checkNoRelativeParts(source); (err == nil) != ok {
			t.Errorf("checkNoRelativeParts(%q) = %v, want ok %v", source, err, ok)
		}
	}
	for source, local := range map[string]bool{
		"/tmp/model": true, "relative/model": true, "file:///tmp/model": true, "file://localhost/tmp": true,
		"s3://bucket/x": false, "runs:/abc/model": false, "mlflow-artifacts:/1/x": false,
	} {
		if got, err := isLocalURI(source); err != nil || got != local {
			t.Errorf("isLocalURI(%q) = %v, %v; want %v", source, got, err, local)
		}
	}
	if _, err := isLocalURI("file://remote/tmp/model"); err == nil {
		t.Error("a file: URI naming a remote host is accepted")
	}
	for _, c := range []struct {
		source, root string
		within       bool
	}{
		{"mlflow-artifacts:/1/abc/artifacts/model", "mlflow-artifacts:/1/abc/artifacts", true},
		{"mlflow-artifacts:/1/abc/artifacts", "mlflow-artifacts:/1/abc/artifacts", true},
		{"mlflow-artifacts:/1/abcd/artifacts", "mlflow-artifacts:/1/abc/artifacts", false},
		{"mlflow-artifacts:/1/ab%63/artifacts/m", "mlflow-artifacts:/1/abc/artifacts", true},
		{"MLFLOW-ARTIFACTS:/1/abc/artifacts/m", "mlflow-artifacts:/1/abc/artifacts", true},
		{"mlflow-artifacts://host/1/abc/artifacts/m", "mlflow-artifacts:/1/abc/artifacts", false},
		{"s3://b/1/abc/artifacts/m", "mlflow-artifacts:/1/abc/artifacts", false},
	} {
		if got := withinRoot(c.source, c.root); got != c.within {
			t.Errorf("withinRoot(%q, %q) = %v, want %v", c.source, c.root, got, c.within)
		}
	}
	for uri, want := range map[string]modelURI{
		"models:/m-0123":          {modelID: "m-0123"},
		"models:/taxi/3":          {name: "taxi", version: "3"},
		"models:/taxi/latest":     {name: "taxi"},
		"models:/taxi/Production": {name: "taxi", stage: "Production"},
		"models:/taxi@champion":   {name: "taxi", alias: "champion"},
	} {
		if got, ok := parseModelURI(uri); !ok || got != want {
			t.Errorf("parseModelURI(%q) = %+v, %v; want %+v", uri, got, ok, want)
		}
	}
	for _, bad := range []string{"models:/", "models:/a/b/c", "models:/a/ ", "runs:/a/b", "models:/a@"} {
		if got, ok := parseModelURI(bad); ok {
			t.Errorf("parseModelURI(%q) = %+v, want refused", bad, got)
		}
	}
	if got := pyJSONString("é \"<x>\" \U0001F600"); got != `"\u00e9 \"<x>\" \ud83d\ude00"` {
		t.Errorf("pyJSONString = %s", got)
	}
}
