package main

import "github.com/hashicorp/hcl/v2"

// noPolicyFiles reports whether every one of n --config arguments was a
// directory without *.hcl files and nothing else was said about them: the
// shipped unit passes --config /etc/governor, and an empty /etc/governor
// must run the built-in default (as with no --config at all), not a policy
// of zero classes that governs nothing.
func noPolicyFiles(diags hcl.Diagnostics, n int) bool {
	if n == 0 || len(diags) != n {
		return false
	}
	for _, d := range diags {
		if d.Severity != hcl.DiagWarning || d.Summary != "No policy files" {
			return false
		}
	}
	return true
}
