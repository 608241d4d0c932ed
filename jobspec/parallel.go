package jobspec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParallelSpec is what makes a component or step an Azure ML parallel job
// (type: parallel): its entry script's run(mini_batch) over the
// mini-batches of one input. Its component's Command is Wharf's own
// program for it (`wharf parallel-run`), made by ParallelCommand, and its
// Code and Environment are the task's.
type ParallelSpec struct {
	// InputData names the input split into mini-batches (input_data).
	InputData string
	// MiniBatchSize is mini_batch_size as written: a number of files, or
	// a size with a unit for mini-batches of rows (ParseMiniBatchSize).
	MiniBatchSize string
	// MaxConcurrencyPerInstance is how many workers run on each instance;
	// 0 is the machine's cores, Azure's default on CPU compute.
	MaxConcurrencyPerInstance int
	// MiniBatchErrorThreshold and ErrorThreshold are how many failed
	// mini-batches and failed items end the job; -1 never.
	MiniBatchErrorThreshold int
	ErrorThreshold          int
	// LoggingLevel is INFO, WARNING or DEBUG.
	LoggingLevel string
	// MaxRetries and TimeoutSeconds are retry_settings, per mini-batch.
	MaxRetries     int
	TimeoutSeconds int
	// EntryScript is task.entry_script, in the task's code folder.
	EntryScript string
	// ProgramArguments is task.program_arguments, with ${{inputs.x}}
	// placeholders still in it.
	ProgramArguments string
	// AppendRowTo names the output run()'s rows are appended to
	// (task.append_row_to); "" keeps them nowhere.
	AppendRowTo string
}

// newParallel is a parallel job's settings before any are read: Azure
// ML's defaults.
func newParallel() *ParallelSpec {
	return &ParallelSpec{MiniBatchSize: "1", MiniBatchErrorThreshold: -1, ErrorThreshold: -1, LoggingLevel: "INFO",
		MaxRetries: 2, TimeoutSeconds: 60}
}

// ParallelCommand is the command a parallel job step runs on instances
// instances: `wharf parallel-run` with the job's settings, its program
// arguments after --.
func (p *ParallelSpec) ParallelCommand(instances int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `"$WHARF" parallel-run --input ${{inputs.%s}} --entry-script %s --mini-batch-size %s`,
		p.InputData, shellQuote(p.EntryScript), shellQuote(p.MiniBatchSize))
	fmt.Fprintf(&b, " --instances %d --max-concurrency %d --max-retries %d --timeout %d", max(instances, 1),
		p.MaxConcurrencyPerInstance, p.MaxRetries, p.TimeoutSeconds)
	fmt.Fprintf(&b, " --mini-batch-error-threshold %d --error-threshold %d --logging-level %s",
		p.MiniBatchErrorThreshold, p.ErrorThreshold, p.LoggingLevel)
	if p.AppendRowTo != "" {
		fmt.Fprintf(&b, " --append-row-to ${{outputs.%s}}", p.AppendRowTo)
	}
	b.WriteString(" --")
	if args := strings.TrimSpace(p.ProgramArguments); args != "" {
		b.WriteString(" " + args)
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// rawParallel are the keys a parallel component or step adds to a
// command one's.
type rawParallel struct {
	InputData                 *yaml.Node `yaml:"input_data"`
	MiniBatchSize             *yaml.Node `yaml:"mini_batch_size"`
	PartitionKeys             *yaml.Node `yaml:"partition_keys"`
	MaxConcurrencyPerInstance *yaml.Node `yaml:"max_concurrency_per_instance"`
	MiniBatchErrorThreshold   *yaml.Node `yaml:"mini_batch_error_threshold"`
	ErrorThreshold            *yaml.Node `yaml:"error_threshold"`
	LoggingLevel              *yaml.Node `yaml:"logging_level"`
	Task                      *yaml.Node `yaml:"task"`
}

// rawParallelComponent is a parallel component (parallelComponent.schema.json).
type rawParallelComponent struct {
	rawComponent  `yaml:",inline"`
	rawParallel   `yaml:",inline"`
	RetrySettings *rawRetry `yaml:"retry_settings"`
}

// rawParallelStep is a parallel step of a pipeline.
type rawParallelStep struct {
	rawCommandJob `yaml:",inline"`
	rawParallel   `yaml:",inline"`
}

type rawTask struct {
	Type             string     `yaml:"type"`
	Code             *yaml.Node `yaml:"code"`
	EntryScript      *yaml.Node `yaml:"entry_script"`
	Environment      *yaml.Node `yaml:"environment"`
	ProgramArguments *yaml.Node `yaml:"program_arguments"`
	AppendRowTo      *yaml.Node `yaml:"append_row_to"`
}

// isParallel reports whether mapping n says type: parallel.
func isParallel(n *yaml.Node) bool {
	t := deref(valueOf(n, "type"))
	return t != deref(n) && t.Kind == yaml.ScalarNode && t.Value == "parallel"
}

// notInParallel refuses the command keys a parallel component or step
// does not have: what runs is the task's.
func (s scope) notInParallel(n *yaml.Node, field string, command, code, environment, distribution *yaml.Node) {
	if command != nil && !isNull(command) {
		s.fail(command, join(field, "command"), "a parallel job has no command: task.entry_script runs, with task.program_arguments")
	}
	for _, k := range []struct {
		key string
		v   *yaml.Node
	}{{"code", code}, {"environment", environment}} {
		if k.v != nil && !isNull(k.v) {
			s.fail(k.v, join(field, k.key), "a parallel job's %s goes under task (task.%s)", k.key, k.key)
		}
	}
	if distribution != nil && !isNull(distribution) {
		s.fail(distribution, join(field, "distribution"), "distribution does not apply to a parallel job; resources.instance_count and max_concurrency_per_instance set its workers")
	}
}

var (
	inputExprRe  = regexp.MustCompile(`^\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)
	outputExprRe = regexp.MustCompile(`^\$\{\{\s*outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)
)

// parallelSettings reads the parallel keys of a component or step into p
// (over what a component already set), and the task's code and
// environment into c. full is set for a definition (a component, or an
// inline step), which needs input_data and a task; a step using a
// component may only override its settings.
func (s scope) parallelSettings(n *yaml.Node, field string, raw *rawParallel, retry *rawRetry, c *ComponentSpec, r Resolver, full bool) {
	if c.Parallel == nil {
		c.Parallel = newParallel()
	}
	p := c.Parallel
	if raw.PartitionKeys != nil && !isNull(raw.PartitionKeys) {
		s.fail(raw.PartitionKeys, join(field, "partition_keys"), "partition_keys is not supported; split the input with mini_batch_size")
	}
	if v := deref(raw.InputData); v != nil && !isNull(v) {
		m := inputExprRe.FindStringSubmatch(strings.TrimSpace(v.Value))
		if v.Kind != yaml.ScalarNode || m == nil {
			s.fail(v, join(field, "input_data"), "input_data must be ${{inputs.<name>}}, naming the input split into mini-batches")
		} else {
			p.InputData = m[1]
		}
	} else if full {
		s.fail(n, join(field, "input_data"), "input_data is required: ${{inputs.<name>}}, the input split into mini-batches")
	}
	if v := deref(raw.MiniBatchSize); v != nil && !isNull(v) {
		if _, _, err := ParseMiniBatchSize(v.Value); v.Kind != yaml.ScalarNode || err != nil {
			if err == nil {
				err = fmt.Errorf("mini_batch_size must be a number of files or a size such as 10kb")
			}
			s.fail(v, join(field, "mini_batch_size"), "%v", err)
		} else {
			p.MiniBatchSize = strings.TrimSpace(v.Value)
		}
	}
	s.intSetting(raw.MaxConcurrencyPerInstance, join(field, "max_concurrency_per_instance"), 1, &p.MaxConcurrencyPerInstance)
	s.intSetting(raw.MiniBatchErrorThreshold, join(field, "mini_batch_error_threshold"), -1, &p.MiniBatchErrorThreshold)
	s.intSetting(raw.ErrorThreshold, join(field, "error_threshold"), -1, &p.ErrorThreshold)
	if v := deref(raw.LoggingLevel); v != nil && !isNull(v) {
		switch lvl := strings.ToUpper(strings.TrimSpace(v.Value)); lvl {
		case "DEBUG", "INFO", "WARNING":
			p.LoggingLevel = lvl
		default:
			s.fail(v, join(field, "logging_level"), "logging_level must be DEBUG, INFO or WARNING, got %q", v.Value)
		}
	}
	if retry != nil {
		rn := valueOf(n, "retry_settings")
		if retry.MaxRetries != nil {
			if *retry.MaxRetries < 0 {
				s.fail(valueOf(rn, "max_retries"), join(field, "retry_settings.max_retries"), "max_retries must be 0 or more, got %d", *retry.MaxRetries)
			} else {
				p.MaxRetries = *retry.MaxRetries
			}
		}
		if retry.Timeout != nil {
			if *retry.Timeout < time.Second {
				s.fail(valueOf(rn, "timeout"), join(field, "retry_settings.timeout"), "timeout must be a positive number of seconds")
			} else {
				p.TimeoutSeconds = int(retry.Timeout.Seconds())
			}
		}
	}
	tn := deref(raw.Task)
	if tn == nil || isNull(tn) {
		if full {
			s.fail(n, join(field, "task"), "task is required: {type: run_function, code, entry_script, environment}")
		}
		return
	}
	tf := join(field, "task")
	if !full {
		s.fail(tn, tf, "task is the component's; a step using a component cannot replace it")
		return
	}
	var task rawTask
	if tn.Kind != yaml.MappingNode || !s.decode(tn, tf, &task) {
		if tn.Kind != yaml.MappingNode {
			s.fail(tn, tf, "task must be a mapping: {type: run_function, code, entry_script, environment}")
		}
		return
	}
	if task.Type != "" && task.Type != "run_function" {
		s.fail(valueOf(tn, "type"), join(tf, "type"), "task type %q is not supported (run_function only)", task.Type)
	}
	if task.Code != nil {
		c.Code, c.CodeRef, c.CodeURI = s.code(task.Code, join(tf, "code"), r)
	}
	if task.Environment != nil && !isNull(task.Environment) {
		c.Environment = s.environmentField(task.Environment, join(tf, "environment"), r)
	} else {
		s.fail(tn, join(tf, "environment"), "task.environment is required")
	}
	if v := deref(task.EntryScript); v != nil && v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) != "" && !isNull(v) {
		p.EntryScript = strings.TrimSpace(v.Value)
	} else {
		s.fail(tn, join(tf, "entry_script"), "task.entry_script is required: the script in task.code with init() and run(mini_batch)")
	}
	if v := deref(task.ProgramArguments); v != nil && !isNull(v) {
		if v.Kind != yaml.ScalarNode {
			s.fail(v, join(tf, "program_arguments"), "program_arguments must be a string")
		} else {
			p.ProgramArguments = v.Value
		}
	}
	if v := deref(task.AppendRowTo); v != nil && !isNull(v) {
		m := outputExprRe.FindStringSubmatch(strings.TrimSpace(v.Value))
		if v.Kind != yaml.ScalarNode || m == nil {
			s.fail(v, join(tf, "append_row_to"), "append_row_to must be ${{outputs.<name>}}, naming the output the rows go to")
		} else {
			p.AppendRowTo = m[1]
		}
	}
}

// intSetting reads an integer setting of at least least into *dst.
func (s scope) intSetting(n *yaml.Node, field string, least int, dst *int) {
	n = deref(n)
	if n == nil || isNull(n) {
		return
	}
	v, err := strconv.Atoi(strings.TrimSpace(n.Value))
	switch {
	case n.Kind != yaml.ScalarNode || err != nil:
		s.fail(n, field, "%s must be a whole number, got %q", field[strings.LastIndex(field, ".")+1:], n.Value)
	case v < least:
		s.fail(n, field, "%s must be %d or more, got %d", field[strings.LastIndex(field, ".")+1:], least, v)
	default:
		*dst = v
	}
}

// checkParallel checks that a parallel job's settings name its own ports,
// and sets the component's command. taskNode and inNode position the
// problems.
func (s scope) checkParallel(n *yaml.Node, field string, c *ComponentSpec) {
	p := c.Parallel
	if p.InputData != "" {
		if _, ok := c.Inputs[p.InputData]; !ok {
			s.fail(valueOf(n, "input_data"), join(field, "input_data"), "input_data names input %q, which is not declared (inputs: %s)",
				p.InputData, listOrNone(sortedKeys(c.Inputs)))
		} else if t := c.Inputs[p.InputData].Type; t != "" && !IsDataType(t) {
			s.fail(valueOf(n, "input_data"), join(field, "input_data"), "input_data names %s input %q; it must be a uri_folder, uri_file or mltable input", t, p.InputData)
		}
	}
	task := valueOf(n, "task")
	if p.AppendRowTo != "" {
		if _, ok := c.Outputs[p.AppendRowTo]; !ok {
			s.fail(valueOf(task, "append_row_to"), join(field, "task.append_row_to"), "append_row_to names output %q, which is not declared (outputs: %s)",
				p.AppendRowTo, listOrNone(sortedKeys(c.Outputs)))
		}
	}
	for _, msg := range checkCommand(p.ProgramArguments, c.Inputs, c.Outputs) {
		s.fail(valueOf(task, "program_arguments"), join(field, "task.program_arguments"), "%s", strings.Replace(msg, "command uses", "program_arguments uses", 1))
	}
	c.Command = p.ParallelCommand(c.Resources.InstanceCount)
}

// checkParallelInput refuses, once a step's inputs are bound, an
// input_data bound to a literal value.
func (b *stepBuild) checkParallelInput(s scope) {
	p := b.step.Component.Parallel
	if p == nil || p.InputData == "" {
		return
	}
	if bind, ok := b.step.Inputs[p.InputData]; ok && bind.Literal != nil {
		s.fail(valueOf(b.node, "input_data"), join(b.field, "input_data"),
			"input_data names input %q, which is bound to a literal value; it must be data (uri_folder, uri_file or mltable)", p.InputData)
	}
}
