// Command governor is the adaptive resource governor: a daemon that watches
// cgroup v2 pressure and adjusts cgroup limits according to HCL policies.
//
//	governor run [flags]         run the daemon in the foreground
//	governor validate FILE...    check policy files
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
