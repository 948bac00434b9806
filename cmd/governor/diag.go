package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/governor-dev/governor/policies"
)

// logDiagnostics logs each policy diagnostic once, as one log line (one
// JSON object with --log-json) whose fields say where and what: file,
// line, column, message and the offending source line as snippet. It
// returns the number of errors.
func logDiagnostics(log hclog.Logger, res *policies.Result) int {
	errs := 0
	for _, d := range res.Diags {
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		var args []interface{}
		if s := d.Subject; s != nil {
			args = append(args, "file", s.Filename, "line", s.Start.Line, "column", s.Start.Column)
		}
		args = append(args, "message", msg)
		if s := d.Subject; s != nil {
			if snip := sourceLine(res.Files[s.Filename], s.Start.Line); snip != "" {
				args = append(args, "snippet", snip)
			}
		}
		if d.Severity == hcl.DiagWarning {
			log.Warn("policy warning", args...)
			continue
		}
		errs++
		log.Error("policy error", args...)
	}
	return errs
}

// sourceLine returns line n (1-based) of a parsed file, without its line
// ending, or "" when the file or line is unknown.
func sourceLine(f *hcl.File, n int) string {
	if f == nil || n < 1 {
		return ""
	}
	lines := bytes.Split(f.Bytes, []byte("\n"))
	if n > len(lines) {
		return ""
	}
	return strings.TrimRight(string(lines[n-1]), "\r")
}

// policyError is the error of a policy that failed to load: its
// diagnostics are logged already, so it only counts them.
func policyError(configs []string, errs int) error {
	noun := "errors"
	if errs == 1 {
		noun = "error"
	}
	return fmt.Errorf("policy %s has %d %s (logged above as \"policy error\")", strings.Join(configs, ", "), errs, noun)
}
