package mlflowsearch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseFilterValid(t *testing.T) {
	tests := []struct {
		entity Entity
		filter string
		want   []Comparison
	}{
		{RunsEntity, "", nil},
		{RunsEntity, "   \t\n", nil},
		{RunsEntity, "metrics.acc > 0.9", []Comparison{{KeyMetric, "acc", ">", 0.9}}},
		{RunsEntity, "metric.acc>=1", []Comparison{{KeyMetric, "acc", ">=", 1.0}}},
		{RunsEntity, "metrics.loss < -1.5e-3", []Comparison{{KeyMetric, "loss", "<", -1.5e-3}}},
		{RunsEntity, "metrics.loss <= .5", []Comparison{{KeyMetric, "loss", "<=", 0.5}}},
		{RunsEntity, "metrics.n != 2E3", []Comparison{{KeyMetric, "n", "!=", 2000.0}}},
		{RunsEntity, "metrics.n = +7", []Comparison{{KeyMetric, "n", "=", 7.0}}},
		{RunsEntity, "metrics.`f1 score` > 0.5", []Comparison{{KeyMetric, "f1 score", ">", 0.5}}},
		{RunsEntity, `metrics."val.loss" < 1`, []Comparison{{KeyMetric, "val.loss", "<", 1.0}}},
		{RunsEntity, "metrics.val-loss < 1", []Comparison{{KeyMetric, "val-loss", "<", 1.0}}},
		{RunsEntity, "metrics.train/acc > 0", []Comparison{{KeyMetric, "train/acc", ">", 0.0}}},
		{RunsEntity, "params.lr = '0.01'", []Comparison{{KeyParam, "lr", "=", "0.01"}}},
		{RunsEntity, `param.model = "bert"`, []Comparison{{KeyParam, "model", "=", "bert"}}},
		{RunsEntity, "parameters.opt LIKE 'ad%'", []Comparison{{KeyParam, "opt", "LIKE", "ad%"}}},
		{RunsEntity, "params.opt ilike '%AD%'", []Comparison{{KeyParam, "opt", "ILIKE", "%AD%"}}},
		{RunsEntity, `tags."mlflow.runName" = 'x'`, []Comparison{{KeyTag, "mlflow.runName", "=", "x"}}},
		{RunsEntity, "tags.mlflow.runName = 'x'", []Comparison{{KeyTag, "mlflow.runName", "=", "x"}}},
		{RunsEntity, "tag.`my tag` != 'a b'", []Comparison{{KeyTag, "my tag", "!=", "a b"}}},
		{RunsEntity, `tags.note = 'it\'s'`, []Comparison{{KeyTag, "note", "=", "it's"}}},
		{RunsEntity, `tags.note = 'it''s'`, []Comparison{{KeyTag, "note", "=", "it's"}}},
		{RunsEntity, `tags.path = 'C:\dir\\x'`, []Comparison{{KeyTag, "path", "=", `C:\dir\x`}}},
		{RunsEntity, `tags.q = "say \"hi\""`, []Comparison{{KeyTag, "q", "=", `say "hi"`}}},
		{RunsEntity, "tags.empty = ''", []Comparison{{KeyTag, "empty", "=", ""}}},
		{RunsEntity, "tags.owner IS NULL", []Comparison{{KeyTag, "owner", "IS NULL", nil}}},
		{RunsEntity, "tags.owner is not null", []Comparison{{KeyTag, "owner", "IS NOT NULL", nil}}},
		{RunsEntity, "tags.t = 'a AND b' AND tags.u = 'OR'", []Comparison{
			{KeyTag, "t", "=", "a AND b"}, {KeyTag, "u", "=", "OR"},
		}},
		{RunsEntity, "run_name = 'best'", []Comparison{{KeyAttribute, "run_name", "=", "best"}}},
		{RunsEntity, "attributes.run_name LIKE 'b%'", []Comparison{{KeyAttribute, "run_name", "LIKE", "b%"}}},
		{RunsEntity, "attr.status = 'FINISHED'", []Comparison{{KeyAttribute, "status", "=", "FINISHED"}}},
		{RunsEntity, "run.user_id != 'bob'", []Comparison{{KeyAttribute, "user_id", "!=", "bob"}}},
		{RunsEntity, "attribute.artifact_uri = 's3://b/x'", []Comparison{{KeyAttribute, "artifact_uri", "=", "s3://b/x"}}},
		{RunsEntity, "lifecycle_stage = 'active'", []Comparison{{KeyAttribute, "lifecycle_stage", "=", "active"}}},
		{RunsEntity, "`start_time` > 5", []Comparison{{KeyAttribute, "start_time", ">", 5.0}}},
		{RunsEntity, "attributes.`end_time` <= 1700000000000", []Comparison{{KeyAttribute, "end_time", "<=", 1700000000000.0}}},
		{RunsEntity, "created > 10", []Comparison{{KeyAttribute, "start_time", ">", 10.0}}},
		{RunsEntity, "run_uuid = 'abc'", []Comparison{{KeyAttribute, "run_id", "=", "abc"}}},
		{RunsEntity, "attributes.id != 'abc'", []Comparison{{KeyAttribute, "run_id", "!=", "abc"}}},
		{RunsEntity, "run_id IN ('a', \"b\",'c')", []Comparison{{KeyAttribute, "run_id", "IN", []string{"a", "b", "c"}}}},
		{RunsEntity, "attributes.run_id not in ('a')", []Comparison{{KeyAttribute, "run_id", "NOT IN", []string{"a"}}}},
		{RunsEntity, "datasets.name = 'mnist'", []Comparison{{KeyDataset, "name", "=", "mnist"}}},
		{RunsEntity, "dataset.digest IN ('d1', 'd2')", []Comparison{{KeyDataset, "digest", "IN", []string{"d1", "d2"}}}},
		{RunsEntity, "datasets.context ILIKE 'train%'", []Comparison{{KeyDataset, "context", "ILIKE", "train%"}}},
		{RunsEntity, "metrics.a>-1", []Comparison{{KeyMetric, "a", ">", -1.0}}},
		{RunsEntity, "metrics.a!=-0.5", []Comparison{{KeyMetric, "a", "!=", -0.5}}},
		{RunsEntity, "tags.'single' = 'v'", []Comparison{{KeyTag, "single", "=", "v"}}},
		{RunsEntity, "tags.x='a'AND tags.y=\"b\"", []Comparison{{KeyTag, "x", "=", "a"}, {KeyTag, "y", "=", "b"}}},
		{RunsEntity, "METRICS.acc > 1", []Comparison{{KeyMetric, "acc", ">", 1.0}}},
		{RunsEntity, "metrics.acc > 0.9 and params.lr = '0.1' AND tags.x LIKE '%y%'", []Comparison{
			{KeyMetric, "acc", ">", 0.9}, {KeyParam, "lr", "=", "0.1"}, {KeyTag, "x", "LIKE", "%y%"},
		}},
		{RunsEntity, "metrics.acc>0.9 AND attributes.status='RUNNING'", []Comparison{
			{KeyMetric, "acc", ">", 0.9}, {KeyAttribute, "status", "=", "RUNNING"},
		}},
		{RunsEntity, "tags.ünïcode = 'ß'", []Comparison{{KeyTag, "ünïcode", "=", "ß"}}},

		{ExperimentsEntity, "name = 'exp'", []Comparison{{KeyAttribute, "name", "=", "exp"}}},
		{ExperimentsEntity, "attribute.name ILIKE '%Exp%'", []Comparison{{KeyAttribute, "name", "ILIKE", "%Exp%"}}},
		{ExperimentsEntity, "creation_time > 100 AND last_update_time < 200", []Comparison{
			{KeyAttribute, "creation_time", ">", 100.0}, {KeyAttribute, "last_update_time", "<", 200.0},
		}},
		{ExperimentsEntity, "tags.k = 'v'", []Comparison{{KeyTag, "k", "=", "v"}}},

		{RegisteredModelsEntity, "name LIKE 'm%'", []Comparison{{KeyAttribute, "name", "LIKE", "m%"}}},
		{RegisteredModelsEntity, "tags.`stage` != 'x'", []Comparison{{KeyTag, "stage", "!=", "x"}}},

		{ModelVersionsEntity, "name = 'm' AND version_number >= 3", []Comparison{
			{KeyAttribute, "name", "=", "m"}, {KeyAttribute, "version_number", ">=", 3.0},
		}},
		{ModelVersionsEntity, "run_id IN ('r1', 'r2')", []Comparison{{KeyAttribute, "run_id", "IN", []string{"r1", "r2"}}}},
		{ModelVersionsEntity, "source = 's3://x'", []Comparison{{KeyAttribute, "source_path", "=", "s3://x"}}},
		{ModelVersionsEntity, "source_path LIKE 'runs:/%'", []Comparison{{KeyAttribute, "source_path", "LIKE", "runs:/%"}}},

		{LoggedModelsEntity, "metrics.acc > 0.5 AND params.p = 'x' AND tags.t = 'y'", []Comparison{
			{KeyMetric, "acc", ">", 0.5}, {KeyParam, "p", "=", "x"}, {KeyTag, "t", "=", "y"},
		}},
		{LoggedModelsEntity, "model_id = 'm-1' AND status = 'READY' AND creation_timestamp > 1", []Comparison{
			{KeyAttribute, "model_id", "=", "m-1"}, {KeyAttribute, "status", "=", "READY"},
			{KeyAttribute, "creation_timestamp", ">", 1.0},
		}},
		{LoggedModelsEntity, "source_run_id = 'r' AND model_type = 'agent' AND name LIKE 'a%' AND last_updated_timestamp <= 9",
			[]Comparison{
				{KeyAttribute, "source_run_id", "=", "r"}, {KeyAttribute, "model_type", "=", "agent"},
				{KeyAttribute, "name", "LIKE", "a%"}, {KeyAttribute, "last_updated_timestamp", "<=", 9.0},
			}},
	}
	for _, tt := range tests {
		got, err := ParseFilter(tt.entity, tt.filter)
		if err != nil {
			t.Errorf("ParseFilter(%v, %q): unexpected error %v", tt.entity, tt.filter, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFilter(%v, %q)\n got %#v\nwant %#v", tt.entity, tt.filter, got, tt.want)
		}
	}
}

func TestParseFilterInvalid(t *testing.T) {
	tests := []struct {
		entity Entity
		filter string
		want   string // fragment of the error message
	}{
		// Structure.
		{RunsEntity, "metrics.acc >", "Invalid clause(s) in filter string: 'metrics.acc >'"},
		{RunsEntity, "metrics.acc", "Invalid clause(s) in filter string: 'metrics.acc'"},
		{RunsEntity, "metrics.a > 1 OR metrics.b > 2", "OR is not supported"},
		{RunsEntity, "metrics.a > 1 or metrics.b > 2", "OR is not supported"},
		{RunsEntity, "metrics.a > 1 AND", "empty clause"},
		{RunsEntity, "AND metrics.a > 1", "empty clause"},
		{RunsEntity, "metrics.a > 1 AND AND metrics.b > 2", "empty clause"},
		{RunsEntity, "metrics.a > 1 2", "Invalid clause(s) in filter string: 'metrics.a > 1 2'"},
		{RunsEntity, "metrics.a > 1 ;DROP TABLE runs", "Invalid clause(s) in filter string: 'metrics.a > 1 ;DROP TABLE runs'"},
		{RunsEntity, "metrics.a > 1abc", "Invalid clause(s)"},
		{RunsEntity, "params.p = 'x' junk", "Invalid clause(s) in filter string: 'params.p = 'x' junk'"},
		{RunsEntity, "params.p = 'x", "unterminated quoted string"},
		{RunsEntity, `tags."mlflow.runName = 'x'`, "unterminated quoted string"},
		{RunsEntity, "metrics.`f1 score > 1", "unterminated quoted string"},
		{RunsEntity, "= 'x'", "Invalid clause(s) in filter string: '= 'x''"},
		{RunsEntity, "'x' = 'x'", "Invalid clause(s)"},
		{RunsEntity, "tags.x = 'a' tags.y = 'b'", "Invalid clause(s)"},
		{RunsEntity, "run_id IN ('a', 'b'", "unclosed list"},
		{RunsEntity, "run_id IN ('a' 'b')", "Expected a quoted string value list"},
		{RunsEntity, "run_id IN 'a'", "Expected a quoted string value list"},
		{RunsEntity, "run_id IN ('a', 1)", "Expected a quoted string value list"},
		{RunsEntity, "run_id IN ()", "at least one value"},
		{RunsEntity, "run_id IN", "Expected a quoted string value list"},
		{RunsEntity, "run_id IN ('a') extra", "Invalid clause(s)"},
		{RunsEntity, "run_id IN ('a' AND 'b')", "Got 'AND'"},
		{RunsEntity, "tags.x IS NULL 'a'", "Invalid clause(s) in filter string: 'tags.x IS NULL 'a''"},
		{RunsEntity, "tags.x NOT 'a'", "Invalid comparator 'NOT'"},

		// Comparators by key type.
		{RunsEntity, "metrics.acc ~ 1", "Invalid comparator '~'"},
		{RunsEntity, "metrics.acc == 1", "Invalid comparator '=='"},
		{RunsEntity, "metrics.acc <> 1", "Invalid comparator '<>'"},
		{RunsEntity, "metrics.acc LIKE '1%'", "Invalid comparator 'LIKE' not one of ['=', '!=', '<', '<=', '>', '>=']"},
		{RunsEntity, "metrics.acc IS NULL", "Invalid comparator 'IS NULL'"},
		{RunsEntity, "params.p > 'a'", "Invalid comparator '>'"},
		{RunsEntity, "params.p IN ('a')", "Invalid comparator 'IN'"},
		{RunsEntity, "params.p IS NULL", "Invalid comparator 'IS NULL'"},
		{RunsEntity, "tags.t < 'a'", "Invalid comparator '<'"},
		{RunsEntity, "tags.t NOT LIKE 'a'", "Invalid comparator 'NOT LIKE'"},
		{RunsEntity, "tags.t IS 'a'", "Invalid comparator 'IS'"},
		{RunsEntity, "datasets.name > 'a'", "Invalid comparator '>'"},
		{RunsEntity, "run_id LIKE 'a%'", "Invalid comparator 'LIKE'"},
		{RunsEntity, "run_name IN ('a')", "Invalid comparator 'IN'"},
		{RunsEntity, "start_time LIKE '1'", "Invalid comparator 'LIKE'"},
		{ModelVersionsEntity, "run_id NOT IN ('a')", "Invalid comparator 'NOT IN'"},
		{RegisteredModelsEntity, "name > 'a'", "Invalid comparator '>'"},

		// Value types.
		{RunsEntity, "metrics.acc > abc", "Expected numeric value type for metric. Found 'abc'"},
		{RunsEntity, "metrics.acc > '0.5'", "Expected numeric value type for metric. Found '0.5'"},
		{RunsEntity, "metrics.acc > 1e999", "Expected numeric value type for metric. Found '1e999'"},
		{RunsEntity, "start_time > 'x'", "Expected numeric value type for attribute 'start_time'"},
		{RunsEntity, "params.p = 1", "Expected a quoted string value for param (e.g. 'my-value'). Got value '1'"},
		{RunsEntity, "tags.t = x", "Expected a quoted string value for tag"},
		{RunsEntity, "status = RUNNING", "Expected a quoted string value for attribute 'status'"},
		{RunsEntity, "tags.t = `x`", "Expected a quoted string value for tag"},

		// Identifiers.
		{RunsEntity, "foo = 'x'", "Invalid attribute key 'foo' specified. Valid keys are '['artifact_uri', "},
		{RunsEntity, "attributes.name = 'x'", "Invalid attribute key 'name'"},
		{RunsEntity, "attributes.run.name = 'x'", "Only one '.' allowed"},
		{RunsEntity, "metrics.`a`.b > 1", "Only one '.' allowed"},
		{RunsEntity, "datasets.foo = 'x'", "Invalid dataset key 'foo' specified"},
		{RunsEntity, "datasets.name.x = 'x'", "Only one '.' allowed"},
		{RunsEntity, "foo.bar = 'x'", "Invalid entity type 'foo'"},
		{RunsEntity, "metrics. > 1", "Invalid identifier 'metrics.'"},
		{RunsEntity, "metrics.`` > 1", "Invalid identifier"},
		{ExperimentsEntity, "metrics.acc > 1", "Invalid entity type 'metrics'. Valid values are ['attr', 'attribute', 'attributes', 'run', 'tag', 'tags']"},
		{ExperimentsEntity, "run_name = 'x'", "Invalid attribute key 'run_name'"},
		{RegisteredModelsEntity, "params.p = 'x'", "Invalid entity type 'params'"},
		{RegisteredModelsEntity, "version_number = 1", "Invalid attribute key 'version_number'"},
		{ModelVersionsEntity, "datasets.name = 'x'", "Invalid entity type 'datasets'"},
		{LoggedModelsEntity, "datasets.name = 'x'", "Invalid entity type 'datasets'"},
		{LoggedModelsEntity, "run_id = 'x'", "Invalid attribute key 'run_id'"},
		{Entity(99), "name = 'x'", "Unsupported search entity"},
	}
	for _, tt := range tests {
		got, err := ParseFilter(tt.entity, tt.filter)
		if err == nil {
			t.Errorf("ParseFilter(%v, %q) = %#v, want error containing %q", tt.entity, tt.filter, got, tt.want)
			continue
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("ParseFilter(%v, %q): error %T is not *Error", tt.entity, tt.filter, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFilter(%v, %q) error\n got %q\nwant fragment %q", tt.entity, tt.filter, err, tt.want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	seeds := []string{
		"",
		"metrics.acc > 0.9 AND params.lr = '0.01'",
		"tags.`my tag` IS NOT NULL",
		`tags."mlflow.runName" ILIKE '%x%'`,
		"run_id NOT IN ('a', 'b')",
		"datasets.digest IN ('d')",
		"metrics.a > -1.5e-3 AND start_time >= 0",
		"metrics.acc >",
		"params.p = 'x",
		"((((",
		"a OR b",
		"tags. `x`.y = 'a\\'b'",
		"\xff\xfe = '\x00'",
		"IS NOT NULL AND NOT IN",
	}
	for _, s := range seeds {
		f.Add(int(RunsEntity), s)
		f.Add(int(LoggedModelsEntity), s)
	}
	f.Fuzz(func(t *testing.T, e int, filter string) {
		cmps, err := ParseFilter(Entity(e%6), filter)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Msg == "" {
				t.Fatalf("error %v is not a non-empty *Error", err)
			}
			return
		}
		for _, c := range cmps {
			switch v := c.Value.(type) {
			case nil:
				if c.Op != OpIsNull && c.Op != OpIsNotNull {
					t.Fatalf("nil value with op %q", c.Op)
				}
			case string, float64:
			case []string:
				if len(v) == 0 {
					t.Fatalf("empty IN list accepted")
				}
			default:
				t.Fatalf("unexpected value type %T", v)
			}
			if !allKnownOps[c.Op] {
				t.Fatalf("unknown op %q accepted", c.Op)
			}
		}
		_, _ = ParseOrderBy(Entity(e%6), []string{filter})
	})
}
