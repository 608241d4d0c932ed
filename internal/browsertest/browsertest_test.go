package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLayoutSeesOverflowAndUnlabelledControls: the layout checks the
// studio's tests rely on find what they look for.
func TestLayoutSeesOverflowAndUnlabelledControls(t *testing.T) {
	b := Start(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		page := `<!doctype html><meta name="viewport" content="width=device-width"><body style="margin:0">
<label for="a">A</label><input id="a"><button>Go</button>`
		if r.URL.Path == "/bad" {
			page += `<div id="wide" style="width:2000px">x</div><input id="nameless">`
		}
		w.Write([]byte(page))
	}))
	defer srv.Close()
	p := b.Tab(t)
	p.Viewport(390, 844)
	p.Navigate(srv.URL + "/good")
	if l := p.Layout(); l.ScrollWidth > l.ViewportWidth || len(l.Unlabelled) != 0 || l.ViewportWidth != 390 {
		t.Errorf("a page that fits: %+v", l)
	}
	p.Navigate(srv.URL + "/bad")
	l := p.Layout()
	if l.ScrollWidth <= l.ViewportWidth || !strings.Contains(strings.Join(l.Overflowing, " "), "div#wide") {
		t.Errorf("a 2000px element in a 390px viewport: %+v", l)
	}
	if strings.Join(l.Unlabelled, " ") != "input#nameless" {
		t.Errorf("unlabelled controls: %v, want input#nameless", l.Unlabelled)
	}
	p.Navigate(srv.URL + "/good")
	p.Press("\t")
	if f := p.Focused(); f != "a" {
		t.Errorf("Tab focused %q, want the input a", f)
	}
}
