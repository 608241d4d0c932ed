package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/steps"
)

// Feature importance metrics, as Azure's feature attribution drift
// reports them beside its NDCG: each feature's importance in the
// reference and in the production data. They have no threshold.
const (
	BaselineFeatureImportance   = "BaselineFeatureImportance"
	ProductionFeatureImportance = "ProductionFeatureImportance"
)

// importanceEnvironment is the image of the feature importance step,
// which runs the wharf binary alone.
const importanceEnvironment = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"

// importances runs the feature importance step for sig: the model's
// permutation importances on the reference data (against its target
// column) and, with production set, on the production data in
// [from, to) (against the model's own outputs). The model is user data
// scored by the wharf binary in a sandboxed step of its own, never in the
// server.
func (rc *runContext) importances(sig *jobspec.MonitorSignal, production *jobspec.MonitorData, from, to time.Time) (*steps.Importances, error) {
	ref := sig.Reference
	if ref == nil || ref.TargetColumn == "" {
		return nil, errors.New("feature importances need reference_data.data_column_names.target_column, the column the model predicts")
	}
	model, err := rc.modelRef()
	if err != nil {
		return nil, err
	}
	refInput, err := rc.referenceInput(ref)
	if err != nil {
		return nil, err
	}
	inputs := map[string]any{
		"model":     map[string]any{"type": "mlflow_model", "path": model},
		"reference": refInput,
		"target":    ref.TargetColumn,
	}
	command := `"$WHARF" monitor importance --model ${{inputs.model}} --reference ${{inputs.reference}} --target ${{inputs.target}}` +
		` --output ${{outputs.feature_importance}}`
	if production != nil {
		if production.Path != "" {
			inputs["production"] = map[string]any{"type": orDefault(production.Type, "uri_folder"), "path": production.Path}
		} else {
			inputs["production"] = map[string]any{"type": "uri_folder", "path": collectedURI(rc.m.Target, "model_inputs")}
			// To the nanosecond: the window ends at the firing, and
			// requests answered in its last second are in it.
			command += fmt.Sprintf(" --window-start %s --window-end %s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
		}
		command += " --production ${{inputs.production}}"
	}
	step := map[string]any{"type": "command", "command": command, "inputs": inputs,
		"environment": map[string]any{"image": importanceEnvironment},
		"outputs":     map[string]any{"feature_importance": map[string]any{"type": "uri_folder"}}}
	ran, err := rc.runSteps("feature importances of "+model+" for signal "+sig.Name, map[string]any{"importance": step})
	if err != nil {
		return nil, err
	}
	s := ran["importance"]
	o, ok := s.Outputs["feature_importance"]
	if !ok {
		return nil, fmt.Errorf("feature importance step %s wrote no output", s.Name)
	}
	dir := rc.scratchDir(s.Name + "-importance")
	if _, err := rc.materialize(o.Digest, o.Kind, dir, ""); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, steps.ImportanceFile))
	if err != nil {
		return nil, fmt.Errorf("feature importance step %s: %w", s.Name, err)
	}
	var imp steps.Importances
	if err := json.Unmarshal(b, &imp); err != nil {
		return nil, fmt.Errorf("feature importance step %s: %s: %w", s.Name, steps.ImportanceFile, err)
	}
	fmt.Fprintf(rc.log, "signal %s: feature importances (permutation, R², %d repeats) on the reference's %d rows: %s\n",
		sig.Name, imp.Repeats, imp.ReferenceRows, formatImportance(imp.Reference))
	if production != nil {
		fmt.Fprintf(rc.log, "signal %s: feature importances on the production data's %d rows, against the model's outputs: %s\n",
			sig.Name, imp.ProductionRows, formatImportance(imp.Production))
	}
	return &imp, nil
}

// modelRef is the monitored model as a job input names it:
// monitoring_target.model_id, else the deployment's model.
func (rc *runContext) modelRef() (string, error) {
	t := rc.m.Target
	if t.Model != "" {
		return "azureml:" + strings.TrimPrefix(t.Model, "azureml:"), nil
	}
	if t.Endpoint == "" {
		return "", errors.New("feature importances need the model: set monitoring_target.model_id or endpoint_deployment_id")
	}
	dep, err := rc.r.Store.FindOnlineDeployment(rc.ctx, rc.ws, t.Endpoint, t.Deployment)
	if err != nil {
		return "", fmt.Errorf("monitoring_target.endpoint_deployment_id: %s", wharf.ErrorMessage(err))
	}
	return "azureml:" + dep.Model, nil
}

// referenceInput is the reference data as a job input: the asset or URI
// input_data names, else the training data of the model's lineage.
func (rc *runContext) referenceInput(ref *jobspec.MonitorData) (map[string]any, error) {
	if ref.Path != "" {
		typ := ref.Type
		if strings.HasPrefix(ref.Path, "azureml:") {
			name, version := splitAssetRef(ref.Path)
			a, err := rc.r.Store.FindAsset(rc.ctx, rc.ws, wharf.AssetData, name, version)
			if err != nil {
				return nil, fmt.Errorf("reference_data.input_data %s: %s", ref.Path, wharf.ErrorMessage(err))
			}
			var spec struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(a.Spec, &spec)
			typ = spec.Type
		}
		if typ == "mltable" || typ == "" {
			typ = "uri_folder"
		}
		return map[string]any{"type": typ, "path": ref.Path}, nil
	}
	l := rc.trainingData()
	if l.err != nil {
		return nil, fmt.Errorf("no reference_data.input_data and no training data in the model's lineage: %w", l.err)
	}
	typ := "uri_folder"
	if l.kind == "file" {
		typ = "uri_file"
	}
	return map[string]any{"type": typ, "path": resolve.UploadURI(l.digest, l.kind, orDefault(filepath.Base(l.source), "train"))}, nil
}

// splitAssetRef splits azureml:<name>:<version> or azureml:<name>@latest.
func splitAssetRef(path string) (name, version string) {
	ref := strings.TrimPrefix(path, "azureml:")
	name = ref
	if i := strings.LastIndexAny(ref, ":@"); i > 0 {
		name, version = ref[:i], ref[i+1:]
	}
	return name, version
}

// attribution computes a feature_attribution_drift signal: the NDCG of
// the production importances' ranking against the reference's, with the
// importances and row counts beside it.
func (rc *runContext) attribution(sig *jobspec.MonitorSignal) ([]wharf.MonitorResult, error) {
	var d *jobspec.MonitorData
	for i := range sig.Production {
		if c := sig.Production[i].Context; c == "" || c == "model_inputs" || c == "model_inputs_outputs" {
			d = &sig.Production[i]
			break
		}
	}
	inputs := jobspec.MonitorData{}
	if d != nil {
		inputs = *d
	}
	// The production window is read here only to refuse an empty one
	// and count its rows; the step reads it again to score it.
	production, _, from, _, err := rc.production(&jobspec.MonitorSignal{Name: sig.Name, Type: sig.Type, Production: []jobspec.MonitorData{inputs}}, "model_inputs")
	if err != nil {
		return nil, err
	}
	defer drift.Close(production)
	_, to := rc.window(inputs, rc.size, 0)
	imp, err := rc.importances(sig, &inputs, from, to)
	if err != nil {
		return nil, err
	}
	ds := drift.Signal{Type: drift.FeatureAttributionDrift, Importance: imp.Reference, ProductionImportance: imp.Production,
		Thresholds: map[string]float64{}}
	for name, v := range sig.Thresholds[""] {
		ds.Thresholds[name] = v
	}
	if len(sig.Features) > 0 {
		ds.Features = sig.Features
	}
	results, err := drift.Evaluate(rc.ctx, ds, nil, production)
	if err != nil {
		return nil, err
	}
	for _, f := range sortedKeys(imp.Reference) {
		results = append(results,
			drift.Result{Feature: f, Metric: BaselineFeatureImportance, Value: imp.Reference[f], Threshold: math.NaN(), Passed: true},
			drift.Result{Feature: f, Metric: ProductionFeatureImportance, Value: imp.Production[f], Threshold: math.NaN(), Passed: true})
	}
	results = append(results,
		drift.Result{Metric: drift.BaselineRowCount, Value: float64(imp.ReferenceRows), Threshold: math.NaN(), Passed: true},
		drift.Result{Metric: drift.TargetRowCount, Value: float64(imp.ProductionRows), Threshold: math.NaN(), Passed: true})
	return toResults(sig, results), nil
}

func formatImportance(imp map[string]float64) string {
	var parts []string
	for _, f := range sortedKeys(imp) {
		parts = append(parts, fmt.Sprintf("%s %.6g", f, imp[f]))
	}
	return strings.Join(parts, ", ")
}
