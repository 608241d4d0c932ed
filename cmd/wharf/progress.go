package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/wharfml/wharf/output"
)

// progress reports a transfer on stderr. On a terminal it redraws one line
// at most every progressRedraw; elsewhere (a CI log) it writes a line at
// most every progressLogEvery, so a large upload adds a handful of lines
// to a log, not thousands.
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	total    int64
	last     time.Time
	wrote    bool
	lastLine string
}

const (
	progressRedraw   = 100 * time.Millisecond
	progressLogEvery = 5 * time.Second
)

func (a *app) newProgress(label string, total int64) *progress {
	p := &progress{w: a.stderr, label: label, total: total}
	if f, ok := a.stderr.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

// update shows done bytes, with detail (such as a file count) after them.
func (p *progress) update(done int64, detail string) {
	now := time.Now()
	every := progressLogEvery
	if p.tty {
		every = progressRedraw
	}
	if p.wrote && now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.show(done, detail)
}

func (p *progress) show(done int64, detail string) {
	line := p.label + ": " + detail + output.Bytes(done)
	// A file that grew while it was read passes its stated total.
	if p.total > 0 && done <= p.total {
		line += "/" + output.Bytes(p.total) + fmt.Sprintf(" (%d%%)", done*100/p.total)
	}
	if line == p.lastLine {
		return
	}
	p.lastLine, p.wrote = line, true
	if p.tty {
		fmt.Fprint(p.w, "\r"+line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// done shows the final count and ends the line.
func (p *progress) done(done int64, detail string) {
	if !p.wrote && done == 0 {
		return
	}
	p.show(done, detail)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
