package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/governor-dev/governor/governor/control"
)

// explainCmd: governor explain CGROUP — the cgroup's class, what targets or
// reads it, its conditions' current values and what would happen next.
func explainCmd(args []string, stdout, stderr io.Writer) int {
	c, rest, ok := parseClient("explain", args, stderr, 1)
	if !ok {
		return 2
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: governor explain [--socket PATH] [--json] CGROUP   (a path relative to the cgroup root, e.g. system.slice/web.service)")
		return 2
	}
	ctx, cancel := requestCtx()
	defer cancel()
	cg := strings.Trim(rest[0], "/")
	lines, err := control.Client{Path: c.socket}.Explain(ctx, cg)
	if err != nil {
		fmt.Fprintf(stderr, "governor explain: %v\n", err)
		return 1
	}
	if c.json {
		printJSON(stdout, lines)
		return 0
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}
