package yamlfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func mustParse(t *testing.T, src string) *Document {
	t.Helper()
	doc, err := Parse("job.yml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return doc
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yml", Line: 3, Column: 5, Field: "a.b", Msg: "bad"}, "a.yml:3:5: field a.b: bad"},
		{Error{File: "a.yml", Line: 3, Msg: "bad"}, "a.yml:3: bad"},
		{Error{File: "a.yml", Field: "x", Msg: "bad"}, "a.yml: field x: bad"},
		{Error{Line: 7, Column: 1, Msg: "bad"}, "7:1: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		contains  string
	}{
		{"empty", "", 0, "file is empty"},
		{"only comments", "# nothing here\n", 0, "file is empty"},
		{"null document", "---\n", 0, "file is empty"},
		{"list root", "- a\n- b\n", 1, "expected a mapping at the top level, got sequence"},
		{"scalar root", "hello\n", 1, `got "hello"`},
		{"unclosed flow list", "name: a\nb: [1, 2\nc: 3\n", 2, "did not find expected ',' or ']'"},
		{"bad indentation", "a:\n  b: 1\n c: 2\n", 3, "did not find expected key"},
		{"sequence then key", "a: 1\nb:\n  - x\n  y: 2\n", 3, "did not find expected '-' indicator"},
		{"unterminated quote", "a: 1\nb: 'oops\nc: 3\n", 2, "found unexpected end of stream"},
		{"missing colon", "a: 1\nb: 2\nc 2\nd: 3\n", 3, "could not find expected ':'"},
		{"tab indent", "a:\n\tb: 1\n", 2, "found character that cannot start any token"},
		{"duplicate key", "name: a\ncompute: x\nname: b\n", 3, `duplicate key "name" (first defined at line 1)`},
		{"second document", "a: 1\n---\nb: 2\n", 3, "multiple YAML documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yml", []byte(tt.src))
			if err == nil {
				t.Fatal("expected an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if e.File != "bad.yml" || e.Line != tt.line {
				t.Errorf("position = %s:%d, want bad.yml:%d (%v)", e.File, e.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if strings.Contains(err.Error(), "yaml: ") {
				t.Errorf("error %q leaks the library prefix", err)
			}
		})
	}
}

func TestDuplicateKeysAllReported(t *testing.T) {
	_, err := Parse("d.yml", []byte("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n"))
	errs := AsList(err)
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want 2: %v", len(errs), err)
	}
	if errs[1].Field != "b.c" || errs[1].Line != 5 {
		t.Errorf("second error = %+v, want field b.c at line 5", errs[1])
	}
}

func TestLoadAndDir(t *testing.T) {
	doc, err := Load(filepath.Join("testdata", "deployment.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs("testdata")
	if doc.Dir() != want || !filepath.IsAbs(doc.Dir()) {
		t.Errorf("Dir() = %q, want absolute %q", doc.Dir(), want)
	}
	if got := doc.Resolve("./src"); got != filepath.Join(want, "src") {
		t.Errorf("Resolve(./src) = %q", got)
	}
	if got := doc.String("environment_variables.POSTFIX"); got != "0659" {
		t.Errorf("POSTFIX = %q, want 0659", got)
	}

	rel := mustParse(t, "a: 1\n")
	cwd, _ := os.Getwd()
	if rel.Dir() != cwd {
		t.Errorf("Dir() of a bare file name = %q, want %q", rel.Dir(), cwd)
	}

	if _, err := Load(filepath.Join("testdata", "missing.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func TestGet(t *testing.T) {
	doc := mustParse(t, `
base: &base
  size: small
  count: 1
jobs:
  train:
    <<: *base
    count: 3
    inputs:
      alpha: 0.1
tags: [a, b]
matrix:
  - {x: 1}
  - {x: 2}
"0": zero
empty:
`)
	tests := []struct {
		path string
		want string
		ok   bool
	}{
		{"jobs.train.inputs.alpha", "0.1", true},
		{"jobs.train.size", "small", true}, // via merge key
		{"jobs.train.count", "3", true},    // explicit key wins over merge
		{"tags.1", "b", true},
		{"tags[0]", "a", true},
		{"matrix[1].x", "2", true},
		{"matrix.0.x", "1", true},
		{"0", "zero", true},
		{"tags[2]", "", false},
		{"jobs.train.nope", "", false},
		{"jobs..train", "", false},
		{"empty", "", true},
	}
	for _, tt := range tests {
		n, ok := doc.Get(tt.path)
		if ok != tt.ok {
			t.Errorf("Get(%q) ok = %v, want %v", tt.path, ok, tt.ok)
			continue
		}
		if got := doc.String(tt.path); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.path, got, tt.want)
		}
		if ok && doc.Node(tt.path) != n {
			t.Errorf("Node(%q) differs from Get", tt.path)
		}
	}
	if doc.Node("jobs.train.inputs").Line != 10 {
		t.Errorf("Node line = %d, want 10", doc.Node("jobs.train.inputs").Line)
	}
	if doc.Node("missing") != nil {
		t.Error("Node(missing) should be nil")
	}
}

func TestSet(t *testing.T) {
	const src = `name: green
inputs:
  enable_monitoring: false
settings: {}
tags: [a, b]
matrix:
  - x: 1
empty:
`
	tests := []struct {
		expr    string
		path    string
		want    string // raw text
		tag     string
		kind    yaml.Kind
		wantErr string
	}{
		{expr: "inputs.enable_monitoring=true", path: "inputs.enable_monitoring", want: "true", tag: "!!bool"},
		{expr: "experiment_name=dev_taxi", path: "experiment_name", want: "dev_taxi", tag: "!!str"},
		{expr: "name=blue", path: "name", want: "blue", tag: "!!str"},
		{expr: "settings.default_compute=azureml:cpu-cluster", path: "settings.default_compute", want: "azureml:cpu-cluster", tag: "!!str"},
		{expr: "jobs.train.inputs.alpha=0.1", path: "jobs.train.inputs.alpha", want: "0.1", tag: "!!float"},
		{expr: "resources.instance_count=10", path: "resources.instance_count", want: "10", tag: "!!int"},
		{expr: "postfix=0659", path: "postfix", want: "0659"},
		{expr: "tags.0=x", path: "tags[0]", want: "x", tag: "!!str"},
		{expr: "tags[2]=c", path: "tags.2", want: "c", tag: "!!str"},
		{expr: "matrix[0].x=5", path: "matrix.0.x", want: "5", tag: "!!int"},
		{expr: "a[0].b=c", path: "a[0].b", want: "c", tag: "!!str"},
		{expr: "labels.0=x", path: "labels.0", want: "x", tag: "!!str"},
		{expr: "empty.child=1", path: "empty.child", want: "1", tag: "!!int"},
		{expr: "description=note: keep it", path: "description", want: "note: keep it", tag: "!!str"},
		{expr: "description=#hash", path: "description", want: "#hash", tag: "!!str"},
		{expr: "description=", path: "description", want: "", tag: "!!str"},
		{expr: "description=a=b", path: "description", want: "a=b", tag: "!!str"},
		{expr: " name = blue", path: "name", want: "blue", tag: "!!str"},
		{expr: "list=[1, 2]", path: "list", kind: yaml.SequenceNode},
		{expr: "map={a: 1}", path: "map.a", want: "1", tag: "!!int"},
		{expr: "quoted='0659'", path: "quoted", want: "0659", tag: "!!str"},

		{expr: "no-equals", wantErr: `field no-equals: --set "no-equals": expected key.path=value`},
		{expr: "=value", wantErr: "empty key"},
		{expr: "a..b=1", wantErr: "field a..b:"},
		{expr: "tags[x]=1", wantErr: "invalid list index"},
		{expr: "name.first=x", wantErr: `name is "green", not a mapping or list`},
		{expr: "tags.five=x", wantErr: "tags is a list"},
		{expr: "tags[9]=x", wantErr: "index 9 is out of range: tags has 2 items"},
		{expr: "inputs[0]=x", wantErr: "inputs is a mapping, not a list"},
		{expr: "list=[1, 2", wantErr: "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			doc := mustParse(t, src)
			err := doc.Set(tt.expr)
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v, want *Error containing %q", tt.expr, err, tt.wantErr)
				}
				key, _, _ := strings.Cut(tt.expr, "=")
				if e.Field != strings.TrimSpace(key) || e.File != "job.yml" {
					t.Errorf("error field/file = %q/%q, want %q/job.yml", e.Field, e.File, key)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q): %v", tt.expr, err)
			}
			n, ok := doc.Get(tt.path)
			if !ok {
				t.Fatalf("Get(%q) after Set: missing", tt.path)
			}
			if tt.kind != 0 {
				if n.Kind != tt.kind {
					t.Fatalf("kind = %v, want %v", n.Kind, tt.kind)
				}
				return
			}
			if n.Value != tt.want {
				t.Errorf("value = %q, want %q", n.Value, tt.want)
			}
			if tt.tag != "" && n.ShortTag() != tt.tag {
				t.Errorf("tag = %q, want %q", n.ShortTag(), tt.tag)
			}
		})
	}
}

func TestSetKeepsUnrelatedKeysAndOrder(t *testing.T) {
	doc := mustParse(t, "a: 1\nb:\n  c: 2\n")
	for _, e := range []string{"b.d=3", "b.c=4", "e.f.g=5"} {
		if err := doc.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := yaml.Marshal(doc.Root)
	if err != nil {
		t.Fatal(err)
	}
	want := "a: 1\nb:\n    c: 4\n    d: 3\ne:\n    f:\n        g: 5\n"
	if string(out) != want {
		t.Errorf("document after Set:\n%s\nwant:\n%s", out, want)
	}
}

// Deployment mirrors part of an Azure ML managed online deployment.
type Deployment struct {
	Name            string            `yaml:"name"`
	EndpointName    string            `yaml:"endpoint_name"`
	InstanceCount   int               `yaml:"instance_count"`
	InstanceType    string            `yaml:"instance_type,omitempty"`
	RequestSettings *RequestSettings  `yaml:"request_settings"`
	EnvVars         map[string]string `yaml:"environment_variables"`
	Tags            []string          `yaml:"tags"`
	Internal        string            `yaml:"-"`
}

// RequestSettings exercises durations and small unsigned integers.
type RequestSettings struct {
	RequestTimeout time.Duration `yaml:"request_timeout"`
	MaxConcurrent  uint8         `yaml:"max_concurrent_requests_per_instance"`
}

func TestDecodeFile(t *testing.T) {
	doc, err := Load(filepath.Join("testdata", "deployment.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var d Deployment
	if err := Decode(doc, &d); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Deployment{
		Name: "blue", EndpointName: "taxi-fare", InstanceCount: 2, InstanceType: "Standard_DS3_v2",
		RequestSettings: &RequestSettings{RequestTimeout: 90 * time.Second, MaxConcurrent: 1},
		EnvVars:         map[string]string{"POSTFIX": "0659"},
		Tags:            []string{"prod", "taxi"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("decoded %+v\nwant    %+v", d, want)
	}
}

func TestDecodeUnknownField(t *testing.T) {
	doc := mustParse(t, "name: blue\nrequest_settings:\n  request_timout: 5s\ninstnce_count: 3\n")
	var d Deployment
	err := Decode(doc, &d)
	var list *ErrorList
	if !errors.As(err, &list) || len(list.Errors) != 2 {
		t.Fatalf("want an ErrorList of 2, got %T: %v", err, err)
	}
	want := []string{
		`job.yml:3:3: field request_settings.request_timout: unknown field "request_timout" (allowed: request_timeout, max_concurrent_requests_per_instance); did you mean "request_timeout"?`,
		`job.yml:4:1: field instnce_count: unknown field "instnce_count" (allowed: name, endpoint_name, instance_count, instance_type, request_settings, environment_variables, tags); did you mean "instance_count"?`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Field != "request_settings.request_timout" {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
	if d.Name != "blue" {
		t.Errorf("valid fields should still be decoded, got name %q", d.Name)
	}
}

func TestDecodeErrors(t *testing.T) {
	type Limits struct {
		I8  int8          `yaml:"i8"`
		U16 uint16        `yaml:"u16"`
		F32 float32       `yaml:"f32"`
		B   bool          `yaml:"b"`
		D   time.Duration `yaml:"d"`
		L   []int         `yaml:"l"`
		M   map[string]int
		S   string `yaml:"s"`
		A   [2]int `yaml:"a"`
	}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"type mismatch int", "i8: abc\n", []string{`job.yml:1:5: field i8: expected integer, got "abc"`}},
		{"float into int", "i8: 1.5\n", []string{`field i8: expected integer, got "1.5"`}},
		{"int8 out of range", "i8: 300\n", []string{`job.yml:1:5: field i8: value 300 is out of range for int8 (-128 to 127)`}},
		{"negative uint", "u16: -1\n", []string{`field u16: value -1 is out of range for uint16 (0 to 65535)`}},
		{"uint16 out of range", "u16: 70000\n", []string{`value 70000 is out of range for uint16 (0 to 65535)`}},
		{"float32 out of range", "f32: 1e60\n", []string{`value 1e60 is out of range for float32`}},
		{"bad bool", "b: maybe\n", []string{`field b: expected boolean (true or false), got "maybe"`}},
		{"bad duration", "d: soon\n", []string{`field d: expected duration (e.g. "30s") or number of seconds, got "soon"`}},
		{"mapping for string", "s:\n  x: 1\n", []string{`job.yml:2:3: field s: expected string, got mapping`}},
		{"scalar for list", "l: 5\n", []string{`field l: expected a list, got "5"`}},
		{"list element", "l: [1, x, 3]\n", []string{`job.yml:1:8: field l[1]: expected integer, got "x"`}},
		{"map value", "m:\n  a: 1\n  b: two\n", []string{`job.yml:3:6: field m.b: expected integer, got "two"`}},
		{"array length", "a: [1]\n", []string{`field a: expected a list of 2 items, got 1`}},
		{"all collected", "i8: 999\nb: perhaps\nzzz: 1\nl: [a]\n", []string{
			"job.yml:1:5: field i8: value 999 is out of range",
			"job.yml:2:4: field b: expected boolean",
			`job.yml:3:1: field zzz: unknown field "zzz"`,
			"job.yml:4:5: field l[0]: expected integer",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Limits
			err := Decode(mustParse(t, tt.src), &v)
			got := AsList(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d: %v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i].Error(), w)
				}
			}
		})
	}
}

func TestDecodeScalars(t *testing.T) {
	type S struct {
		Postfix string          `yaml:"postfix"`
		Version string          `yaml:"version"`
		Flag    string          `yaml:"flag"`
		B       []bool          `yaml:"b"`
		I       []int64         `yaml:"i"`
		U       uint8           `yaml:"u"`
		F       []float64       `yaml:"f"`
		D       []time.Duration `yaml:"d"`
		P       *int            `yaml:"p"`
		Keep    int             `yaml:"keep"`
	}
	doc := mustParse(t, `postfix: 0659
version: 0.14.7
flag: yes
b: [true, False, YES, no, On, OFF]
i: [10, -3, 0x1F, 010, +7]
u: 255
f: [1.5, 2, .inf, -1e3]
d: [30s, 90, 1m30s, 1.5]
p: 4
keep:
`)
	v := S{Keep: 42}
	if err := Decode(doc, &v); err != nil {
		t.Fatal(err)
	}
	if v.Postfix != "0659" || v.Version != "0.14.7" || v.Flag != "yes" {
		t.Errorf("strings = %q %q %q; raw text must be kept", v.Postfix, v.Version, v.Flag)
	}
	if want := []bool{true, false, true, false, true, false}; !reflect.DeepEqual(v.B, want) {
		t.Errorf("bools = %v, want %v", v.B, want)
	}
	if want := []int64{10, -3, 31, 10, 7}; !reflect.DeepEqual(v.I, want) {
		t.Errorf("ints = %v, want %v", v.I, want)
	}
	if v.U != 255 {
		t.Errorf("uint8 = %d", v.U)
	}
	if v.F[0] != 1.5 || v.F[1] != 2 || v.F[2] <= 1e308 || v.F[3] != -1000 {
		t.Errorf("floats = %v", v.F)
	}
	if want := []time.Duration{30 * time.Second, 90 * time.Second, 90 * time.Second, 1500 * time.Millisecond}; !reflect.DeepEqual(v.D, want) {
		t.Errorf("durations = %v, want %v", v.D, want)
	}
	if v.P == nil || *v.P != 4 {
		t.Errorf("pointer = %v", v.P)
	}
	if v.Keep != 42 {
		t.Errorf("null should keep the pre-filled default, got %d", v.Keep)
	}
}

func TestDecodeSchemaOnlyAtTop(t *testing.T) {
	type Inner struct {
		A int `yaml:"a"`
	}
	type Top struct {
		Inner Inner `yaml:"inner"`
	}
	var v Top
	if err := Decode(mustParse(t, "$schema: https://example.com/x.json\ninner:\n  a: 1\n"), &v); err != nil {
		t.Fatalf("top-level $schema must be ignored: %v", err)
	}
	if v.Inner.A != 1 {
		t.Errorf("inner.a = %d", v.Inner.A)
	}
	err := Decode(mustParse(t, "inner:\n  $schema: x\n"), &v)
	if err == nil || !strings.Contains(err.Error(), `unknown field "$schema"`) {
		t.Errorf("nested $schema should be unknown, got %v", err)
	}
	var free map[string]any
	if err := Decode(mustParse(t, "$schema: x\nk: v\n"), &free); err != nil || len(free) != 1 || free["k"] != "v" {
		t.Errorf("map decode = %v, %v; want only k", free, err)
	}
}

// Common is inlined into Job, as shared fields are in Azure ML schemas.
type Common struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Extra is inlined through a pointer, which Decode must allocate.
type Extra struct {
	Depth int `yaml:"depth"`
}

// Job mixes inlined, free-form and ignored fields.
type Job struct {
	Common  `yaml:",inline"`
	*Extra  `yaml:",inline"`
	Type    string         `yaml:"type"`
	Inputs  map[string]any `yaml:"inputs"`
	Payload any            `yaml:"payload"`
	Secret  string         `yaml:"-"`
}

// Labeled collects unclaimed keys in an inline map.
type Labeled struct {
	Type  string            `yaml:"type"`
	Other map[string]string `yaml:",inline"`
}

func TestDecodeInlineAndFreeForm(t *testing.T) {
	doc := mustParse(t, `name: train
description: fit the model
depth: 3
type: command
secret: ignored
inputs:
  alpha: 0.1
  epochs: 10
  data: {path: ./data, mode: ro_mount}
  flags: [true, off]
payload: hello
`)
	var j Job
	if err := Decode(doc, &j); err != nil {
		t.Fatal(err)
	}
	if j.Name != "train" || j.Description != "fit the model" || j.Extra == nil || j.Depth != 3 || j.Type != "command" {
		t.Errorf("inline fields = %+v", j)
	}
	if j.Secret != "" {
		t.Errorf("field tagged - must not be decoded, got %q", j.Secret)
	}
	wantInputs := map[string]any{
		"alpha": 0.1, "epochs": 10,
		"data":  map[string]any{"path": "./data", "mode": "ro_mount"},
		"flags": []any{true, "off"},
	}
	if !reflect.DeepEqual(j.Inputs, wantInputs) {
		t.Errorf("inputs = %#v\nwant     %#v", j.Inputs, wantInputs)
	}
	if j.Payload != "hello" {
		t.Errorf("payload = %#v", j.Payload)
	}

	err := Decode(mustParse(t, "nmae: x\n"), &j)
	if err == nil || !strings.Contains(err.Error(), "(allowed: name, description, depth, type, inputs, payload)") {
		t.Errorf("allowed list should include inlined fields and omit '-' fields: %v", err)
	}

	var l Labeled
	if err := Decode(mustParse(t, "type: x\nteam: ml\ncost: 5\n"), &l); err != nil {
		t.Fatal(err)
	}
	if l.Type != "x" || !reflect.DeepEqual(l.Other, map[string]string{"team": "ml", "cost": "5"}) {
		t.Errorf("inline map = %+v", l)
	}
}

// Compute accepts either "azureml:name" or a mapping, like Azure ML's
// compute field in some schemas.
type Compute struct {
	Name string
	Size string
}

// UnmarshalYAMLNode accepts both spellings and decodes the mapping strictly.
func (c *Compute) UnmarshalYAMLNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		name, ok := strings.CutPrefix(n.Value, "azureml:")
		if !ok {
			return &Error{Msg: "compute reference must start with azureml:"}
		}
		c.Name = name
		return nil
	}
	var full struct {
		Name string `yaml:"name"`
		Size string `yaml:"size"`
	}
	if err := DecodeNode(nil, n, "", &full); err != nil {
		return err
	}
	c.Name, c.Size = full.Name, full.Size
	return nil
}

func TestDecodeHook(t *testing.T) {
	type Spec struct {
		Compute Compute   `yaml:"compute"`
		Others  []Compute `yaml:"others"`
	}
	var s Spec
	doc := mustParse(t, "compute: azureml:cpu-cluster\nothers:\n  - name: gpu\n    size: NC6\n")
	if err := Decode(doc, &s); err != nil {
		t.Fatal(err)
	}
	if s.Compute.Name != "cpu-cluster" || len(s.Others) != 1 || s.Others[0] != (Compute{"gpu", "NC6"}) {
		t.Errorf("decoded %+v", s)
	}

	err := Decode(mustParse(t, "compute: cpu\nothers:\n  - name: gpu\n    sise: NC6\n"), &s)
	got := AsList(err)
	want := []string{
		"job.yml:1:10: field compute: compute reference must start with azureml:",
		`job.yml:4:5: field others[0].sise: unknown field "sise" (allowed: name, size); did you mean "size"?`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", err)
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("error %d = %q, want %q", i, got[i].Error(), want[i])
		}
	}
}

func TestDecodeAfterSet(t *testing.T) {
	doc := mustParse(t, "name: blue\ninstance_count: 1\n")
	for _, e := range []string{"instance_count=3", "endpoint_name=0659"} {
		if err := doc.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	var d Deployment
	if err := Decode(doc, &d); err != nil {
		t.Fatal(err)
	}
	if d.InstanceCount != 3 || d.EndpointName != "0659" {
		t.Errorf("decoded %+v", d)
	}

	if err := doc.Set("instance_count=lots"); err != nil {
		t.Fatal(err)
	}
	err := Decode(doc, &d)
	want := `job.yml: field instance_count: expected integer, got "lots" (from --set instance_count=lots)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestNodeError(t *testing.T) {
	doc := mustParse(t, "scale:\n  min_instances: 5\n  max_instances: 2\n")
	var s struct {
		Scale struct {
			Min int `yaml:"min_instances"`
			Max int `yaml:"max_instances"`
		} `yaml:"scale"`
	}
	if err := Decode(doc, &s); err != nil {
		t.Fatal(err)
	}
	e := NodeError(doc, doc.Node("scale.min_instances"), "scale.min_instances",
		"min_instances %d is greater than max_instances %d", s.Scale.Min, s.Scale.Max)
	want := "job.yml:2:18: field scale.min_instances: min_instances 5 is greater than max_instances 2"
	if e.Error() != want {
		t.Errorf("NodeError = %q, want %q", e.Error(), want)
	}
	if got := NodeError(nil, nil, "", "plain").Error(); got != "plain" {
		t.Errorf("NodeError without position = %q", got)
	}
}

func TestDecodeBadTarget(t *testing.T) {
	doc := mustParse(t, "a: 1\n")
	var m map[string]int
	if err := Decode(doc, m); err == nil {
		t.Error("non-pointer target must be an error")
	}
	if err := Decode(doc, (*map[string]int)(nil)); err == nil {
		t.Error("nil pointer target must be an error")
	}
	if err := Decode(nil, &m); err == nil {
		t.Error("nil document must be an error")
	}
}

func TestDecodeAliasBomb(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		src += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	var v map[string]any
	err := Decode(mustParse(t, src), &v)
	if err == nil || !strings.Contains(err.Error(), "too many aliases") {
		t.Errorf("expected the alias budget to trip, got %v", err)
	}
}

func TestMergeChainIsCheap(t *testing.T) {
	var b strings.Builder
	b.WriteString("l0: &l0 {k: v}\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "l%d: &l%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]}\n")
	}
	doc := mustParse(t, b.String())
	if got := doc.String("l30.k"); got != "v" {
		t.Errorf("l30.k = %q, want v", got)
	}
}
