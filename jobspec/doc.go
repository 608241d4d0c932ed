// Package jobspec reads Azure ML CLI v2 YAML files (data assets,
// environments, command components, command and pipeline jobs, schedules)
// and turns them into validated, fully resolved values a scheduler can run
// without looking at YAML again.
//
// Everything that can be checked before a job starts is checked here: unknown
// keys, bad references, type mismatches between bindings and inputs, missing
// required inputs and dependency cycles. Every problem is a *yamlfile.Error
// (or a *yamlfile.ErrorList of them) naming file, line, column and dotted
// field, because users edit these files by hand and must be able to find the
// mistake.
package jobspec
