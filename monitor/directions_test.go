package monitor

import (
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
)

// TestDirectionsAgree: package drift spells the metric directions itself,
// so that it imports nothing of Wharf's, and a monitor stores drift's
// Direction as it comes; the two spellings must stay the same.
func TestDirectionsAgree(t *testing.T) {
	pairs := []struct{ name, drift, wharf string }{
		{"HigherIsWorse", drift.HigherIsWorse, wharf.HigherIsWorse},
		{"LowerIsWorse", drift.LowerIsWorse, wharf.LowerIsWorse},
	}
	for _, p := range pairs {
		if p.drift != p.wharf {
			t.Errorf("%s: drift says %q, wharf %q", p.name, p.drift, p.wharf)
		}
	}
	if drift.HigherIsWorse == drift.LowerIsWorse {
		t.Errorf("both directions are %q", drift.HigherIsWorse)
	}
}
