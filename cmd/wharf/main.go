// Command wharf is Wharf's single binary: the server, and a CLI that accepts
// the `az ml` command tree so CI scripts written for `az` run with only the
// executable name swapped.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
)

// Exit codes follow the Azure CLI: 1 for errors, 2 for usage errors, 3 for a
// missing resource.
const (
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code; tests call it
// directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	root := app.rootCommand()
	root.SetArgs(expandMultiValueFlags(args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(stdin)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue *usageError
	var status exitStatus
	switch {
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ERROR: %s\n", ue.msg)
		return exitUsage
	case isCobraUsage(err):
		fmt.Fprintf(stderr, "ERROR: %s\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "ERROR: %s\n", userMessage(err))
	if wharf.ErrorCode(err) == wharf.ENOTFOUND {
		return exitNotFound
	}
	return exitError
}

// userMessage prints wharf errors as az prints service errors, and anything
// else as its text; a stack trace never reaches the user.
func userMessage(err error) string {
	var e *wharf.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// exitStatus is the exit status of a process a command ran for its
// caller, passed on as the command's own, with nothing printed.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command-line mistake (missing flag, bad combination).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "if any flags in the group"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// app holds what every command shares: streams, output options and the
// lazily built API client.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	output         string
	query          string
	cfg            *cliConfig
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Wharf: a self-hosted MLOps platform that speaks the az ml command tree",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := trustCABundle(); err != nil {
				return err
			}
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			a.cfg = cfg
			return nil
		},
	}
	b := wharf.Build()
	root.Version = b.Version
	root.SetVersionTemplate(fmt.Sprintf("wharf {{.Version}} (commit %s, built %s)\n", b.Commit, b.BuildDate))
	pf := root.PersistentFlags()
	pf.StringVarP(&a.output, "output", "o", "json", "output format: json, jsonc, yaml, table, tsv, none")
	pf.StringVar(&a.query, "query", "", "JMESPath query applied to the output")
	// Accepted for compatibility with az scripts; they change nothing here.
	pf.Bool("only-show-errors", false, "accepted for az compatibility")
	pf.Bool("verbose", false, "accepted for az compatibility")
	pf.Bool("debug", false, "accepted for az compatibility")
	pf.String("subscription", "", "accepted for az compatibility")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%s", err)
	})
	root.AddCommand(
		a.serverCommand(),
		a.loginCommand(),
		a.logoutCommand(),
		a.accountCommand(),
		a.configureCommand(),
		a.extensionCommand(),
		a.versionCommand(),
		a.groupCommand(),
		a.adCommand(),
		a.roleCommand(),
		a.monitorCommand(),
		a.infraCommand(),
		a.mlCommand(),
		a.prepCommand(),
		a.trainCommand(),
		a.evaluateCommand(),
		a.registerCommand(),
		a.generateCommand(),
		a.batchScoreCommand(),
		a.parallelRunCommand(),
		a.envCommand(),
		a.quickstartCommand(),
		a.sandboxCommand(),
	)
	guardGroups(root)
	return root
}

// guardGroups makes every command that only groups others reject unknown
// subcommands with a usage error. Cobra would print help and exit 0, and a
// CI script calling a verb Wharf lacks would then pass silently.
func guardGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		guardGroups(sub)
	}
	if c.Run != nil || c.RunE != nil || c == c.Root() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("%q is not a command of %q; see `%s --help`", args[0], cmd.CommandPath(), cmd.CommandPath())
		}
		if !cmd.HasSubCommands() {
			return usagef("%q has no verbs in this version of wharf", cmd.CommandPath())
		}
		return cmd.Help()
	}
}
