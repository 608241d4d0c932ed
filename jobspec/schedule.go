package jobspec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// Schedule is a schedule definition: a trigger and the job it creates.
type Schedule struct {
	Name        string
	DisplayName string
	Description string
	Tags        map[string]string
	Trigger     *Trigger
	// JobFile is the absolute path of create_job when it names a file.
	JobFile string
	// Job is the validated job the schedule creates.
	Job *Plan
	// Monitor is set instead of Job for a model monitor (create_monitor).
	Monitor *Monitor
}

// Trigger says when a schedule fires.
type Trigger struct {
	// Type is "cron" or "recurrence".
	Type string
	// Expression is the five-field cron expression.
	Expression string
	// Frequency (minute, hour, day, week, month) and Interval describe a
	// recurrence; Pattern narrows it to hours, minutes and days.
	Frequency string
	Interval  int
	Pattern   RecurrencePattern
	// StartTime and EndTime bound the firings; zero means unbounded. The
	// server sets StartTime to the creation time when the file has none.
	StartTime time.Time
	EndTime   time.Time
	// Location is the time zone firings are computed in (default UTC).
	Location *time.Location
	// TimeZone is the zone name as written.
	TimeZone string

	cron cron.Schedule
}

// RecurrencePattern is the schedule: block of a recurrence trigger.
type RecurrencePattern struct {
	Hours     []int
	Minutes   []int
	WeekDays  []time.Weekday
	MonthDays []int
}

type rawSchedule struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"display_name"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
	Trigger     *rawTrigger       `yaml:"trigger"`
	CreateJob   *yaml.Node        `yaml:"create_job"`
	// CreateMonitor makes the schedule a model monitor.
	CreateMonitor *yaml.Node `yaml:"create_monitor"`
}

type rawTrigger struct {
	Type       string      `yaml:"type"`
	Expression string      `yaml:"expression"`
	Frequency  string      `yaml:"frequency"`
	Interval   *int        `yaml:"interval"`
	Schedule   *rawPattern `yaml:"schedule"`
	// Pattern is schedule under the name Azure ML's reference gives it.
	Pattern   *rawPattern `yaml:"pattern"`
	StartTime string      `yaml:"start_time"`
	EndTime   string      `yaml:"end_time"`
	TimeZone  string      `yaml:"time_zone"`
	// Timezone is time_zone as the monitor schedule reference spells it.
	Timezone string `yaml:"timezone"`
}

type rawPattern struct {
	Hours     intList    `yaml:"hours"`
	Minutes   intList    `yaml:"minutes"`
	WeekDays  stringList `yaml:"week_days"`
	MonthDays intList    `yaml:"month_days"`
}

// intList is a list of whole numbers that may be written as one number
// (hours: 3), as Azure ML's monitor examples write it.
type intList []int

// UnmarshalYAML reads a number or a list of numbers.
func (l *intList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v int
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("expected a whole number or a list of them, got %q", n.Value)
		}
		*l = intList{v}
		return nil
	}
	var vs []int
	if err := n.Decode(&vs); err != nil {
		return fmt.Errorf("expected a whole number or a list of them")
	}
	*l = vs
	return nil
}

// stringList is a list of strings that may be written as one string.
type stringList []string

// UnmarshalYAML reads a string or a list of strings.
func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var vs []string
	if err := n.Decode(&vs); err != nil {
		return fmt.Errorf("expected a string or a list of strings")
	}
	*l = vs
	return nil
}

// LoadSchedule reads a schedule YAML file, applying --set overrides, and
// validates the job it creates (a file path relative to the schedule, or an
// inline job).
func LoadSchedule(path string, sets []string, r Resolver) (*Schedule, error) {
	errs := &problems{}
	doc := loadDocument(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return scheduleFromDocument(doc, r, errs)
}

// ScheduleFromDocument reads a schedule from an already parsed (and
// overridden) document.
func ScheduleFromDocument(doc *yamlfile.Document, r Resolver) (*Schedule, error) {
	return scheduleFromDocument(doc, r, &problems{})
}

func scheduleFromDocument(doc *yamlfile.Document, r Resolver, errs *problems) (*Schedule, error) {
	s := scope{doc, errs}
	var raw rawSchedule
	s.decode(doc.Root, "", &raw)
	sc := &Schedule{Name: raw.Name, DisplayName: raw.DisplayName, Description: raw.Description, Tags: raw.Tags}
	if sc.Name == "" {
		s.fail(doc.Root, "name", "name is required")
	} else if !jobNameRe.MatchString(sc.Name) {
		s.fail(doc.Node("name"), "name", "invalid schedule name %q (letters, digits, '-' and '_')", sc.Name)
	}
	if raw.Trigger == nil {
		s.fail(doc.Root, "trigger", "trigger is required")
	} else {
		sc.Trigger = s.trigger(doc.Node("trigger"), "trigger", raw.Trigger)
	}
	jn := raw.CreateJob
	switch {
	case raw.CreateMonitor != nil && jn != nil:
		s.fail(doc.Node("create_monitor"), "create_monitor", "a schedule has create_job or create_monitor, not both")
	case raw.CreateMonitor != nil:
		sc.Monitor = s.monitor(raw.CreateMonitor, "create_monitor")
	case jn == nil || isNull(jn):
		s.fail(doc.Root, "create_job", "create_job or create_monitor is required")
	case jn.Kind == yaml.ScalarNode:
		jobFile, ok := s.localPath(jn, "create_job", strings.TrimPrefix(jn.Value, "file:"))
		if !ok {
			break
		}
		sc.JobFile = jobFile
		before := len(errs.list)
		jdoc := loadDocument(sc.JobFile, nil, errs)
		if jdoc == nil {
			for _, e := range errs.list[before:] {
				if e.Line == 0 && e.Field == "" {
					e.Msg = "create_job: " + e.Msg
					e.File, e.Line, e.Column, e.Field = doc.File, jn.Line, jn.Column, "create_job"
				}
			}
		} else {
			expandScheduleNodes(jdoc.Root, false)
			sc.Job, _ = jobFromDocument(jdoc, jdoc.Root, "", r, errs)
		}
	case jn.Kind == yaml.MappingNode && isJobWithOverrides(jn):
		jdoc := s.jobWithOverrides(jn)
		if jdoc != nil {
			sc.JobFile = jdoc.File
			expandScheduleNodes(jdoc.Root, false)
			sc.Job, _ = jobFromDocument(jdoc, jdoc.Root, "", r, errs)
		}
	case jn.Kind == yaml.MappingNode:
		expandScheduleNodes(jn, false)
		sc.Job, _ = jobFromDocument(doc, jn, "create_job", r, errs)
	default:
		s.fail(jn, "create_job", "create_job must be a job file path or an inline job")
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return sc, nil
}

// isJobWithOverrides reports whether create_job is the form
// {job: ./x.yml, inputs: ..., settings: ...}: a job file with values of
// its own put over it.
func isJobWithOverrides(n *yaml.Node) bool {
	j := valueOf(n, "job")
	return j != n && deref(j).Kind == yaml.ScalarNode
}

// jobWithOverrides loads the job file create_job.job names and puts the
// create_job's other keys over it: a mapping (inputs, outputs, settings,
// tags) key by key, anything else whole.
func (s scope) jobWithOverrides(n *yaml.Node) *yamlfile.Document {
	jn := deref(valueOf(n, "job"))
	path, ok := s.localPath(jn, "create_job.job", strings.TrimPrefix(jn.Value, "file:"))
	if !ok {
		return nil
	}
	jdoc := loadDocument(path, nil, s.errs)
	if jdoc == nil {
		return nil
	}
	overrideJob(jdoc.Root, n)
	return jdoc
}

// overrideJob puts the entries of over (but its job key) over the job
// mapping root.
func overrideJob(root, over *yaml.Node) {
	for _, e := range entries(over) {
		if e.key.Value == "job" {
			continue
		}
		cur := valueOf(root, e.key.Value)
		if cur != root && deref(cur).Kind == yaml.MappingNode && e.value.Kind == yaml.MappingNode {
			target := deref(cur)
			for _, inner := range entries(e.value) {
				removeKey(target, inner.key.Value)
				target.Content = append(target.Content, inner.key, inner.value)
			}
			continue
		}
		removeKey(root, e.key.Value)
		root.Content = append(root.Content, e.key, e.value)
	}
}

// cronParser reads the five-field expressions Azure ML uses.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

func (s scope) trigger(n *yaml.Node, field string, raw *rawTrigger) *Trigger {
	if raw.TimeZone == "" {
		raw.TimeZone = raw.Timezone
	}
	if raw.Schedule == nil {
		raw.Schedule = raw.Pattern
	}
	t := &Trigger{Type: raw.Type, Expression: raw.Expression, Frequency: strings.ToLower(raw.Frequency), Interval: 1, TimeZone: raw.TimeZone}
	loc, err := loadZone(raw.TimeZone)
	if err != nil {
		s.fail(valueOf(n, "time_zone"), join(field, "time_zone"), "%v", err)
		loc = time.UTC
	}
	t.Location = loc
	for _, b := range []struct {
		key, text string
		dst       *time.Time
	}{{"start_time", raw.StartTime, &t.StartTime}, {"end_time", raw.EndTime, &t.EndTime}} {
		if b.text == "" {
			continue
		}
		tm, err := parseScheduleTime(b.text, loc)
		if err != nil {
			s.fail(valueOf(n, b.key), join(field, b.key), "%v", err)
			continue
		}
		*b.dst = tm
	}
	if !t.StartTime.IsZero() && !t.EndTime.IsZero() && !t.EndTime.After(t.StartTime) {
		s.fail(valueOf(n, "end_time"), join(field, "end_time"), "end_time must be after start_time")
	}
	switch t.Type {
	case "cron":
		if raw.Frequency != "" || raw.Interval != nil || raw.Schedule != nil {
			s.fail(n, field, "frequency, interval and schedule apply to recurrence triggers only")
		}
		sched, err := cronParser.Parse(strings.TrimSpace(raw.Expression))
		if err != nil {
			s.fail(valueOf(n, "expression"), join(field, "expression"), "invalid cron expression %q: %v", raw.Expression, err)
			return t
		}
		t.cron = sched
	case "recurrence":
		if raw.Expression != "" {
			s.fail(valueOf(n, "expression"), join(field, "expression"), "expression applies to cron triggers only")
		}
		switch t.Frequency {
		case "minute", "hour", "day", "week", "month":
		default:
			s.fail(valueOf(n, "frequency"), join(field, "frequency"), "frequency must be minute, hour, day, week or month, got %q", raw.Frequency)
		}
		if raw.Interval != nil {
			t.Interval = *raw.Interval
			if t.Interval < 1 {
				s.fail(valueOf(n, "interval"), join(field, "interval"), "interval must be at least 1")
				t.Interval = 1
			}
		}
		if p := raw.Schedule; p != nil {
			pn := valueOf(n, "schedule")
			if t.Frequency == "minute" || t.Frequency == "hour" {
				s.fail(pn, join(field, "schedule"), "schedule applies to day, week and month frequencies only")
			}
			t.Pattern.Hours = s.intsIn(pn, join(field, "schedule.hours"), p.Hours, 0, 23)
			t.Pattern.Minutes = s.intsIn(pn, join(field, "schedule.minutes"), p.Minutes, 0, 59)
			t.Pattern.MonthDays = s.intsIn(pn, join(field, "schedule.month_days"), p.MonthDays, 1, 31)
			for _, d := range p.WeekDays {
				wd, ok := weekdays[strings.ToLower(d)]
				if !ok {
					s.fail(valueOf(pn, "week_days"), join(field, "schedule.week_days"), "unknown week day %q", d)
					continue
				}
				t.Pattern.WeekDays = append(t.Pattern.WeekDays, wd)
			}
			if len(t.Pattern.WeekDays) > 0 && t.Frequency != "week" {
				s.fail(valueOf(pn, "week_days"), join(field, "schedule.week_days"), "week_days applies to weekly recurrences only")
			}
			if len(t.Pattern.MonthDays) > 0 && t.Frequency != "month" {
				s.fail(valueOf(pn, "month_days"), join(field, "schedule.month_days"), "month_days applies to monthly recurrences only")
			}
		}
	default:
		s.fail(valueOf(n, "type"), join(field, "type"), "trigger type must be cron or recurrence, got %q", raw.Type)
	}
	return t
}

func (s scope) intsIn(n *yaml.Node, field string, vals []int, lo, hi int) []int {
	out := make([]int, 0, len(vals))
	for _, v := range vals {
		if v < lo || v > hi {
			s.fail(n, field, "value %d is outside %d..%d", v, lo, hi)
			continue
		}
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// windowsZones maps the Windows time zone names Azure ML schedules use to
// IANA names; IANA names are accepted as they are.
var windowsZones = map[string]string{
	"UTC": "UTC", "Coordinated Universal Time": "UTC", "GMT Standard Time": "Europe/London",
	"Greenwich Standard Time": "Atlantic/Reykjavik", "W. Europe Standard Time": "Europe/Berlin",
	"Central Europe Standard Time": "Europe/Budapest", "Romance Standard Time": "Europe/Paris",
	"Central European Standard Time": "Europe/Warsaw", "E. Europe Standard Time": "Europe/Chisinau",
	"FLE Standard Time": "Europe/Kiev", "GTB Standard Time": "Europe/Bucharest", "Russian Standard Time": "Europe/Moscow",
	"Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
	"Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
	"Pacific Standard Time": "America/Los_Angeles", "Alaskan Standard Time": "America/Anchorage",
	"Hawaiian Standard Time": "Pacific/Honolulu", "Atlantic Standard Time": "America/Halifax",
	"E. South America Standard Time": "America/Sao_Paulo", "India Standard Time": "Asia/Kolkata",
	"China Standard Time": "Asia/Shanghai", "Tokyo Standard Time": "Asia/Tokyo", "Korea Standard Time": "Asia/Seoul",
	"Singapore Standard Time": "Asia/Singapore", "Arabian Standard Time": "Asia/Dubai",
	"AUS Eastern Standard Time": "Australia/Sydney", "E. Australia Standard Time": "Australia/Brisbane",
	"W. Australia Standard Time": "Australia/Perth", "New Zealand Standard Time": "Pacific/Auckland",
	"South Africa Standard Time": "Africa/Johannesburg", "Israel Standard Time": "Asia/Jerusalem",
	"Turkey Standard Time": "Europe/Istanbul",
}

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if iana, ok := windowsZones[name]; ok {
		name = iana
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// parseScheduleTime reads ISO 8601 times; without an offset the time is in
// the trigger's zone, as Azure ML reads it.
func parseScheduleTime(text string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		var t time.Time
		var err error
		if layout == time.RFC3339Nano {
			t, err = time.Parse(layout, text)
		} else {
			t, err = time.ParseInLocation(layout, text, loc)
		}
		if err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (expected ISO 8601, e.g. 2024-01-31T09:00:00)", text)
}

// maxSearchDays bounds the search for the next recurrence so a pattern
// that can never match (month_days: [31] every 12 months from a short
// month) ends.
const maxSearchDays = 366 * 50

// Next returns the first firing strictly after after, or the zero time
// when there is none (past EndTime, or an invalid trigger).
func (t *Trigger) Next(after time.Time) time.Time {
	loc := t.Location
	if loc == nil {
		loc = time.UTC
	}
	from := after.In(loc)
	if !t.StartTime.IsZero() && from.Before(t.StartTime) {
		// Firings at StartTime itself count.
		from = t.StartTime.In(loc).Add(-time.Nanosecond)
	}
	var next time.Time
	switch t.Type {
	case "cron":
		if t.cron == nil {
			return time.Time{}
		}
		next = t.cron.Next(from)
	case "recurrence":
		next = t.nextRecurrence(from, loc)
	}
	if next.IsZero() || (!t.EndTime.IsZero() && next.After(t.EndTime)) {
		return time.Time{}
	}
	return next
}

func (t *Trigger) nextRecurrence(from time.Time, loc *time.Location) time.Time {
	interval := max(t.Interval, 1)
	anchor := t.StartTime
	if anchor.IsZero() {
		anchor = time.Unix(0, 0)
	}
	anchor = anchor.In(loc)
	switch t.Frequency {
	case "minute", "hour":
		step := time.Duration(interval) * time.Minute
		if t.Frequency == "hour" {
			step = time.Duration(interval) * time.Hour
		}
		if from.Before(anchor) {
			return anchor
		}
		k := from.Sub(anchor)/step + 1
		return anchor.Add(k * step)
	}
	hours, minutes := t.Pattern.Hours, t.Pattern.Minutes
	if len(hours) == 0 {
		hours = []int{anchor.Hour()}
	}
	if len(minutes) == 0 {
		minutes = []int{anchor.Minute()}
	}
	anchorDay := civilDay(anchor)
	day := civilDay(from)
	if day < anchorDay {
		day = anchorDay
	}
	for i := 0; i < maxSearchDays; i, day = i+1, day+1 {
		date := time.Unix(day*86400, 0).UTC()
		if !t.dayMatches(date, anchor, anchorDay, day, interval) {
			continue
		}
		for _, h := range hours {
			for _, m := range minutes {
				c := time.Date(date.Year(), date.Month(), date.Day(), h, m, 0, 0, loc)
				if c.After(from) && !c.Before(anchor) {
					return c
				}
			}
		}
	}
	return time.Time{}
}

// dayMatches reports whether the calendar day (given as a UTC date) is one
// the recurrence fires on.
func (t *Trigger) dayMatches(date, anchor time.Time, anchorDay, day int64, interval int) bool {
	switch t.Frequency {
	case "day":
		return (day-anchorDay)%int64(interval) == 0
	case "week":
		// Weeks count from the Sunday starting the anchor's week.
		weekStart := anchorDay - int64(anchor.Weekday())
		if (day-weekStart)/7%int64(interval) != 0 {
			return false
		}
		days := t.Pattern.WeekDays
		if len(days) == 0 {
			days = []time.Weekday{anchor.Weekday()}
		}
		for _, d := range days {
			if date.Weekday() == d {
				return true
			}
		}
		return false
	case "month":
		months := (date.Year()-anchor.Year())*12 + int(date.Month()) - int(anchor.Month())
		if months%interval != 0 {
			return false
		}
		days := t.Pattern.MonthDays
		if len(days) == 0 {
			days = []int{anchor.Day()}
		}
		for _, d := range days {
			if date.Day() == d {
				return true
			}
		}
	}
	return false
}

// civilDay numbers the calendar day of t in its own zone.
func civilDay(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// MarshalJSON stores a trigger by what was written; Location is kept as
// its zone name and the cron expression is parsed again on load.
func (t *Trigger) MarshalJSON() ([]byte, error) {
	return json.Marshal(triggerJSON{Type: t.Type, Expression: t.Expression, Frequency: t.Frequency,
		Interval: t.Interval, Pattern: t.Pattern, StartTime: t.StartTime, EndTime: t.EndTime, TimeZone: t.TimeZone})
}

// UnmarshalJSON rebuilds a trigger stored by MarshalJSON.
func (t *Trigger) UnmarshalJSON(b []byte) error {
	var j triggerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	loc, err := loadZone(j.TimeZone)
	if err != nil {
		return err
	}
	*t = Trigger{Type: j.Type, Expression: j.Expression, Frequency: j.Frequency, Interval: j.Interval,
		Pattern: j.Pattern, StartTime: j.StartTime, EndTime: j.EndTime, TimeZone: j.TimeZone, Location: loc}
	if t.Type == "cron" {
		sched, err := cronParser.Parse(strings.TrimSpace(t.Expression))
		if err != nil {
			return fmt.Errorf("invalid cron expression %q: %w", t.Expression, err)
		}
		t.cron = sched
	}
	return nil
}

type triggerJSON struct {
	Type       string            `json:"type"`
	Expression string            `json:"expression,omitempty"`
	Frequency  string            `json:"frequency,omitempty"`
	Interval   int               `json:"interval,omitempty"`
	Pattern    RecurrencePattern `json:"schedule"`
	StartTime  time.Time         `json:"start_time"`
	EndTime    time.Time         `json:"end_time"`
	TimeZone   string            `json:"time_zone,omitempty"`
}
