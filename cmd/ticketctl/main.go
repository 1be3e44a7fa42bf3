// Command ticketctl is the command-line client of ticketd.
//
// Ticket and reference-data commands talk to a running ticketd over its HTTP API.
// Operator commands work on an event store directly: rebuild replays it into fresh
// projections and times it, verify checks every stream's hash chain, and scenario
// run plays acceptance scenario files on throw-away embedded stores.
//
// The embedded JetStream store in a data folder can be opened by one process at a
// time, so rebuild --data and verify --data are for a stopped ticketd (ticketd itself
// rebuilds its in-memory projections at each start). To look at the store of a
// running ticketd, pass --nats-url with the embedded server's URL that ticketd logs
// at start ("nats_url").
//
// Exit codes: 0 success, 1 failure (an API error, an unreachable server, a scenario
// mismatch, a broken hash chain), 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const defaultServer = "http://127.0.0.1:8080"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is one invocation: the global options and where to write.
type env struct {
	server  string
	actor   string
	token   string
	output  string // "", "json" or "table"; "" is each command's default
	idemKey string
	timeout time.Duration

	stdout, stderr io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of its arguments
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commandList []command

func init() {
	commandList = []command{
		{"create", "--subject S --raised-by EMAIL [--description D] [--priority P] [--type T] [--customer C] [--company C] [--project P] [--channel CH] ...", "open a ticket", cmdCreate},
		{"reply", "ID --body B [--to A,B] [--cc A,B] [--subject S]", "send an agent reply", cmdReply},
		{"message", "ID --body B [--from EMAIL] [--channel email|portal] [--subject S]", "record a customer message", cmdMessage},
		{"comment", "ID --body B", "add an internal comment", cmdComment},
		{"hold", "ID [--reason R]", "put a ticket on hold", cmdHold},
		{"resolve", "ID [--details D]", "resolve a ticket", cmdResolve},
		{"close", "ID [--reason R]", "close a ticket", cmdClose},
		{"reopen", "ID [--reason R]", "reopen a resolved or closed ticket", cmdReopen},
		{"split", "ID --from-message MID [--subject S]", "split messages off into a new ticket", cmdSplit},
		{"priority", "ID PRIORITY", "change a ticket's priority", cmdPriority},
		{"type", "ID TYPE", "change a ticket's type (\"\" clears it)", cmdType},
		{"assign", "ID USER", "assign a ticket", cmdAssign},
		{"unassign", "ID USER", "unassign a ticket", cmdUnassign},
		{"reset-sla", "ID --reason R", "restart the ticket's service level agreement", cmdResetSLA},
		{"show", "ID [--as-of RFC3339]", "show a ticket (now, or as it stood at an instant)", cmdShow},
		{"list", "[--status S] [--priority P] [--type T] [--assignee U] [--limit N] [--all] ...", "list tickets", cmdList},
		{"events", "ID", "show a ticket's events", cmdEvents},
		{"history", "ID [--data DIR | --nats-url URL]", "a ticket's timeline: each event in words, with its status and SLA effects", cmdHistory},
		{"types", "[add NAME [--description D] | update NAME [--new-name N] [--description D] | remove NAME]", "list or change the ticket types", cmdTypes},
		{"priorities", "[add NAME [--description D] | update NAME [--new-name N] [--description D] | remove NAME]", "list or change the ticket priorities", cmdPriorities},
		{"sla", "list | save FILE.json | remove NAME", "list or change the service level agreements", cmdSLA},
		{"settings", "[--auto-close-days N] [--allow-sla-reset=true|false]", "show or change the support settings", cmdSettings},
		{"health", "", "check that ticketd answers", cmdHealth},
		{"rebuild", "--data DIR | --nats-url URL", "replay the whole event store into fresh projections and time it", cmdRebuild},
		{"verify", "--data DIR | --nats-url URL", "check the hash chain of every stream", cmdVerify},
		{"export", "--data DIR | --nats-url URL [--out FILE|-] [--resume]", "write the whole event history as JSON Lines (the stored bytes, in global order)", cmdExport},
		{"import", "--data DIR | --nats-url URL [--resume] FILE", "load an export into an empty event store", cmdImport},
		{"scenario", "run FILE...", "play acceptance scenario files on throw-away embedded stores", cmdScenario},
		{"report", "[NAME [--group-by day|week|month|priority|ticket_type|team|customer,...] [--from T] [--to T] [--format csv|json]]", "print an analysts' report (sla-compliance, breaches, first-response, resolution, backlog), or list them", cmdReport},
		{"what-if", "--sla FILE.json [--status S] [--priority P] [--ticket-type T] [--customer C] [--company C] [--project P] [--as-of RFC3339] [--all]", "replay tickets under another SLA and show what would change", cmdWhatIf},
		{"bench", "[--tickets N] [--extra N] [--dir DIR] [--seed S]", "measure commands, replay and rebuild on a generated workload against raw JetStream", cmdBench},
	}
	hiddenCommands = []command{
		{benchRebuildCommand, "STOREDIR", "the rebuild phase of bench, run by bench in a separate process", cmdBenchRebuild},
	}
}

// hiddenCommands are run by ticketctl itself and not listed in the usage.
var hiddenCommands []command

func findCommand(name string) (command, bool) {
	for _, c := range append(commandList[:len(commandList):len(commandList)], hiddenCommands...) {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// Errors that choose the exit code.
type (
	// usageError is a mistake in the command line: exit code 2.
	usageError struct{ msg string }
	// exitError ends with code after the command has printed its own report.
	exitError struct{ code int }
)

func (e *usageError) Error() string { return e.msg }
func (e *exitError) Error() string  { return fmt.Sprintf("exit %d", e.code) }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errFlagsReported is a flag error the flag package has already printed.
var errFlagsReported = &exitError{code: 2}

// run is the whole program: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{
		server:  envOr("TICKETCTL_SERVER", defaultServer),
		actor:   os.Getenv("TICKETCTL_ACTOR"),
		token:   os.Getenv("TICKETCTL_TOKEN"),
		timeout: 30 * time.Second,
		stdout:  stdout,
		stderr:  stderr,
	}
	fs := flag.NewFlagSet("ticketctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e.globalFlags(fs)
	fs.Usage = func() { printUsage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return 2
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) > 0 {
			if c, ok := findCommand(rest[0]); ok {
				fmt.Fprintf(stdout, "usage: ticketctl [global flags] %s %s\n\n%s\n", c.name, c.args, c.summary)
				return 0
			}
		}
		printUsage(stdout)
		return 0
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "error: unknown command %q\nRun 'ticketctl help' for the list of commands.\n", name)
		return 2
	}
	return exitCode(stderr, c, c.run(ctx, e, rest))
}

// exitCode prints err the way its kind asks and returns the exit code.
func exitCode(stderr io.Writer, c command, err error) int {
	var (
		ue *usageError
		xe *exitError
		ae *apiError
	)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "error: %s\nusage: ticketctl %s %s\n", ue.msg, c.name, c.args)
		return 2
	case errors.As(err, &ae):
		fmt.Fprint(stderr, ae.report())
		return 1
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: ticketctl [global flags] COMMAND [arguments] [flags]

Global flags (also accepted after the command):
  --server URL             ticketd's HTTP API (env TICKETCTL_SERVER, default `+defaultServer+`)
  --actor NAME             on whose behalf a service token acts, sent as X-Actor (env TICKETCTL_ACTOR)
  --token TOKEN            API token (env TICKETCTL_TOKEN; default: the admin.token of ./data)
  -o, --output FORMAT      json (default) or table; rebuild, verify, scenario and bench print text unless -o json
  --idempotency-key KEY    Idempotency-Key of a write (default: a fresh UUID; repeat a key to retry safely)
  --timeout DURATION       HTTP request timeout (default 30s)

Commands:
`)
	width := 0
	for _, c := range commandList {
		width = max(width, len(c.name))
	}
	for _, c := range commandList {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'ticketctl help COMMAND' for a command's arguments.

rebuild --data and verify --data open the embedded event store of a data folder
(DIR/jetstream, as ticketd lays it out), which only one process may open at a time:
use them on a stopped ticketd. ticketd rebuilds its projections at each start anyway.
For a running ticketd, pass --nats-url with the embedded server URL it logs at start.

export and import copy the whole history, byte for byte, for audits and archives
(docs/audit.md); import fills an empty store only (a new --data folder, before ticketd
first starts on it). rebuild, verify, export and import show progress on a terminal;
interrupted (Ctrl-C), export and import continue with --resume, rebuild and verify
only read and are simply run again.

bench needs no ticketd: it runs a generated support-centre workload through the real
command handlers into a fresh embedded store, measures raw JetStream on the same events
in the same run, and prints every figure with its ratio and target
(docs/performance.md). It takes minutes at the default size.

Exit codes: 0 success, 1 failure, 2 usage error.
`)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// globalFlags registers the global flags on fs, bound to e, with e's current values
// as defaults; every subcommand registers them too, so they may come anywhere.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.server, "server", e.server, "ticketd HTTP API base URL (env TICKETCTL_SERVER)")
	fs.StringVar(&e.actor, "actor", e.actor, "actor name sent as X-Actor (env TICKETCTL_ACTOR)")
	fs.StringVar(&e.token, "token", e.token, "API token (env TICKETCTL_TOKEN; default: ./data/admin.token when present)")
	fs.StringVar(&e.output, "o", e.output, "output format: json or table")
	fs.StringVar(&e.output, "output", e.output, "output format: json or table")
	fs.StringVar(&e.idemKey, "idempotency-key", e.idemKey, "Idempotency-Key of the write (default: a fresh UUID)")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "HTTP request timeout")
}

// flags returns a subcommand's flag set, with the global flags registered.
func (e *env) flags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("ticketctl "+c, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.globalFlags(fs)
	fs.Usage = func() {
		cmd, _ := findCommand(strings.Fields(c)[0])
		fmt.Fprintf(e.stderr, "usage: ticketctl %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with flags and positional arguments in any order ("reply ID
// --body B" as well as "reply --body B ID"); everything after "--" is positional. It
// checks the number of positional arguments is within [minArgs, maxArgs] (maxArgs < 0:
// no limit).
func (e *env) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errFlagsReported
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if err := e.checkOutput(); err != nil {
		return nil, err
	}
	switch {
	case len(positional) < minArgs:
		return nil, usagef("expected %d argument(s), got %d", minArgs, len(positional))
	case maxArgs >= 0 && len(positional) > maxArgs:
		return nil, usagef("unexpected argument(s): %s", strings.Join(positional[maxArgs:], " "))
	}
	return positional, nil
}

func (e *env) checkOutput() error {
	switch e.output {
	case "", "json", "table":
		return nil
	}
	return usagef("unknown output format %q: use json or table", e.output)
}

// table reports whether the table format was asked for.
func (e *env) table() bool { return e.output == "table" }
