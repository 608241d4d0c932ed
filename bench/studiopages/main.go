// Command studiopages seeds a Wharf store for the studio benchmark and
// times the studio's pages against it (see bench/studio.sh).
//
//	studiopages seed -db DATA/wharf.db -workspace bench -runs 100000 -jobs 10000 -points 1000000
//	studiopages pages -url URL -token TOKEN -seeded seeded.json -n 50
//	studiopages mlflow -url URL -seeded mlflow-seeded.json -n 5
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: studiopages seed|pages|mlflow [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		fs := flag.NewFlagSet("seed", flag.ExitOnError)
		db := fs.String("db", "", "the server's wharf.db")
		ws := fs.String("workspace", "bench", "workspace (must exist)")
		runs := fs.Int("runs", 100000, "runs to create")
		jobs := fs.Int("jobs", 10000, "jobs to create")
		points := fs.Int("points", 1000000, "points in the long metric history")
		_ = fs.Parse(os.Args[2:])
		var s *seeded
		if s, err = seed(context.Background(), *db, *ws, *runs, *jobs, *points); err == nil {
			err = json.NewEncoder(os.Stdout).Encode(s)
		}
	case "pages":
		err = pages(os.Args[2:])
	case "mlflow":
		err = mlflowCalls(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "studiopages:", err)
		os.Exit(1)
	}
}
