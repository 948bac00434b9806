package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/control"
)

// clientFlags are the flags of the commands that talk to a running daemon.
type clientFlags struct {
	socket string
	json   bool
}

const socketUsage = "`PATH` of the daemon's control socket; a daemon run with --state-dir DIR listens on DIR/control.sock, or where its --control-socket says"

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.registerSocket(fs)
	fs.BoolVar(&c.json, "json", false, "print JSON (snake_case keys, durations in seconds; docs/OPERATIONS.md, \"JSON output\")")
}

func (c *clientFlags) registerSocket(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", control.DefaultPath, socketUsage)
}

// parseClient parses the flags of explain and admission; ok false means
// return code.
func parseClient(h help, args []string, stdout, stderr io.Writer, maxArgs int) (c *clientFlags, rest []string, code int, ok bool) {
	c = &clientFlags{}
	fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
	c.register(fs)
	rest, code, ok = parseFlags(fs, h, args, stdout, stderr)
	if !ok {
		return nil, nil, code, false
	}
	if len(rest) > maxArgs {
		fmt.Fprintf(stderr, "governor %s: unexpected argument %q\nUsage: %s\n", h.name, rest[maxArgs], h.usage)
		return nil, nil, 2, false
	}
	return c, rest, 0, true
}

// clientError prints a failed request; when the socket cannot be reached
// it says which one was tried and how to name another.
func clientError(w io.Writer, name, socket string, err error) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		fmt.Fprintf(w, "governor %s: cannot reach the control socket %s: %v\n", name, socket, op.Err)
		fmt.Fprintf(w, "Is the daemon running, and are you root (or in its --control-group)? A daemon started with\n"+
			"--state-dir DIR listens on DIR/control.sock, or where its --control-socket PATH says:\n"+
			"pass that with --socket PATH.\n")
		return
	}
	fmt.Fprintf(w, "governor %s: %v\n", name, err)
}

var statusHelp = help{name: "status", usage: "governor status [--socket PATH] [--json] [-n N]",
	about: `The running daemon's governed cgroups: their class, how their limits are
written (VIA), pressure (PSI some avg10 of cpu, memory and io, in percent),
run-queue latency, limits now (and originally) and the last action, then why
that action was taken. Text is for people; --json for scripts.`}

var admissionHelp = help{name: "admission", usage: "governor admission [--socket PATH] [--json]",
	about: `The node's verdict for batch schedulers and the conditions behind it.
Exit status 0: accepting batch work; 1: not accepting; 2: no answer.`}

func requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// printJSON prints v indented, with <, > and & as themselves (reasons
// read "cpu.some.avg10=23.40% > 10.00%").
func printJSON(w io.Writer, v interface{}) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// statusCmd: governor status — one table of the governed cgroups (with -n,
// the first N by what matters: knobs held changed, recent actions,
// pressure).
func statusCmd(args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	var limit int
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	c.register(fs)
	fs.IntVar(&limit, "n", 0, "list at most `N` cgroups: those whose knobs the governor holds changed, then the most recently acted on, then the highest pressure (0: every one)")
	rest, code, ok := parseFlags(fs, statusHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 || limit < 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", statusHelp.usage)
		return 2
	}
	ctx, cancel := requestCtx()
	defer cancel()
	st, err := control.Client{Path: c.socket}.StatusTop(ctx, limit)
	if err != nil {
		clientError(stderr, "status", c.socket, err)
		return 1
	}
	if c.json {
		printJSON(stdout, st)
		return 0
	}
	renderStatus(stdout, st, time.Now())
	return 0
}

// admissionCmd: governor admission — the verdict for batch schedulers;
// exit status 0 while accepting, 1 while not, 2 when it cannot tell.
func admissionCmd(args []string, stdout, stderr io.Writer) int {
	c, _, code, ok := parseClient(admissionHelp, args, stdout, stderr, 0)
	if !ok {
		return code
	}
	ctx, cancel := requestCtx()
	defer cancel()
	vd, err := control.Client{Path: c.socket}.Admission(ctx)
	if err != nil {
		clientError(stderr, "admission", c.socket, err)
		return 2
	}
	if c.json {
		printJSON(stdout, vd)
	} else {
		renderAdmission(stdout, vd, time.Now())
	}
	if vd.Accepting {
		return 0
	}
	return 1
}

func renderAdmission(w io.Writer, vd *governor.AdmissionVerdict, now time.Time) {
	word := "accepting"
	if !vd.Accepting {
		word = "NOT accepting"
	}
	fmt.Fprintf(w, "%s batch work since %s (%s ago; rule: %s)\n", word, vd.Since.Format(time.RFC3339), ago(now, vd.Since), termSafe(vd.Origin))
	fmt.Fprintf(w, "reason: %s\n", termSafe(vd.Reason))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tSIGNAL\tVALUE\tTHRESHOLD\tFOR\tHEADROOM")
	for _, c := range vd.Conditions {
		val := "-"
		if c.Present {
			val = fmtVal(c.Signal, c.Value)
		}
		mark := ""
		if c.Holding {
			mark = "  crossed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s%s\n", termSafe(c.Subject), termSafe(c.Signal), val, c.Op, fmtVal(c.Signal, c.Threshold), c.For, fmtVal(c.Signal, c.Headroom), mark)
	}
	tw.Flush()
}

// fmtVal renders a value in its signal's unit.
func fmtVal(signal string, v float64) string {
	sig, ok := governor.SignalByName(signal)
	if !ok {
		return fmt.Sprintf("%.3g", v)
	}
	switch sig.Unit() {
	case governor.UnitPercent:
		return fmt.Sprintf("%.1f%%", v)
	case governor.UnitBytes:
		return governor.FormatBytes(int64(v))
	case governor.UnitSeconds:
		return time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
	}
	return fmt.Sprintf("%.3g", v)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func pct(sig map[string]float64, name string) string {
	if v, ok := sig[name]; ok {
		return fmt.Sprintf("%.1f", v)
	}
	return "-"
}

// renderStatus prints the header, the controllers and the cgroup table.
func renderStatus(w io.Writer, st *control.Status, now time.Time) {
	renderStatusPaths(w, st, now, 0)
}

// shortenPath keeps the last max columns of an (escaped) cgroup path, the
// part that tells cgroups apart, behind a "…"; max <= 0: the whole path.
func shortenPath(p string, max int) string {
	r := []rune(p)
	if max <= 0 || len(r) <= max {
		return p
	}
	return "…" + string(r[len(r)-max+1:])
}

// renderStatusPaths is renderStatus with the CGROUP column at most
// maxPath columns wide (0: no limit).
func renderStatusPaths(w io.Writer, st *control.Status, now time.Time, maxPath int) {
	mode := ""
	if st.DryRun {
		mode = " [dry-run: nothing is written]"
	}
	governed := max(st.Governed, len(st.Cgroups)) // an older daemon does not say
	fmt.Fprintf(w, "governor at %s%s — last step %s, %d cgroups seen, %d governed\n",
		st.Time.Format("15:04:05"), mode, st.LastStep.Duration.Round(time.Microsecond), st.LastStep.Cgroups, governed)
	fmt.Fprintf(w, "host pressure some avg10: cpu %s%%  memory %s%%  io %s%%\n",
		pct(st.Host, "cpu.some.avg10"), pct(st.Host, "memory.some.avg10"), pct(st.Host, "io.some.avg10"))
	if a := st.Admission; a != nil {
		word := "accepting"
		if !a.Accepting {
			word = "NOT accepting"
		}
		fmt.Fprintf(w, "admission: %s batch work for %s — %s\n", word, ago(now, a.Since), termSafe(a.Reason))
	}
	for _, c := range st.Controllers {
		state := "no class- or host-wide trigger; per cgroup, see governor explain CGROUP"
		switch {
		case c.Disabled != "":
			state = "impossible here: " + c.Disabled
		case c.Active:
			state = "ACTIVE: " + c.Because
		case c.Because != "":
			state = "idle: " + c.Because
		}
		fmt.Fprintf(w, "%s %q → %s: %s\n", termSafe(c.Kind), c.Name, termSafe(c.Target), termSafe(state))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// The pressure columns are PSI (share of time stalled), not usage.
	fmt.Fprintln(tw, "CGROUP\tCLASS\tVIA\tCPU PSI%\tMEM PSI%\tIO PSI%\tRUNQ p99\tLIMITS now (original)\tLAST ACTION")
	var why []string
	for _, cg := range st.Cgroups {
		class := cg.Class
		if cg.Protected {
			class += "*"
		}
		runq := "-"
		if v, ok := cg.Signals["runq.p99"]; ok {
			runq = time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
		}
		var knobs []string
		for _, k := range cg.Knobs {
			if k.HandedBack {
				knobs = append(knobs, k.Knob+" handed back")
				continue
			}
			knobs = append(knobs, fmt.Sprintf("%s=%s (%s)", k.Knob, k.Value, k.Original))
		}
		sort.Strings(knobs)
		limits := strings.Join(knobs, ", ")
		if limits == "" {
			limits = "-"
		}
		last := "-"
		if a := cg.Last; a != nil {
			last = fmt.Sprintf("%s ago %s %s %s", ago(now, a.Time), a.Controller, a.Kind, a.Knob)
			if a.Old != "" || a.New != "" {
				last += fmt.Sprintf(" %s→%s", a.Old, a.New)
			}
			if a.Error != "" {
				last += " FAILED"
			}
			reason := a.Reason
			if a.Error != "" {
				reason = "error: " + a.Error
			}
			if reason != "" {
				why = append(why, fmt.Sprintf("  %s: %s", termSafe(cg.Path), termSafe(reason)))
			}
		}
		via := cg.Via
		if via == "" {
			via = "-"
		}
		// Names and values from the daemon are escaped: a cgroup's name
		// may hold any byte, terminal controls included.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortenPath(termSafe(cg.Path), maxPath), termSafe(class), termSafe(via),
			pct(cg.Signals, "cpu.some.avg10"), pct(cg.Signals, "memory.some.avg10"), pct(cg.Signals, "io.some.avg10"),
			runq, termSafe(limits), termSafe(last))
	}
	tw.Flush()
	if len(st.Cgroups) == 0 {
		fmt.Fprintln(w, "(no cgroup belongs to a class of the policy)")
	}
	if st.Omitted > 0 {
		fmt.Fprintf(w, "(%d more governed cgroups not listed: knobs held changed, recent actions and pressure come first)\n", st.Omitted)
	}
	if len(why) > 0 {
		fmt.Fprintln(w, "\nwhy (last action):")
		for _, l := range why {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w, "\n* protected class: never written. PSI%: share of time some tasks stalled (PSI some avg10), not utilisation.")
}

// statusText renders into a string (for top), the CGROUP column at most
// maxPath columns wide (0: no limit).
func statusText(st *control.Status, now time.Time, maxPath int) string {
	var b bytes.Buffer
	renderStatusPaths(&b, st, now, maxPath)
	return b.String()
}
