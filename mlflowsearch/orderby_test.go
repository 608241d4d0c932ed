package mlflowsearch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseOrderByValid(t *testing.T) {
	tests := []struct {
		entity  Entity
		clauses []string
		want    []OrderBy
	}{
		{RunsEntity, nil, nil},
		{RunsEntity, []string{"start_time"}, []OrderBy{{KeyAttribute, "start_time", true}}},
		{RunsEntity, []string{"metrics.acc DESC", "params.lr asc", "tags.t"}, []OrderBy{
			{KeyMetric, "acc", false}, {KeyParam, "lr", true}, {KeyTag, "t", true},
		}},
		{RunsEntity, []string{"metrics.`f1 score` desc"}, []OrderBy{{KeyMetric, "f1 score", false}}},
		{RunsEntity, []string{`tags."mlflow.runName" DESC`}, []OrderBy{{KeyTag, "mlflow.runName", false}}},
		{RunsEntity, []string{"tags.mlflow.runName"}, []OrderBy{{KeyTag, "mlflow.runName", true}}},
		{RunsEntity, []string{"attributes.end_time DESC", "run_name", "status", "created"}, []OrderBy{
			{KeyAttribute, "end_time", false}, {KeyAttribute, "run_name", true},
			{KeyAttribute, "status", true}, {KeyAttribute, "start_time", true},
		}},
		{RunsEntity, []string{"run_uuid", "attr.user_id", "lifecycle_stage", "artifact_uri", "experiment_id"}, []OrderBy{
			{KeyAttribute, "run_id", true}, {KeyAttribute, "user_id", true}, {KeyAttribute, "lifecycle_stage", true},
			{KeyAttribute, "artifact_uri", true}, {KeyAttribute, "experiment_id", true},
		}},
		{ExperimentsEntity, []string{"name", "experiment_id DESC", "creation_time", "last_update_time ASC"}, []OrderBy{
			{KeyAttribute, "name", true}, {KeyAttribute, "experiment_id", false},
			{KeyAttribute, "creation_time", true}, {KeyAttribute, "last_update_time", true},
		}},
		{RegisteredModelsEntity, []string{"name DESC", "timestamp", "last_updated_timestamp desc"}, []OrderBy{
			{KeyAttribute, "name", false}, {KeyAttribute, "last_updated_timestamp", true},
			{KeyAttribute, "last_updated_timestamp", false},
		}},
		{ModelVersionsEntity, []string{"name", "version_number DESC", "creation_timestamp", "last_updated_timestamp"}, []OrderBy{
			{KeyAttribute, "name", true}, {KeyAttribute, "version_number", false},
			{KeyAttribute, "creation_timestamp", true}, {KeyAttribute, "last_updated_timestamp", true},
		}},
		{LoggedModelsEntity, []string{"creation_timestamp DESC", "metrics.acc"}, []OrderBy{
			{KeyAttribute, "creation_timestamp", false}, {KeyMetric, "acc", true},
		}},
	}
	for _, tt := range tests {
		got, err := ParseOrderBy(tt.entity, tt.clauses)
		if err != nil {
			t.Errorf("ParseOrderBy(%v, %q): unexpected error %v", tt.entity, tt.clauses, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseOrderBy(%v, %q)\n got %#v\nwant %#v", tt.entity, tt.clauses, got, tt.want)
		}
	}
}

func TestParseOrderByInvalid(t *testing.T) {
	tests := []struct {
		entity Entity
		clause string
		want   string
	}{
		{RunsEntity, "", "Invalid order_by clause ''. Could not be parsed."},
		{RunsEntity, "start_time sideways", "Invalid order_by clause 'start_time sideways'"},
		{RunsEntity, "start_time ASC DESC", "Could not be parsed"},
		{RunsEntity, "metrics.acc > 1", "Could not be parsed"},
		{RunsEntity, "'start_time'", "Could not be parsed"},
		{RunsEntity, "metrics.`acc", "Could not be parsed"},
		{RunsEntity, "foo", "Invalid attribute key 'foo' specified"},
		{RunsEntity, "datasets.name", "Invalid entity type 'datasets'"},
		{ExperimentsEntity, "tags.t", "Invalid entity type 'tags'"},
		{ExperimentsEntity, "start_time", "Invalid attribute key 'start_time'"},
		{RegisteredModelsEntity, "version_number", "Invalid attribute key 'version_number'"},
		{ModelVersionsEntity, "metrics.acc", "Invalid entity type 'metrics'"},
		{ModelVersionsEntity, "timestamp", "Invalid attribute key 'timestamp'"},
		{LoggedModelsEntity, "params.p", "Invalid entity type 'params'"},
	}
	for _, tt := range tests {
		got, err := ParseOrderBy(tt.entity, []string{"start_time", tt.clause})
		if tt.entity != RunsEntity {
			got, err = ParseOrderBy(tt.entity, []string{tt.clause})
		}
		if err == nil {
			t.Errorf("ParseOrderBy(%v, %q) = %#v, want error containing %q", tt.entity, tt.clause, got, tt.want)
			continue
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("ParseOrderBy(%v, %q): error %T is not *Error", tt.entity, tt.clause, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseOrderBy(%v, %q) error\n got %q\nwant fragment %q", tt.entity, tt.clause, err, tt.want)
		}
	}
}
