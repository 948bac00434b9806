package policies

import (
	"fmt"
	"math"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Expressions are evaluated with a nil EvalContext: policy files have no
// variables and no functions (a daemon running as root must not read files
// or the environment on behalf of whoever wrote a policy). Literal values,
// lists and string templates without interpolation are what remains.

// eval evaluates an attribute to a known, non-null value.
func (c *compiler) eval(a *hcl.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	for _, d := range diags {
		switch d.Summary {
		case "Function calls not allowed":
			d.Detail = "Policy files cannot call functions: there are none (no file, env or other helpers). Write the value literally."
		case "Variables not allowed":
			d.Detail = "Policy files have no variables; write the value literally (names and knobs are quoted strings, e.g. \"batch\")."
		}
	}
	c.diags = append(c.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		c.errorf(a.Expr.Range(), "Missing value", "%s must have a value.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

// scalar is a quantity as written: a string, or a number rendered back to
// plain decimal text so that the same unit parsers handle both.
type scalar struct {
	text  string
	isNum bool
}

func (c *compiler) scalar(a *hcl.Attribute) (scalar, bool) {
	v, ok := c.eval(a)
	if !ok {
		return scalar{}, false
	}
	switch v.Type() {
	case cty.String:
		return scalar{text: v.AsString()}, true
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			c.errorf(a.Expr.Range(), "Invalid value", "%s must be a finite number.", a.Name)
			return scalar{}, false
		}
		return scalar{text: strconv.FormatFloat(f, 'f', -1, 64), isNum: true}, true
	}
	c.errorf(a.Expr.Range(), "Invalid value type", "%s must be a string or a number, not %s.", a.Name, v.Type().FriendlyName())
	return scalar{}, false
}

func (c *compiler) str(a *hcl.Attribute) (string, bool) {
	v, ok := c.eval(a)
	if !ok {
		return "", false
	}
	if v.Type() != cty.String {
		c.errorf(a.Expr.Range(), "Invalid value type", "%s must be a quoted string, not %s.", a.Name, v.Type().FriendlyName())
		return "", false
	}
	return v.AsString(), true
}

func (c *compiler) boolean(a *hcl.Attribute, def bool) bool {
	if a == nil {
		return def
	}
	v, ok := c.eval(a)
	if !ok {
		return def
	}
	if v.Type() != cty.Bool {
		c.errorf(a.Expr.Range(), "Invalid value type", "%s must be true or false (unquoted), not %s.", a.Name, v.Type().FriendlyName())
		return def
	}
	return v.True()
}

// strList evaluates a list of strings element by element, so that an error
// in one element points at that element.
func (c *compiler) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		c.errorf(a.Expr.Range(), "Invalid value type", "%s must be a list of quoted strings, e.g. [\"batch.slice/**\"].", a.Name)
		return nil, nil, false
	}
	out := make([]string, 0, len(exprs))
	rngs := make([]hcl.Range, 0, len(exprs))
	ok := true
	for _, e := range exprs {
		s, good := c.str(&hcl.Attribute{Name: a.Name + " element", Expr: e, Range: e.Range(), NameRange: a.NameRange})
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		rngs = append(rngs, e.Range())
	}
	return out, rngs, ok
}

func (c *compiler) errorf(subject hcl.Range, summary, format string, args ...any) {
	c.diags = append(c.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

func (c *compiler) warnf(subject hcl.Range, summary, format string, args ...any) {
	c.diags = append(c.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// at renders a range as file:line for details and origins.
func at(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

// suggest returns ` Did you mean "x"?` for the candidate closest to s, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	// Suggest only near misses: a typo, not a different word.
	if best == "" || bestD > 4 || 2*bestD >= len(s) {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
