package mlflowsearch

import "sort"

var (
	numericOps  = []string{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
	stringOps   = []string{OpEq, OpNe, OpLike, OpILike}
	idOps       = []string{OpEq, OpNe, OpIn, OpNotIn}
	tagOps      = []string{OpEq, OpNe, OpLike, OpILike, OpIsNull, OpIsNotNull}
	datasetOps  = []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}
	allKnownOps = map[string]bool{
		OpEq: true, OpNe: true, OpLt: true, OpLe: true, OpGt: true, OpGe: true,
		OpLike: true, OpILike: true, OpIn: true, OpNotIn: true,
		OpIsNull: true, OpIsNotNull: true,
	}
)

// rule says what a key accepts: the comparators, and whether its values are
// numbers or quoted strings.
type rule struct {
	numeric bool
	ops     []string
}

var (
	metricRule  = rule{numeric: true, ops: numericOps}
	paramRule   = rule{ops: stringOps}
	tagRule     = rule{ops: tagOps}
	datasetRule = rule{ops: datasetOps}
	numAttr     = rule{numeric: true, ops: numericOps}
	strAttr     = rule{ops: stringOps}
)

// datasetKeys are the dataset fields MLflow lets runs be filtered on.
var datasetKeys = []string{"context", "digest", "name"}

// prefixes maps every identifier prefix MLflow accepts to its key type.
var prefixes = map[string]KeyType{
	"metric": KeyMetric, "metrics": KeyMetric,
	"param": KeyParam, "params": KeyParam, "parameter": KeyParam, "parameters": KeyParam,
	"tag": KeyTag, "tags": KeyTag,
	"attribute": KeyAttribute, "attributes": KeyAttribute, "attr": KeyAttribute, "run": KeyAttribute,
	"dataset": KeyDataset, "datasets": KeyDataset,
}

// entitySpec is what one search endpoint accepts.
type entitySpec struct {
	filterTypes map[KeyType]bool
	attrs       map[string]rule   // canonical attribute -> rule, for filters
	attrAliases map[string]string // accepted spelling -> canonical, for filters
	orderTypes  map[KeyType]bool
	orderAttrs  map[string]string // accepted spelling -> canonical, for order-by
}

func aliasesOf(attrs map[string]rule, extra map[string]string) map[string]string {
	m := map[string]string{}
	for k := range attrs {
		m[k] = k
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func identity(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m[n] = n
	}
	return m
}

func types(ts ...KeyType) map[KeyType]bool {
	m := map[KeyType]bool{}
	for _, t := range ts {
		m[t] = true
	}
	return m
}

var specs = func() map[Entity]*entitySpec {
	runAttrs := map[string]rule{
		"run_id":          {ops: idOps},
		"run_name":        strAttr,
		"status":          strAttr,
		"user_id":         strAttr,
		"artifact_uri":    strAttr,
		"lifecycle_stage": strAttr,
		"start_time":      numAttr,
		"end_time":        numAttr,
	}
	runAliases := map[string]string{"run_uuid": "run_id", "id": "run_id", "created": "start_time"}
	runOrder := identity("run_id", "run_name", "status", "user_id", "artifact_uri",
		"lifecycle_stage", "start_time", "end_time", "experiment_id")
	for k, v := range runAliases {
		runOrder[k] = v
	}

	expAttrs := map[string]rule{
		"name":             strAttr,
		"creation_time":    numAttr,
		"last_update_time": numAttr,
	}

	rmAttrs := map[string]rule{"name": strAttr}
	rmOrder := identity("name", "last_updated_timestamp")
	rmOrder["timestamp"] = "last_updated_timestamp"

	mvAttrs := map[string]rule{
		"name":           strAttr,
		"run_id":         {ops: []string{OpEq, OpNe, OpIn}},
		"source_path":    strAttr,
		"version_number": numAttr,
	}

	lmAttrs := map[string]rule{
		"name":                   strAttr,
		"model_id":               {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"status":                 strAttr,
		"source_run_id":          {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"model_type":             strAttr,
		"creation_timestamp":     numAttr,
		"last_updated_timestamp": numAttr,
	}

	return map[Entity]*entitySpec{
		RunsEntity: {
			filterTypes: types(KeyMetric, KeyParam, KeyTag, KeyAttribute, KeyDataset),
			attrs:       runAttrs,
			attrAliases: aliasesOf(runAttrs, runAliases),
			orderTypes:  types(KeyMetric, KeyParam, KeyTag, KeyAttribute),
			orderAttrs:  runOrder,
		},
		ExperimentsEntity: {
			filterTypes: types(KeyAttribute, KeyTag),
			attrs:       expAttrs,
			attrAliases: aliasesOf(expAttrs, nil),
			orderTypes:  types(KeyAttribute),
			orderAttrs:  identity("name", "experiment_id", "creation_time", "last_update_time"),
		},
		RegisteredModelsEntity: {
			filterTypes: types(KeyAttribute, KeyTag),
			attrs:       rmAttrs,
			attrAliases: aliasesOf(rmAttrs, nil),
			orderTypes:  types(KeyAttribute),
			orderAttrs:  rmOrder,
		},
		ModelVersionsEntity: {
			filterTypes: types(KeyAttribute, KeyTag),
			attrs:       mvAttrs,
			attrAliases: aliasesOf(mvAttrs, map[string]string{"source": "source_path"}),
			orderTypes:  types(KeyAttribute),
			orderAttrs:  identity("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
		},
		LoggedModelsEntity: {
			filterTypes: types(KeyMetric, KeyParam, KeyTag, KeyAttribute),
			attrs:       lmAttrs,
			attrAliases: aliasesOf(lmAttrs, nil),
			orderTypes:  types(KeyMetric, KeyAttribute),
			orderAttrs: identity("name", "model_id", "status", "source_run_id", "model_type",
				"creation_timestamp", "last_updated_timestamp", "experiment_id"),
		},
	}
}()

func specFor(e Entity) (*entitySpec, error) {
	s, ok := specs[e]
	if !ok {
		return nil, errorf("Unsupported search entity %s", e)
	}
	return s, nil
}

// validPrefixes lists the prefixes usable for the given key types, for the
// "Invalid entity type" message.
func validPrefixes(allowed map[KeyType]bool) []string {
	var out []string
	for p, t := range prefixes {
		if allowed[t] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
