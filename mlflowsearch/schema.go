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

// tracePrefixes are the prefixes of trace searches, which differ from the
// others': "trace." names an attribute, and request metadata has its own.
var tracePrefixes = map[string]KeyType{
	"tag": KeyTag, "tags": KeyTag,
	"attribute": KeyAttribute, "attributes": KeyAttribute, "trace": KeyAttribute,
	"request_metadata": KeyMetadata, "metadata": KeyMetadata,
}

// entitySpec is what one search endpoint accepts.
type entitySpec struct {
	// prefixes overrides the package's prefixes where set.
	prefixes    map[string]KeyType
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

	// Trace attributes as MLflow's SearchTraceUtils names them; name and
	// run_id stand for the tag mlflow.traceName and the metadata
	// mlflow.sourceRun, which the stores resolve.
	traceAttrs := map[string]rule{
		"request_id":        {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"client_request_id": {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"status":            {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"name":              {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"run_id":            {ops: []string{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}},
		"timestamp_ms":      numAttr,
		"execution_time_ms": numAttr,
		"end_time_ms":       numAttr,
	}
	traceAliases := map[string]string{
		"timestamp": "timestamp_ms", "execution_time": "execution_time_ms", "end_time": "end_time_ms",
		"trace_id": "request_id", "state": "status",
	}
	traceOrder := identity("experiment_id", "timestamp_ms", "execution_time_ms", "end_time_ms",
		"status", "request_id", "name", "run_id")
	for k, v := range traceAliases {
		traceOrder[k] = v
	}

	return map[Entity]*entitySpec{
		TracesEntity: {
			prefixes:    tracePrefixes,
			filterTypes: types(KeyTag, KeyAttribute, KeyMetadata),
			attrs:       traceAttrs,
			attrAliases: aliasesOf(traceAttrs, traceAliases),
			orderTypes:  types(KeyTag, KeyAttribute, KeyMetadata),
			orderAttrs:  traceOrder,
		},
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

// prefixTable returns the prefixes the endpoint knows.
func (s *entitySpec) prefixTable() map[string]KeyType {
	if s.prefixes != nil {
		return s.prefixes
	}
	return prefixes
}

// validPrefixes lists the prefixes of table usable for the given key
// types, for the "Invalid entity type" message.
func validPrefixes(table map[string]KeyType, allowed map[KeyType]bool) []string {
	var out []string
	for p, t := range table {
		if allowed[t] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
