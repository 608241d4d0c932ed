package http

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// A pipeline's graph is drawn on the server as SVG: steps are boxes in
// layers from top to bottom, a step one layer below the deepest step it
// reads from (longest-path layering), and within a layer ordered by the
// mean position of their upstream steps, which keeps most edges short
// and uncrossed for the pipelines people write.

// Graph geometry, in SVG user units.
const (
	graphNodeW  = 200
	graphNodeH  = 50
	graphGapX   = 36
	graphGapY   = 56
	graphMargin = 16
)

// studioGraph is a laid-out pipeline graph.
type studioGraph struct {
	Width, Height int
	Nodes         []*studioGraphNode
	Edges         []studioGraphEdge
}

// studioGraphNode is one step's box.
type studioGraphNode struct {
	Step   string `json:"step"`
	Job    string `json:"job"`
	Label  string `json:"label"`
	Status string `json:"status"`
	// Attempts is how many times the step was tried; ReusedFrom the job
	// whose outputs it took instead of running.
	Attempts   int    `json:"attempts"`
	ReusedFrom string `json:"reused_from,omitempty"`
	X, Y       int    `json:"-"`
	layer      int
	deps       []string
}

// studioGraphEdge is one binding: an output of From read by To.
type studioGraphEdge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Label string `json:"label"`
	// Path is the SVG path from the bottom of From to the top of To.
	Path string `json:"-"`
}

// ShortLabel fits a label in its box.
func (n *studioGraphNode) ShortLabel() string {
	const max = 24
	if r := []rune(n.Label); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return n.Label
}

// layoutPipeline lays out a pipeline's steps; edges come from the inputs
// each step binds to an upstream output, and its declared dependencies.
func layoutPipeline(steps []*wharf.Job) *studioGraph {
	g := &studioGraph{}
	byStep := map[string]*studioGraphNode{}
	type binding struct{ from, to, label string }
	var bindings []binding
	for _, st := range steps {
		name := st.Step
		if name == "" {
			name = st.Name
		}
		n := &studioGraphNode{Step: name, Job: st.Name, Label: st.DisplayName, Status: st.Status,
			Attempts: len(st.Attempts), ReusedFrom: st.ReusedFrom}
		if n.Label == "" || n.Label == st.Name {
			n.Label = name
		}
		var spec scheduler.StepSpec
		if len(st.Spec) > 0 && json.Unmarshal(st.Spec, &spec) == nil {
			n.deps = append(n.deps, spec.Deps...)
			ins := make([]string, 0, len(spec.Inputs))
			for in := range spec.Inputs {
				ins = append(ins, in)
			}
			sort.Strings(ins)
			for _, in := range ins {
				if src := spec.Inputs[in]; src.Step != "" {
					bindings = append(bindings, binding{src.Step, name, src.Output + " → " + in})
					n.deps = append(n.deps, src.Step)
				}
			}
		}
		byStep[name] = n
		g.Nodes = append(g.Nodes, n)
	}
	// Several bindings between the same two steps are one edge.
	seen := map[[2]string]int{}
	for _, b := range bindings {
		if byStep[b.from] == nil {
			continue
		}
		if i, ok := seen[[2]string{b.from, b.to}]; ok {
			g.Edges[i].Label += ", " + b.label
			continue
		}
		seen[[2]string{b.from, b.to}] = len(g.Edges)
		g.Edges = append(g.Edges, studioGraphEdge{From: b.from, To: b.to, Label: b.label})
	}
	for _, n := range g.Nodes {
		for _, d := range n.deps {
			if byStep[d] != nil && !slices.ContainsFunc(g.Edges, func(e studioGraphEdge) bool { return e.From == d && e.To == n.Step }) {
				seen[[2]string{d, n.Step}] = len(g.Edges)
				g.Edges = append(g.Edges, studioGraphEdge{From: d, To: n.Step})
			}
		}
	}
	// Longest-path layers. Steps are stored in topological order, but a
	// fixed number of passes keeps a cycle in bad data from looping.
	for range len(g.Nodes) {
		changed := false
		for _, e := range g.Edges {
			if l := byStep[e.From].layer + 1; l > byStep[e.To].layer && l < len(g.Nodes) {
				byStep[e.To].layer, changed = l, true
			}
		}
		if !changed {
			break
		}
	}
	var layers [][]*studioGraphNode
	for _, n := range g.Nodes {
		for len(layers) <= n.layer {
			layers = append(layers, nil)
		}
		layers[n.layer] = append(layers[n.layer], n)
	}
	widest := 0
	for _, l := range layers {
		widest = max(widest, len(l))
	}
	g.Width = 2*graphMargin + widest*graphNodeW + max(widest-1, 0)*graphGapX
	g.Height = 2*graphMargin + len(layers)*graphNodeH + max(len(layers)-1, 0)*graphGapY
	for li, l := range layers {
		if li > 0 {
			// Order by the mean x of the step's upstream steps.
			mean := map[string]float64{}
			for _, n := range l {
				sum, k := 0.0, 0
				for _, e := range g.Edges {
					if e.To == n.Step && byStep[e.From].layer < li {
						sum += float64(byStep[e.From].X)
						k++
					}
				}
				if k > 0 {
					mean[n.Step] = sum / float64(k)
				}
			}
			sort.SliceStable(l, func(i, j int) bool { return mean[l[i].Step] < mean[l[j].Step] })
		}
		rowW := len(l)*graphNodeW + (len(l)-1)*graphGapX
		x0 := (g.Width - rowW) / 2
		for i, n := range l {
			n.X = x0 + i*(graphNodeW+graphGapX)
			n.Y = graphMargin + li*(graphNodeH+graphGapY)
		}
	}
	for i := range g.Edges {
		a, b := byStep[g.Edges[i].From], byStep[g.Edges[i].To]
		x1, y1 := a.X+graphNodeW/2, a.Y+graphNodeH
		x2, y2 := b.X+graphNodeW/2, b.Y-6 // room for the arrowhead
		mid := (y1 + y2) / 2
		g.Edges[i].Path = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, x1, mid, x2, mid, x2, y2)
	}
	return g
}

// graphStateJSON is what a job page's script polls while the job runs.
type graphStateJSON struct {
	Status   string             `json:"status"`
	Terminal bool               `json:"terminal"`
	Steps    []*studioGraphNode `json:"steps"`
	Edges    []studioGraphEdge  `json:"edges"`
}
