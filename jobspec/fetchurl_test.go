package jobspec_test

import (
	"testing"

	"github.com/wharfml/wharf/jobspec"
)

func TestFetchURL(t *testing.T) {
	for in, want := range map[string]string{
		"wasbs://c@acct.blob.core.windows.net/x/y.csv": "https://acct.blob.core.windows.net/c/x/y.csv",
		"wasb://c@acct.blob.core.windows.net/y.csv":    "https://acct.blob.core.windows.net/c/y.csv",
		"abfss://c@acct.dfs.core.windows.net/x/y.csv":  "https://acct.blob.core.windows.net/c/x/y.csv",
		"https://example.com/data/y.csv?sv=1":          "https://example.com/data/y.csv?sv=1",
		"http://127.0.0.1:8080/y.csv":                  "http://127.0.0.1:8080/y.csv",
	} {
		got, err := jobspec.FetchURL(in)
		if err != nil || got != want {
			t.Errorf("FetchURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"adl://acct.azuredatalakestore.net/x.csv", "wasbs://acct.blob.core.windows.net/x.csv", "https:///x.csv"} {
		if got, err := jobspec.FetchURL(in); err == nil {
			t.Errorf("FetchURL(%q) = %q, want an error", in, got)
		}
	}
}
