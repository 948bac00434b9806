// Command governor is the adaptive resource governor: a daemon that watches
// cgroup v2 pressure and adjusts cgroup limits according to HCL policies.
//
//	governor run [flags]         run the daemon in the foreground
//	governor validate FILE...    check policy files
//	governor status | top        the running daemon's governed cgroups
//	governor explain CGROUP      why the daemon does what it does to a cgroup
//	governor admission           the node's verdict for batch schedulers
//	governor version             print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `governor: adaptive resource governor for cgroup v2

Usage:
  governor run [--config PATH]... [--dry-run] [--log-level LEVEL] [--log-json] [--state-dir DIR] [...]
                                      the daemon, in the foreground
  governor validate [--strict-perms] FILE_OR_DIR...
                                      check policy files
  governor status [--socket PATH] [--json] [-n N]
                                      governed cgroups: pressure, limits now and originally, last action
  governor top [--socket PATH] [--interval DURATION] [-n N]
                                      the same, redrawn every second, as many rows as fit (q quits)
  governor explain [--socket PATH] [--json] CGROUP
                                      why the daemon does what it does to one cgroup
  governor admission [--socket PATH] [--json]
                                      accepting batch work? exit 0 yes, 1 no, 2 unknown
  governor replay --config POLICY [--from T] [--to T] [--compare POLICY2] [--json] RECORDING
                                      the actions a policy takes over a flight recording
  governor report [--cgroup PATTERN]... [--from T] [--to T] -o FILE RECORDING
                                      an HTML report of a flight recording: pressure, latency, knobs, actions
  governor export --openmetrics RECORDING
                                      a flight recording as OpenMetrics (promtool tsdb create-blocks-from openmetrics)
  governor version

--socket defaults to /run/governor/control.sock; a daemon run with
--state-dir DIR listens on DIR/control.sock. Flags may follow arguments.
Run "governor COMMAND --help" (or -h) for a command's flags.
`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "top":
		return topCmd(args[1:], stdout, stderr)
	case "explain":
		return explainCmd(args[1:], stdout, stderr)
	case "admission":
		return admissionCmd(args[1:], stdout, stderr)
	case "replay":
		return replayCmd(args[1:], stdout, stderr)
	case "report":
		return reportCmd(args[1:], stdout, stderr)
	case "export":
		return exportCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "governor %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			return dispatch([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "governor: unknown command %q\n\n%s", args[0], usage)
	return 2
}
