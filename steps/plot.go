package steps

import (
	"io"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/wharfml/wharf/linear"
)

// comparisonPlot draws predicted against actual for the candidate beside
// R² by version, as SVG and PNG.
func comparisonPlot(dir, name string, sample [][2]float64, cand linear.Scores, reg []VersionScores) error {
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
