package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/governor-dev/governor/governor/control"
)

var explainHelp = help{name: "explain", usage: "governor explain [--socket PATH] [--json] CGROUP",
	about: `Why the daemon does what it does to one cgroup (a path relative to the
cgroup root, e.g. system.slice/web.service): its class, the knobs it holds
(now and originally), every controller that targets or reads it with its
conditions' current values, and what each would do next.`}

// explainCmd: governor explain CGROUP — the cgroup's class, what targets or
// reads it, its conditions' current values and what would happen next.
func explainCmd(args []string, stdout, stderr io.Writer) int {
	c, rest, code, ok := parseClient(explainHelp, args, stdout, stderr, 1)
	if !ok {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(stderr, "Usage: %s\n(CGROUP is a path relative to the cgroup root, e.g. system.slice/web.service)\n", explainHelp.usage)
		return 2
	}
	ctx, cancel := requestCtx()
	defer cancel()
	cg := strings.Trim(rest[0], "/")
	lines, err := control.Client{Path: c.socket}.Explain(ctx, cg)
	if err != nil {
		clientError(stderr, "explain", c.socket, err)
		return 1
	}
	if c.json {
		printJSON(stdout, lines)
		return 0
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, termSafe(l))
	}
	return 0
}
