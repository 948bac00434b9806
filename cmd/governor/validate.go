package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/governor-dev/governor/cgroup"
	sdact "github.com/governor-dev/governor/cgroup/systemd"
	"github.com/governor-dev/governor/governor"
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

var validateHelp = help{name: "validate", usage: "governor validate [--strict-perms] [--host] FILE_OR_DIR...",
	about: `Check policy files (a directory: its *.hcl files) as run would load them.
Prints one file:line:column: error: ... line per problem, then the source
with the range marked; exit status 1 on any error, 0 and a summary if none.
With --host, also which controllers and knobs this host cannot carry out
and why; exit status 3 when a whole controller could not act.`}

// validateCmd checks policy files and prints hcl diagnostics with file,
// line, column and the offending source. Exit 1 on any error.
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	strict := fs.Bool("strict-perms", false, "also refuse files not owned by root or writable by group/others, as governor run does")
	host := fs.Bool("host", false, "also say which parts of the policy this host cannot carry out (exit 3 when a whole controller cannot act)")
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
	if *host {
		return validateHost(p, stdout, stderr)
	}
	return 0
}

// validateHost probes this host's cgroup2 hierarchy (and systemd, which
// enables cpu and io for unit properties) and prints, per controller, the
// knobs it cannot use; exit 3 when some controller cannot act at all.
func validateHost(p *governor.Policy, stdout, stderr io.Writer) int {
	root, err := cgroup.FindMount()
	if err != nil {
		fmt.Fprintf(stderr, "governor: no cgroup v2 hierarchy: %v\n", err)
		return 3
	}
	caps, err := cgroup.Probe(root)
	if err != nil {
		fmt.Fprintf(stderr, "governor: %v\n", err)
		return 3
	}
	rc := reportPlan(governor.Plan(p, caps, sdact.NewDefault(root, nil)), root, stdout)
	if len(p.Reclaim) > 0 && caps.Reclaim {
		swaps, err := os.ReadFile(cgroup.DefaultProcSwaps)
		if err != nil {
			fmt.Fprintf(stderr, "governor: %v (counted as no swap)\n", err)
		}
		zswap, _ := os.ReadFile(cgroup.DefaultZswapEnabled)
		reportReclaimSwap(p, swaps, strings.TrimSpace(string(zswap)) == "Y", stdout)
	}
	return rc
}

// reportReclaimSwap says what the reclaim controllers can take on this
// host's swap (/proc/swaps, and whether zswap is on): without swap only
// page cache; with zram or zswap anonymous memory too; with a disk or a
// swap file page cache first, where the kernel takes memory.reclaim's
// swappiness= (probed at the first write). A cgroup whose memory.swap.max
// forbids swap is told apart at run time, when its reclaim backs off.
func reportReclaimSwap(p *governor.Policy, procSwaps []byte, zswap bool, w io.Writer) {
	total, free, err := cgroup.ParseSwaps(procSwaps)
	if err != nil {
		total, free = 0, 0
	}
	var what string
	switch cgroup.ClassifySwaps(procSwaps, zswap) {
	case cgroup.SwapNone:
		what = "no swap: only page cache can be reclaimed; anonymous memory stays, and reclaim backs off (one line, no writes) while nothing else is left, until swap is added or page cache grows"
	case cgroup.SwapFast:
		what = fmt.Sprintf("fast swap (zram or zswap, %s of %s free): page cache and anonymous memory, as the kernel balances them", governor.FormatBytes(free), governor.FormatBytes(total))
	default:
		what = fmt.Sprintf("slow swap (a disk or a swap file, zswap off; %s of %s free): page cache first (memory.reclaim swappiness=0, Linux 6.11+, probed at the first write; older kernels balance as usual, with one warning)", governor.FormatBytes(free), governor.FormatBytes(total))
	}
	for _, r := range p.Reclaim {
		fmt.Fprintf(w, "host: reclaim %q: %s\n", r.Name, what)
	}
}

func reportPlan(plan []governor.Feasibility, root string, w io.Writer) int {
	rc := 0
	for _, f := range plan {
		switch {
		case f.Whole != "":
			rc = 3
			fmt.Fprintf(w, "host: %s %q cannot act here (observes only): %s\n", f.Kind, f.Controller, f.Whole)
		case len(f.Off) > 0:
			fmt.Fprintf(w, "host: %s %q acts without %s:\n", f.Kind, f.Controller, f.OffNames())
			for _, o := range f.Off {
				fmt.Fprintf(w, "host:   %s: %s\n", o.Knob, o.Why)
			}
		}
		for _, v := range f.Via {
			fmt.Fprintf(w, "host: %s %q: %s needs the %s controller, not enabled yet; systemd enables it for the units it is set on\n", f.Kind, f.Controller, v.Knob, v.Why)
		}
	}
	if rc == 0 {
		fmt.Fprintf(w, "host: every controller can act on the hierarchy at %s\n", root)
	}
	return rc
}
