package main

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

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/tabular"
)

// evaluation is what `wharf evaluate regression` writes as metrics.json.
type evaluation struct {
	ModelName  string          `json:"model_name"`
	Candidate  linear.Scores   `json:"candidate"`
	Registered []versionScores `json:"registered"`
	// Skipped are registered versions that could not be scored here.
	Skipped    []string `json:"skipped,omitempty"`
	DeployFlag int      `json:"deploy_flag"`
	Reason     string   `json:"reason"`
}

type versionScores struct {
	Version string        `json:"version"`
	Scores  linear.Scores `json:"scores"`
}

// maxPlotPoints bounds the scatter plot: more points add ink, not
// information.
const maxPlotPoints = 2000

// evaluateCommand holds the built-in evaluation steps.
func (a *app) evaluateCommand() *cobra.Command {
	ev := &cobra.Command{Use: "evaluate", Short: "Built-in evaluation steps (run as pipeline steps)"}
	var name, modelDir, test, target, out string
	reg := &cobra.Command{
		Use:   "regression",
		Short: "Score a regression model on test data and compare it with every registered version of its name",
		Long: `Scores the candidate model on the test set (R², MSE, RMSE, MAE, as
scikit-learn computes them), then every registered version of --model-name
on the same rows, and writes to --evaluation-output:

  metrics.json     the scores of the candidate and of each version
  predictions.csv  row, actual, predicted for the candidate
  deploy_flag      1 when the candidate is at least as good (R²) as every
                   registered version, else 0
  perf_comparison.svg   predicted against actual, and R² by version
  perf_comparison.png   the same picture as PNG

Registered versions are read through the job's MLflow tracking server;
versions in a format this step cannot score (not a Wharf linear model) are
listed as skipped, not compared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cand, err := loadLinearModel(modelDir)
			if err != nil {
				return err
			}
			versions, skipped, err := registeredModels(cmd.Context(), name, a.stderr)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			pf, err := os.Create(filepath.Join(out, "predictions.csv"))
			if err != nil {
				return err
			}
			defer pf.Close()
			pw := bufio.NewWriterSize(pf, 1<<20)
			pw.WriteString("row,actual,predicted\n")
			scorers := make([]linear.Scorer, len(versions))
			var sample [][2]float64
			seen := 0
			rng := rand.New(rand.NewPCG(1, 2))
			candScores, err := scoreTable(cand, test, target, func(f *tabular.Frame, pred, y []float64) error {
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
				return err
			}
			if err := pw.Flush(); err != nil {
				return err
			}
			res := evaluation{ModelName: name, Candidate: candScores, Registered: []versionScores{}, Skipped: skipped, DeployFlag: 1}
			best := math.Inf(-1)
			bestVersion := ""
			for k, v := range versions {
				s := scorers[k].Scores()
				res.Registered = append(res.Registered, versionScores{Version: v.version, Scores: s})
				if s.R2 > best {
					best, bestVersion = s.R2, v.version
				}
			}
			switch {
			case len(versions) == 0:
				res.Reason = "no registered version to compare with"
			case candScores.R2 >= best:
				res.Reason = fmt.Sprintf("candidate R² %.6f is at least the best registered (version %s, %.6f)", candScores.R2, bestVersion, best)
			default:
				res.DeployFlag = 0
				res.Reason = fmt.Sprintf("candidate R² %.6f is below registered version %s (%.6f)", candScores.R2, bestVersion, best)
			}
			b, _ := json.MarshalIndent(res, "", "  ")
			if err := os.WriteFile(filepath.Join(out, "metrics.json"), b, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "deploy_flag"), []byte(strconv.Itoa(res.DeployFlag)+"\n"), 0o644); err != nil {
				return err
			}
			if err := comparisonPlot(out, name, sample, candScores, res.Registered); err != nil {
				fmt.Fprintf(a.stderr, "warning: no comparison plot: %v\n", err)
			}
			fmt.Fprintf(a.stderr, "deploy_flag %d: %s\n", res.DeployFlag, res.Reason)
			metrics := map[string]float64{"test_r2": candScores.R2, "test_mse": candScores.MSE, "test_rmse": candScores.RMSE,
				"test_mae": candScores.MAE, "deploy_flag": float64(res.DeployFlag)}
			if err := logToTracking(cmd.Context(), metrics, nil); err != nil {
				fmt.Fprintf(a.stderr, "warning: metrics not logged to tracking: %v\n", err)
			}
			return a.print(res)
		},
	}
	f := reg.Flags()
	f.StringVar(&name, "model-name", "", "registered model name to compare with")
	f.StringVar(&modelDir, "model-input", "", "the candidate model folder")
	f.StringVar(&test, "test-data", "", "labelled CSV or Parquet file or folder")
	f.StringVar(&target, "target", "", "the label column")
	f.StringVar(&out, "evaluation-output", "", "folder for metrics.json, predictions.csv, deploy_flag and the plots")
	for _, n := range []string{"model-name", "model-input", "test-data", "target", "evaluation-output"} {
		_ = reg.MarkFlagRequired(n)
	}
	ev.AddCommand(reg)
	return ev
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
		return "", wharf.Errorf(wharf.EINVALID, "model %s has no MLmodel file: %v", dir, unwrapPathErr(err))
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
func registeredModels(ctx context.Context, name string, warn io.Writer) ([]registeredModel, []string, error) {
	tc := stepTracking()
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
		root, err := artifactPath(dl.URI)
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

// comparisonPlot draws predicted against actual for the candidate beside
// R² by version, as SVG and PNG.
func comparisonPlot(dir, name string, sample [][2]float64, cand linear.Scores, reg []versionScores) error {
	scatter := plot.New()
	scatter.Title.Text = "Candidate: predicted vs actual"
	scatter.X.Label.Text = "actual"
	scatter.Y.Label.Text = "predicted"
	pts := make(plotter.XYs, len(sample))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range sample {
		pts[i].X, pts[i].Y = s[0], s[1]
		lo, hi = math.Min(lo, math.Min(s[0], s[1])), math.Max(hi, math.Max(s[0], s[1]))
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Radius = vg.Points(1.2)
	scatter.Add(sc)
	if lo < hi {
		ideal, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
		if err != nil {
			return err
		}
		ideal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		scatter.Add(ideal)
	}

	bars := plot.New()
	bars.Title.Text = "R² on the same test set: " + name
	bars.Y.Label.Text = "R²"
	values := plotter.Values{}
	var labels []string
	for _, v := range reg {
		values = append(values, v.Scores.R2)
		labels = append(labels, "v"+v.Version)
	}
	values = append(values, cand.R2)
	labels = append(labels, "candidate")
	bc, err := plotter.NewBarChart(values, vg.Points(18))
	if err != nil {
		return err
	}
	bars.Add(bc)
	bars.NominalX(labels...)
	minR2 := 0.0
	for _, v := range values {
		minR2 = math.Min(minR2, v)
	}
	bars.Y.Min, bars.Y.Max = minR2, 1

	const w, h = 10 * vg.Inch, 4 * vg.Inch
	render := func(c draw.Canvas) {
		tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
		scatter.Draw(tiles.At(c, 0, 0))
		bars.Draw(tiles.At(c, 1, 0))
	}
	svg := vgsvg.New(w, h)
	render(draw.New(svg))
	png := vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	render(draw.New(png))
	if err := writeTo(filepath.Join(dir, "perf_comparison.svg"), svg.WriteTo); err != nil {
		return err
	}
	return writeTo(filepath.Join(dir, "perf_comparison.png"), png.WriteTo)
}

// writeTo writes a file from a WriteTo method.
func writeTo(path string, write func(io.Writer) (int64, error)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
