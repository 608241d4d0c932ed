// Package studio holds the web studio's templates and static files, embedded
// in the binary so that the server needs nothing beside itself at run time.
//
// Templates live in templates/*.html. layout.html defines "layout", the page
// frame (header, workspace picker, navigation), which calls the block
// "content" (and, when a page needs it, "head" for extra stylesheets or
// scripts in <head>). Files whose names start with "_" hold templates
// several pages share (_charts.html: "chart" and "charts-head"). Every
// other file is one page and defines those blocks; package http parses
// each page together with layout.html and the shared files, under the
// page's file name without ".html" (jobs.html is the page "jobs").
//
// Static files live in static/ and are served under /static/ with a
// content hash in their query string, so a browser may cache them forever.
package studio

import "embed"

// Templates holds templates/*.html.
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds the files served under /static/.
//
//go:embed static
var Static embed.FS
