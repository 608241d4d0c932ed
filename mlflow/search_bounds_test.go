package mlflow_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestMLflowHugeFilterIsTheClientsError: a filter of 2000 clauses used to
// reach the database and fail there as a 500; every search now answers
// 400 INVALID_PARAMETER_VALUE naming the filter.
func TestMLflowHugeFilterIsTheClientsError(t *testing.T) {
	f := newMLflowFixture(t)
	c := f.owner
	huge := func(clause string) string {
		return strings.TrimSuffix(strings.Repeat(clause+" and ", 2000), " and ")
	}
	metrics, tags := huge("metrics.m > 0"), huge("tags.t = 'x'")
	for _, call := range []struct {
		method, path string
		body         any
	}{
		{"POST", "runs/search", map[string]any{"experiment_ids": []string{"0"}, "filter": metrics}},
		{"POST", "experiments/search", map[string]any{"filter": tags}},
		{"POST", "logged-models/search", map[string]any{"experiment_ids": []string{"0"}, "filter": tags}},
		{"GET", "registered-models/search?filter=" + url.QueryEscape(tags), nil},
		{"GET", "model-versions/search?filter=" + url.QueryEscape(tags), nil},
	} {
		r := c.fails(call.method, api(call.path), call.body, 400, "INVALID_PARAMETER_VALUE")
		if msg := r.body["message"].(string); !strings.Contains(msg, "'filter'") {
			t.Errorf("%s: message %q does not name the filter", call.path, msg)
		}
	}
}
