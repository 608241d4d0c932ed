package mlflowsearch

import (
	"reflect"
	"strings"
	"testing"
)

// TestTraceFilters checks the trace grammar: its own prefixes (trace.,
// request_metadata., metadata.), its attribute aliases, and that the
// prefixes of other searches are refused with the valid ones named.
func TestTraceFilters(t *testing.T) {
	for _, c := range []struct {
		filter string
		want   []Comparison
	}{
		{"trace.status = 'OK'", []Comparison{{KeyAttribute, "status", "=", "OK"}}},
		{"attributes.state IN ('OK', 'ERROR')", []Comparison{{KeyAttribute, "status", "IN", []string{"OK", "ERROR"}}}},
		{"timestamp > 5", []Comparison{{KeyAttribute, "timestamp_ms", ">", 5.0}}},
		{"execution_time <= 2", []Comparison{{KeyAttribute, "execution_time_ms", "<=", 2.0}}},
		{"end_time_ms >= 1", []Comparison{{KeyAttribute, "end_time_ms", ">=", 1.0}}},
		{"request_metadata.`mlflow.sourceRun` = 'r'", []Comparison{{KeyMetadata, "mlflow.sourceRun", "=", "r"}}},
		{"metadata.k IS NULL", []Comparison{{KeyMetadata, "k", "IS NULL", nil}}},
		{"tags.team LIKE 'n%' AND name = 'x' AND run_id != 'y'", []Comparison{
			{KeyTag, "team", "LIKE", "n%"}, {KeyAttribute, "name", "=", "x"}, {KeyAttribute, "run_id", "!=", "y"}}},
		{"trace_id = 'tr-1'", []Comparison{{KeyAttribute, "request_id", "=", "tr-1"}}},
	} {
		got, err := ParseFilter(TracesEntity, c.filter)
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got  %#v\n want %#v", c.filter, got, c.want)
		}
	}
	for _, c := range []struct{ filter, msg string }{
		{"metrics.x > 1", "Invalid entity type 'metrics'. Valid values are ['attribute', 'attributes', 'metadata', 'request_metadata', 'tag', 'tags', 'trace']"},
		{"span.name = 'x'", "Invalid entity type 'span'"},
		{"status > 'OK'", "Invalid comparator '>'"},
		{"timestamp_ms = 'x'", "Expected numeric value type"},
		{"metadata.k IN ('a')", "Invalid comparator 'IN'"},
	} {
		_, err := ParseFilter(TracesEntity, c.filter)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want one containing %q", c.filter, err, c.msg)
		}
	}
	// The prefixes of runs are what they were.
	if _, err := ParseFilter(RunsEntity, "trace.status = 'OK'"); err == nil ||
		!strings.Contains(err.Error(), "Valid values are ['attr',") || strings.Contains(err.Error(), "'metadata'") {
		t.Errorf("runs accept or list the trace prefix: %v", err)
	}
	obs, err := ParseOrderBy(TracesEntity, []string{"timestamp DESC", "tags.rank", "metadata.k ASC"})
	want := []OrderBy{{KeyAttribute, "timestamp_ms", false}, {KeyTag, "rank", true}, {KeyMetadata, "k", true}}
	if err != nil || !reflect.DeepEqual(obs, want) {
		t.Errorf("trace order-by: %#v, %v; want %#v", obs, err, want)
	}
}
