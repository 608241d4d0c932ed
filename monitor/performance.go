package monitor

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/serving"
)

// performance computes a model_performance signal: the deployment's
// predictions (collected model_outputs, or the production data given)
// joined by correlation id to the ground truth of reference_data.
func (rc *runContext) performance(sig *jobspec.MonitorSignal) ([]wharf.MonitorResult, error) {
	ref := sig.Reference
	if ref == nil || ref.Path == "" || ref.TargetColumn == "" {
		return nil, fmt.Errorf("model_performance needs reference_data.input_data holding the ground truth, with its target column " +
			"(data_column_names.target_column) and the correlation id of each prediction (data_column_names.correlation_id, default correlationid)")
	}
	production, _, _, desc, err := rc.production(sig, "model_outputs")
	if err != nil {
		return nil, err
	}
	defer drift.Close(production)
	var prodData jobspec.MonitorData
	if len(sig.Production) > 0 {
		prodData = sig.Production[0]
	}
	truth, _, err := rc.open(*ref, ref.Context, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	defer drift.Close(truth)
	corr := orDefault(ref.CorrelationColumn, "correlationid")
	prodCorr := orDefault(prodData.CorrelationColumn, "correlationid")
	pred := orDefault(prodData.PredictionColumn, serving.PredictionColumn)
	truthCorr, err := readColumn(rc, truth, corr)
	if err != nil {
		return nil, fmt.Errorf("reference_data (ground truth): %w", err)
	}
	truthVals, err := readColumn(rc, truth, ref.TargetColumn)
	if err != nil {
		return nil, fmt.Errorf("reference_data (ground truth): %w", err)
	}
	// Rows of one request share its correlation id: the k-th prediction
	// of an id is joined to the k-th ground truth row of that id.
	byID := map[string][]string{}
	for i, id := range truthCorr {
		if id != nil && truthVals[i] != nil {
			byID[*id] = append(byID[*id], *truthVals[i])
		}
	}
	prodIDs, err := readColumn(rc, production, prodCorr)
	if err != nil {
		return nil, fmt.Errorf("production data: %w", err)
	}
	preds, err := readColumn(rc, production, pred)
	if err != nil {
		return nil, fmt.Errorf("production data: %w", err)
	}
	joinedPath := filepath.Join(rc.scratch, "performance-"+sig.Name+".csv")
	f, err := os.Create(joinedPath)
	if err != nil {
		return nil, err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"target", "prediction"})
	joined := 0
	for i, id := range prodIDs {
		if id == nil || preds[i] == nil || len(byID[*id]) == 0 {
			continue
		}
		_ = w.Write([]string{byID[*id][0], *preds[i]})
		byID[*id] = byID[*id][1:]
		joined++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(rc.log, "signal %s (%s): %d predictions joined to the ground truth %s by %s\n", sig.Name, sig.Type, joined, ref.Path, corr)
	if joined == 0 {
		return nil, fmt.Errorf("no prediction of the production window %s has a ground truth row in %s (joined by %s)", desc, ref.Path, corr)
	}
	ds, err := drift.OpenFiles([]string{joinedPath})
	if err != nil {
		return nil, err
	}
	defer drift.Close(ds)
	s := drift.Signal{Type: drift.ModelPerformance, Target: "target", Prediction: "prediction", MLTask: rc.m.Target.MLTask, Thresholds: map[string]float64{}}
	for name, v := range sig.Thresholds[rc.m.Target.MLTask] {
		s.Thresholds[name] = v
	}
	results, err := drift.Evaluate(rc.ctx, s, nil, ds)
	if err != nil {
		return nil, err
	}
	return toResults(sig, results), nil
}

// readColumn reads a whole column as text, nil for a missing value.
func readColumn(rc *runContext, d drift.Dataset, name string) ([]*string, error) {
	found := false
	var have []string
	for _, c := range d.Columns() {
		have = append(have, c.Name)
		found = found || c.Name == name
	}
	if !found {
		return nil, fmt.Errorf("no column %s (it has %s)", name, strings.Join(have, ", "))
	}
	var out []*string
	err := d.ScanString(rc.ctx, name, func(s drift.Strings) error {
		for i, v := range s.Values {
			if s.Null != nil && s.Null[i] {
				out = append(out, nil)
				continue
			}
			v := strings.Clone(v)
			out = append(out, &v)
		}
		return nil
	})
	return out, err
}
