// Package browsertest drives a real headless Chromium (Debian's chromium,
// which scripts/test installs) with chromedp, for tests of the web studio
// against a real Wharf server on loopback. A test gets a Browser, opens
// Tabs in it (each its own browser context, so its own cookies: two tabs
// are two people), and fails at the first step that does not work.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser; without it, chromium on PATH is used.
const EnvChromium = "WHARF_TEST_CHROMIUM"

// EnvScreenshots names a folder to keep screenshots in; without it they go
// to the test's temporary folder.
const EnvScreenshots = "WHARF_TEST_SCREENSHOTS"

// StepTimeout bounds one step of a test (a navigation, a click, a wait):
// a page that never shows what the test waits for fails the test instead
// of hanging it.
var StepTimeout = 90 * time.Second

// Browser is one headless Chromium process.
type Browser struct {
	t       testing.TB
	browser context.Context
	shots   string
}

// Path returns the Chromium to drive, or an error saying what is missing.
func Path() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium: install Debian's chromium (scripts/test does) or set %s", EnvChromium)
}

// Start launches a headless Chromium that lives until the test ends.
// Without Chromium it skips the test, and fails it under CI, whose
// machines have it.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := Path()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		// Chromium will not start as root with its own sandbox; the
		// pages it opens here are the test's own server's.
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	ctx, cancel := context.WithTimeout(browser, StepTimeout)
	defer cancel()
	if err := chromedp.Do(browser); err != nil || ctx.Err() != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	shots := os.Getenv(EnvScreenshots)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, browser: browser, shots: shots}
}

// Tab is one page in a browser context of its own.
type Tab struct {
	t   testing.TB
	b   *Browser
	ctx context.Context
}

// Tab opens a tab with cookies and storage of its own, for t (the test
// or subtest whose steps it runs, which it outlives not).
func (b *Browser) Tab(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &Tab{t: t, b: b, ctx: ctx}
}

// Do runs steps in order; the test fails at the first that fails.
func (p *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("browser at %s: %v", p.location(), err)
	}
}

// Run runs one step and returns its value.
func Run[T any](p *Tab, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser at %s: %v", p.location(), err)
	}
	return v
}

// Eval evaluates a JavaScript expression in the page and decodes its value.
func Eval[T any](p *Tab, expr string) T {
	p.t.Helper()
	return Run(p, chromedp.Evaluate[T](expr))
}

func (p *Tab) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown page)"
	}
	return loc
}

// Await evaluates a JavaScript expression whose value is a promise (an
// async function's call, a fetch) and decodes what it resolves to.
func Await[T any](p *Tab, expr string) T {
	p.t.Helper()
	return Run(p, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Location is the address of the page shown.
func (p *Tab) Location() string {
	p.t.Helper()
	return Run(p, chromedp.Location())
}

// Navigate opens url and waits for its load.
func (p *Tab) Navigate(url string) {
	p.t.Helper()
	p.Do(chromedp.Navigate(url))
}

// Text is the visible text of the first element css selects, waiting for
// it to exist.
func (p *Tab) Text(css string) string {
	p.t.Helper()
	return Run(p, chromedp.Text(chromedp.CSS(css)))
}

// WaitFor polls a JavaScript condition until it is true; the test fails,
// naming what it waited for, when StepTimeout passes first.
func (p *Tab) WaitFor(what, cond string) {
	p.t.Helper()
	// A condition that throws, or a page that is being replaced (a
	// reload, a redirect), counts as not yet.
	expr := "(() => { try { return !!(" + cond + "); } catch (e) { return false; } })()"
	deadline := time.Now().Add(StepTimeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			path := p.Screenshot("timeout")
			p.t.Fatalf("browser at %s: no %s within %s (last error: %v; screenshot %s); page text:\n%s", p.location(), what, StepTimeout, err, path,
				Eval[string](p, "document.body ? document.body.innerText : ''"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitText waits until the page's text contains s.
func (p *Tab) WaitText(s string) {
	p.t.Helper()
	q, _ := json.Marshal(s)
	p.WaitFor(fmt.Sprintf("text %q", s), "document.body && document.body.innerText.includes("+string(q)+")")
}

// Viewport sets the page's size in CSS pixels, as a window of that size
// (or a phone's screen) would.
func (p *Tab) Viewport(width, height int64) {
	p.t.Helper()
	p.Do(chromedp.EmulateViewport(width, height))
}

// Screenshot saves the whole page as a PNG named for the test and name,
// and returns its path.
func (p *Tab) Screenshot(name string) string {
	p.t.Helper()
	png, err := func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
		defer cancel()
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}()
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	file := filepath.Join(p.b.shots, unsafeChars.ReplaceAllString(p.t.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return file
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Focused describes the element that has the keyboard focus: its id, else
// its name, else its tag and text.
func (p *Tab) Focused() string {
	p.t.Helper()
	return Eval[string](p, `(() => { const e = document.activeElement; if (!e) return "";
		return e.id || e.getAttribute("name") || (e.tagName.toLowerCase() + ":" + e.textContent.trim()); })()`)
}

// Press sends keys to the focused element as typed on a keyboard:
// "\t" is Tab, "\r" is Enter.
func (p *Tab) Press(keys string) {
	p.t.Helper()
	p.Do(chromedp.KeyEvent(keys))
}

// Layout is what a test asserts about a page's fit in its viewport.
type Layout struct {
	// ViewportWidth is the layout viewport's width; ScrollWidth the
	// document's. A page that fits has ScrollWidth <= ViewportWidth.
	ViewportWidth int `json:"viewportWidth"`
	ScrollWidth   int `json:"scrollWidth"`
	// Overflowing are the visible elements whose right edge passes the
	// viewport (selector-like descriptions), for the failure message.
	Overflowing []string `json:"overflowing"`
	// Unlabelled are the form controls a screen reader could not name: no
	// <label for>, no enclosing label, no aria-label(ledby), no title.
	Unlabelled []string `json:"unlabelled"`
}

// Layout measures the page as shown.
func (p *Tab) Layout() Layout {
	p.t.Helper()
	return Eval[Layout](p, `(() => {
		const vw = document.documentElement.clientWidth;
		const desc = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
		const over = [];
		for (const e of document.body.querySelectorAll("*")) {
			const r = e.getBoundingClientRect();
			if (r.width > 0 && r.height > 0 && r.right > vw + 1 && getComputedStyle(e).visibility !== "hidden") over.push(desc(e));
		}
		const unlabelled = [];
		for (const e of document.querySelectorAll("input, select, textarea, button")) {
			if (e.type === "hidden") continue;
			const named = (e.labels && e.labels.length > 0) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") || e.title ||
				(e.tagName === "BUTTON" && e.textContent.trim() !== "");
			if (!named) unlabelled.push(desc(e));
		}
		return {viewportWidth: vw, scrollWidth: document.documentElement.scrollWidth, overflowing: over.slice(0, 10), unlabelled: unlabelled};
	})()`)
}

// AssertFits fails the test when the page scrolls sideways or has a
// control without a name; it keeps a screenshot either way.
func (p *Tab) AssertFits(name string) {
	p.t.Helper()
	shot := p.Screenshot(name)
	l := p.Layout()
	if l.ScrollWidth > l.ViewportWidth {
		p.t.Errorf("%s: the page is %dpx wide in a %dpx viewport (screenshot %s); past the edge: %s",
			name, l.ScrollWidth, l.ViewportWidth, shot, strings.Join(l.Overflowing, ", "))
	}
	if len(l.Unlabelled) > 0 {
		p.t.Errorf("%s: controls without a label: %s", name, strings.Join(l.Unlabelled, ", "))
	}
}
