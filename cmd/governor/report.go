package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/governor-dev/governor/governor/record"
)

var reportHelp = help{name: "report", usage: "governor report [--cgroup PATTERN]... [--from T] [--to T] -o FILE RECORDING",
	about: `Write one self-contained HTML file (inline SVG; no network needed to view
it) about a flight recording: for the chosen cgroups (default: those acted
on, most actions first, and the host; at most 8) their pressure, run-queue
latency and knob values over time, every action marked with its reason on
hover, and a summary table. PATTERN is a policy match pattern
("batch.slice/**"); T is RFC 3339.`}

func reportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	var cgs stringList
	fs.Var(&cgs, "cgroup", "chart the cgroups matching `PATTERN` (repeatable)")
	out := fs.String("o", "", "write the report to `FILE`")
	from := fs.String("from", "", "from `TIME` (RFC 3339)")
	to := fs.String("to", "", "up to `TIME` (RFC 3339)")
	pos, code, ok := parseFlags(fs, reportHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || *out == "" {
		fmt.Fprintf(stderr, "governor report: want -o FILE and one RECORDING\nRun 'governor report --help' for usage.\n")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "governor report: %v\n", err); return 1 }
	opt := record.ReportOptions{Cgroups: cgs, Title: "governor: " + pos[0]}
	var err error
	if opt.From, err = parseTime(*from); err != nil {
		return fail(err)
	}
	if opt.To, err = parseTime(*to); err != nil {
		return fail(err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return fail(err)
	}
	bw := bufio.NewWriter(f)
	warnings, err := record.WriteReport(bw, pos[0], opt)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "governor report: warning: %s\n", w)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return fail(err)
	}
	return 0
}
