package drift

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OpenCollected opens the rows the data collector wrote for one
// collection (kind: model_inputs, model_outputs or another collection
// name) of a deployment, from records whose time is in [from, to). dir is
// the deployment's folder, modelDataCollector/<endpoint>/<deployment>,
// whose <kind>/YYYY/MM/DD/HH/*.jsonl files are read (dir may also be the
// collection's folder itself, when it has no folder named kind). Only
// the hour folders that overlap the window are opened; a record without a time counts as written at the
// start of its hour. Each row gets its record's correlationid in a
// column of that name, which "all features" leaves out. No folder or no
// record in the window gives a Dataset without rows.
func OpenCollected(dir string, from, to time.Time, kind string) (Dataset, error) {
	if kind == "" || strings.ContainsAny(kind, `/\`) || kind == "." || kind == ".." {
		return nil, fmt.Errorf("collection %q: want a name such as model_inputs or model_outputs", kind)
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("window [%s, %s) is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	root := filepath.Join(dir, kind)
	if _, err := os.Stat(root); err != nil {
		// dir is the collection's folder itself (a job's input of it
		// is named as the job names it).
		root = dir
	}
	files, err := collectedFiles(root, from, to)
	if err != nil {
		return nil, err
	}
	return buildStore(len(files), func(s *store, i int) error {
		hour := files[i].hour
		return s.readJSONL(files[i].path, func(rec map[string]json.RawMessage) (map[string]any, bool, error) {
			t := hour
			if raw, ok := rec["time"]; ok {
				var ts string
				if err := json.Unmarshal(raw, &ts); err != nil {
					return nil, false, fmt.Errorf("field time: not a string: %v", err)
				}
				var err error
				if t, err = time.Parse(time.RFC3339Nano, ts); err != nil {
					return nil, false, fmt.Errorf("field time: %v", err)
				}
			}
			if t.Before(from) || !t.Before(to) {
				return nil, false, nil
			}
			var extra map[string]any
			if raw, ok := rec["correlationid"]; ok {
				var id any
				if err := json.Unmarshal(raw, &id); err != nil {
					return nil, false, fmt.Errorf("field correlationid: %v", err)
				}
				extra = map[string]any{"correlationid": id}
			}
			return extra, true, nil
		})
	})
}

type hourFile struct {
	path string
	hour time.Time
}

// collectedFiles lists the JSONL files under root/YYYY/MM/DD/HH whose
// hour overlaps [from, to), in time and name order.
func collectedFiles(root string, from, to time.Time) ([]hourFile, error) {
	var out []hourFile
	years, err := numberedDirs(root, 4)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	for _, y := range years {
		months, err := numberedDirs(filepath.Join(root, y), 2)
		if err != nil {
			return nil, err
		}
		for _, mo := range months {
			days, err := numberedDirs(filepath.Join(root, y, mo), 2)
			if err != nil {
				return nil, err
			}
			for _, d := range days {
				hours, err := numberedDirs(filepath.Join(root, y, mo, d), 2)
				if err != nil {
					return nil, err
				}
				for _, h := range hours {
					yi, _ := strconv.Atoi(y)
					mi, _ := strconv.Atoi(mo)
					di, _ := strconv.Atoi(d)
					hi, _ := strconv.Atoi(h)
					t := time.Date(yi, time.Month(mi), di, hi, 0, 0, 0, time.UTC)
					if !t.Before(to) || !t.Add(time.Hour).After(from) {
						continue
					}
					p := filepath.Join(root, y, mo, d, h)
					names, err := os.ReadDir(p)
					if err != nil {
						return nil, err
					}
					for _, n := range names {
						// A job's input may hold its files as links.
						if !n.IsDir() && strings.HasSuffix(n.Name(), ".jsonl") {
							out = append(out, hourFile{filepath.Join(p, n.Name()), t})
						}
					}
				}
			}
		}
	}
	return out, nil
}

// numberedDirs lists the sub-folders of dir named by a number of the
// given width, in order.
func numberedDirs(dir string, width int) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) != width {
			continue
		}
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
