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
  governor run [--config PATH]... [--dry-run] [--log-level LEVEL] [--log-json] [--state-dir DIR]
  governor validate [--strict-perms] FILE_OR_DIR...
  governor status [--json]          governed cgroups: pressure, limits now and originally, last action
  governor top                      the same, redrawn every second (q quits)
  governor explain CGROUP           why the daemon does what it does to one cgroup
  governor admission [--json]       accepting batch work? exit 0 yes, 1 no, 2 unknown
  governor version

Run "governor COMMAND -h" for a command's flags.
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
		return runCmd(args[1:], stderr)
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
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "governor %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "governor: unknown command %q\n\n%s", args[0], usage)
	return 2
}
