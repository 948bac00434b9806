package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// help describes a subcommand for its -h/--help: the usage line(s) and a
// short description; the flags are listed from its FlagSet.
type help struct {
	name  string // "status"
	usage string // "governor status [--socket PATH] [--json] [-n N]"
	about string // what it does, a few lines
}

// parseFlags parses a subcommand's flags, which may come before, between
// or after its arguments ("validate DIR --strict-perms"); "--" ends the
// flags. -h, -help and --help print the help on stdout (exit status 0);
// a bad flag prints the error and a hint on stderr (exit status 2). ok is
// false when the command must return code.
func parseFlags(fs *flag.FlagSet, h help, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // errors only; help goes to stdout below
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			writeHelp(stdout, fs, h)
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprintf(stderr, "Run 'governor %s --help' for usage.\n", h.name)
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// writeHelp prints a subcommand's usage, description and flags, the flags
// spelled with two dashes as the README does (Go's flag package accepts
// one or two).
func writeHelp(w io.Writer, fs *flag.FlagSet, h help) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", h.usage, strings.TrimRight(h.about, "\n"))
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		arg, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "[]" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "      %s\n", usage)
	})
}

var runHelp = help{name: "run", usage: "governor run [--config PATH]... [--dry-run] [--log-level LEVEL] [--log-json] [flags]",
	about: `Run the daemon in the foreground: watch cgroup v2 pressure and change
cgroup limits as the policy says. SIGTERM or SIGINT restores every changed
knob and stops; SIGHUP re-reads the policy files; SIGUSR1 / SIGUSR2 make
the log more / less verbose.`}
