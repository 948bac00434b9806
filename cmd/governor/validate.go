package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/governor-dev/governor/policies"
)

// writeCompact prints one "file:line:col: severity: summary: detail" line
// per diagnostic, the form editors and CI annotations understand.
func writeCompact(w io.Writer, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		pos := "governor"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		fmt.Fprintf(w, "%s: %s: %s\n", pos, sev, msg)
	}
	fmt.Fprintln(w)
}

var validateHelp = help{name: "validate", usage: "governor validate [--strict-perms] FILE_OR_DIR...",
	about: `Check policy files (a directory: its *.hcl files) as run would load them.
Prints one file:line:column: error: ... line per problem, then the source
with the range marked; exit status 1 on any error, 0 and a summary if none.`}

// validateCmd checks policy files and prints hcl diagnostics with file,
// line, column and the offending source. Exit 1 on any error.
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	strict := fs.Bool("strict-perms", false, "also refuse files not owned by root or writable by group/others, as governor run does")
	files, code, ok := parseFlags(fs, validateHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", validateHelp.usage)
		return 2
	}
	res := policies.Load(files, policies.Options{AllowInsecure: !*strict})
	if len(res.Diags) > 0 {
		writeCompact(stderr, res.Diags)
		if err := res.WriteDiagnostics(stderr, false); err != nil {
			fmt.Fprintf(stderr, "governor: %v\n", err)
		}
	}
	if res.Diags.HasErrors() {
		return 1
	}
	p := res.Policy
	fmt.Fprintf(stdout, "ok: %d classes, %d rules, %d reclaim, %d memory_high, %d suppress, %d protect, %d last_resort\n",
		len(p.Classes), len(p.Rules), len(p.Reclaim), len(p.MemHigh), len(p.Suppress), len(p.Protect), len(p.LastResort))
	return 0
}
