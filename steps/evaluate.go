package steps

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/tabular"
)

// EvaluateConfig is one run of EvaluateRegression
// (`wharf evaluate regression`).
type EvaluateConfig struct {
	ModelName  string // the registered model to compare with
	ModelInput string // the candidate model folder
	TestData   string // labelled CSV or Parquet file or folder
	Target     string
	// Output is the folder metrics.json, predictions.csv, deploy_flag and
	// the plots are written to.
	Output   string
	Tracking *Tracking
}

// Evaluation is what EvaluateRegression writes as metrics.json.
type Evaluation struct {
	ModelName  string          `json:"model_name"`
	Candidate  linear.Scores   `json:"candidate"`
	Registered []VersionScores `json:"registered"`
	// Skipped are registered versions that could not be scored here.
	Skipped []string `json:"skipped,omitempty"`
	// DeployFlag is 1 when the candidate should be registered, else 0.
	DeployFlag int    `json:"deploy_flag"`
	Reason     string `json:"reason"`
}

// VersionScores are a registered version's scores on the same test rows.
type VersionScores struct {
	Version string        `json:"version"`
	Scores  linear.Scores `json:"scores"`
}

// maxPlotPoints bounds the scatter plot: more points add ink, not
// information.
const maxPlotPoints = 2000

// EvaluateRegression scores the candidate model on the test set (R², MSE,
// RMSE, MAE, as scikit-learn computes them), then every registered version
// of the model's name on the same rows, and writes to the output folder:
//
//	metrics.json          the Evaluation
//	predictions.csv       row, actual, predicted for the candidate
//	deploy_flag           1 when the candidate is at least as good (R²) as
//	                      every registered version, else 0
//	perf_comparison.svg   predicted against actual, and R² by version
//	perf_comparison.png   the same picture as PNG
//
// Registered versions are read through the step's tracking server;
// versions in a format this step cannot score (not a Wharf linear model)
// are listed as skipped, not compared. The decision and warnings go to
// log, and the test scores and the flag to the step's run.
func EvaluateRegression(ctx context.Context, cfg EvaluateConfig, log io.Writer) (*Evaluation, error) {
	log = orDiscard(log)
	cand, err := loadLinearModel(cfg.ModelInput)
	if err != nil {
		return nil, err
	}
	versions, skipped, err := registeredModels(ctx, cfg.Tracking, cfg.ModelName, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Output, 0o755); err != nil {
		return nil, err
	}
	pf, err := os.Create(filepath.Join(cfg.Output, "predictions.csv"))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	pw := bufio.NewWriterSize(pf, 1<<20)
	pw.WriteString("row,actual,predicted\n")
	scorers := make([]linear.Scorer, len(versions))
	var sample [][2]float64
	seen := 0
	rng := rand.New(rand.NewPCG(1, 2))
	candScores, err := ScoreTable(cand, cfg.TestData, cfg.Target, func(f *tabular.Frame, pred, y []float64) error {
		for i := range pred {
			pw.WriteString(strconv.FormatInt(f.RowNumber(i), 10) + "," + strconv.FormatFloat(y[i], 'g', -1, 64) + "," + strconv.FormatFloat(pred[i], 'g', -1, 64) + "\n")
			// A reservoir sample for the picture, the same every run.
			seen++
			if len(sample) < maxPlotPoints {
				sample = append(sample, [2]float64{y[i], pred[i]})
			} else if j := rng.IntN(seen); j < maxPlotPoints {
				sample[j] = [2]float64{y[i], pred[i]}
			}
		}
		for k, v := range versions {
			vp, err := v.model.PredictFrame(f)
			if err != nil {
				return fmt.Errorf("registered version %s cannot score the test data: %w", v.version, err)
			}
			scorers[k].Add(vp, y)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := pw.Flush(); err != nil {
		return nil, err
	}
	res := decide(cfg.ModelName, candScores, versions, scorers)
	res.Skipped = skipped
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Output, "metrics.json"), b, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Output, "deploy_flag"), []byte(strconv.Itoa(res.DeployFlag)+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := comparisonPlot(cfg.Output, cfg.ModelName, sample, candScores, res.Registered); err != nil {
		fmt.Fprintf(log, "warning: no comparison plot: %v\n", err)
	}
	fmt.Fprintf(log, "deploy_flag %d: %s\n", res.DeployFlag, res.Reason)
	metrics := map[string]float64{"test_r2": candScores.R2, "test_mse": candScores.MSE, "test_rmse": candScores.RMSE,
		"test_mae": candScores.MAE, "deploy_flag": float64(res.DeployFlag)}
	cfg.Tracking.logOrWarn(ctx, log, "metrics not logged to tracking", metrics, nil)
	return res, nil
}

// decide sets the deploy flag: the candidate goes on when its R² is at
// least the best registered version's, so a tie keeps the newer model.
func decide(name string, cand linear.Scores, versions []registeredModel, scorers []linear.Scorer) *Evaluation {
	res := &Evaluation{ModelName: name, Candidate: cand, Registered: []VersionScores{}, DeployFlag: 1}
	best := math.Inf(-1)
	bestVersion := ""
	for k, v := range versions {
		s := scorers[k].Scores()
		res.Registered = append(res.Registered, VersionScores{Version: v.version, Scores: s})
		if s.R2 > best {
			best, bestVersion = s.R2, v.version
		}
	}
	switch {
	case len(versions) == 0:
		res.Reason = "no registered version to compare with"
	case cand.R2 >= best:
		res.Reason = fmt.Sprintf("candidate R² %.6f is at least the best registered (version %s, %.6f)", cand.R2, bestVersion, best)
	default:
		res.DeployFlag = 0
		res.Reason = fmt.Sprintf("candidate R² %.6f is below registered version %s (%.6f)", cand.R2, bestVersion, best)
	}
	return res
}

// loadLinearModel reads a Wharf linear model folder by its MLmodel file.
func loadLinearModel(dir string) (*linear.Model, error) {
	data, err := linearDataFile(dir)
	if err != nil {
		return nil, err
	}
	return linear.Load(dir, data)
}

// linearDataFile reads the MLmodel file of a model folder and returns
// the path of its coefficients file; an error if it is not a Wharf
// linear model.
func linearDataFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	if err != nil {
		return "", wharf.Errorf(wharf.EINVALID, "model %s has no MLmodel file: %v", dir, pathErr(err))
	}
	var mm struct {
		Flavors map[string]map[string]any `yaml:"flavors"`
	}
	if err := yaml.Unmarshal(b, &mm); err != nil {
		return "", wharf.Errorf(wharf.EINVALID, "%s: %v", filepath.Join(dir, "MLmodel"), err)
	}
	fl, ok := mm.Flavors[linear.Flavor]
	if !ok {
		var names []string
		for k := range mm.Flavors {
			names = append(names, k)
		}
		return "", &notLinearError{flavors: names}
	}
	data, _ := fl["data"].(string)
	if data == "" {
		data = linear.DataFile
	}
	if !filepath.IsLocal(filepath.FromSlash(data)) {
		return "", wharf.Errorf(wharf.EINVALID, "%s: data path %q leaves the model folder", filepath.Join(dir, "MLmodel"), data)
	}
	return data, nil
}

type notLinearError struct{ flavors []string }

func (e *notLinearError) Error() string {
	return fmt.Sprintf("not a %s model (flavors: %s)", linear.Flavor, strings.Join(e.flavors, ", "))
}

type registeredModel struct {
	version string
	model   *linear.Model
}

// registeredModels downloads every registered version of name that is a
// Wharf linear model. Outside a job (no tracking server) there is nothing
// to compare with.
func registeredModels(ctx context.Context, tc *Tracking, name string, warn io.Writer) ([]registeredModel, []string, error) {
	if tc == nil {
		fmt.Fprintln(warn, "warning: not running in a job (no MLFLOW_TRACKING_URI and MLFLOW_RUN_ID): no registered version to compare with")
		return nil, nil, nil
	}
	versions, err := tc.modelVersions(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("list the versions of model %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp("", "wharf-evaluate-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	var out []registeredModel
	var skipped []string
	for _, v := range versions {
		var dl struct {
			URI string `json:"artifact_uri"`
		}
		q := "model-versions/get-download-uri?" + url.Values{"name": {name}, "version": {v.Version}}.Encode()
		if err := tc.call(ctx, "GET", q, nil, &dl); err != nil {
			return nil, nil, fmt.Errorf("model %s version %s: %w", name, v.Version, err)
		}
		uri, err := tc.resolveRunsURI(ctx, dl.URI)
		if err != nil {
			return nil, nil, fmt.Errorf("model %s version %s: %w", name, v.Version, err)
		}
		root, err := artifactPath(uri)
		if err != nil {
			skipped = append(skipped, v.Version+": stored outside the server")
			continue
		}
		dir := filepath.Join(tmp, v.Version)
		if err := tc.download(ctx, root+"/MLmodel", filepath.Join(dir, "MLmodel")); err != nil {
			skipped = append(skipped, v.Version+": "+err.Error())
			continue
		}
		data, err := linearDataFile(dir)
		if err != nil {
			skipped = append(skipped, v.Version+": "+err.Error())
			continue
		}
		if err := tc.download(ctx, root+"/"+data, filepath.Join(dir, filepath.FromSlash(data))); err != nil {
			skipped = append(skipped, v.Version+": "+err.Error())
			continue
		}
		m, err := loadLinearModel(dir)
		if err != nil {
			skipped = append(skipped, v.Version+": "+err.Error())
			continue
		}
		out = append(out, registeredModel{version: v.Version, model: m})
	}
	for _, s := range skipped {
		fmt.Fprintf(warn, "warning: registered version %s (not compared)\n", s)
	}
	return out, skipped, nil
}
