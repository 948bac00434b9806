package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// loadWant loads src and wants it refused with a diagnostic containing
// want whose subject starts at line:col of t.hcl.
func loadWant(t *testing.T, what, src, want string, line, col int) {
	t.Helper()
	r := LoadSource("t.hcl", []byte(src))
	if r.Policy != nil || !r.Diags.HasErrors() {
		t.Errorf("%s: accepted, want %q", what, want)
		return
	}
	for _, d := range r.Diags {
		if strings.Contains(d.Summary+": "+d.Detail, want) {
			if d.Subject == nil || d.Subject.Filename != "t.hcl" || d.Subject.Start.Line != line || (col > 0 && d.Subject.Start.Column != col) {
				t.Errorf("%s: %q at %v, want t.hcl:%d:%d", what, want, d.Subject, line, col)
			}
			return
		}
	}
	t.Errorf("%s: diagnostics %q, want %q", what, r.Diags.Error(), want)
}

// TestNestingBombs: a 2 MB policy nesting a million brackets (or unary
// operators, or template interpolations) used to overflow the parser's
// stack, a fatal error that took down validate and the daemon on reload.
// The shape check refuses it before the parser runs, at the first token
// past the limit.
func TestNestingBombs(t *testing.T) {
	const n = 1_000_000
	pre := "class \"x\" {\n  match = [\"a\"]\n  protected = "
	col := len("  protected = ") + 1
	for _, c := range []struct {
		name, open, close, want string
		at                      int // column of the refused token, from col
	}{
		{"parentheses", "(", ")", "Nested too deeply", maxNesting - 1},
		{"brackets", "[", "]", "Nested too deeply", maxNesting - 1},
		{"objects", "{a=", "}", "Nested too deeply", 3 * (maxNesting - 1)},
		{"bangs", "!", "", "Too many unary operators", maxUnaryRun},
		{"minuses", "-", "", "Too many unary operators", maxUnaryRun},
		{"interpolations", "\"${", "}\"", "Nested too deeply", 3*((maxNesting-2)/2) + 1},
	} {
		src := pre + strings.Repeat(c.open, n) + "true" + strings.Repeat(c.close, n) + "\n}\n"
		// The class block is level 1: the 64th bracket is one too many.
		loadWant(t, c.name, src, c.want, 3, col+c.at)
	}
	src := pre + strings.Repeat("1+", n) + "1\n}\n"
	loadWant(t, "a million additions", src, "Too many operators", 3, col+2*maxOperators+1)
	src = pre + "[true]" + strings.Repeat("[0]", n) + "\n}\n"
	loadWant(t, "a million indexes", src, "Too many operators", 3, col+6+3*maxOperators)
}

// TestManyClassesPass: the operator limit counts operators, not lists: a
// generated policy with 5,000 classes, each with two lists, loads.
func TestManyClassesPass(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "class \"c%d\" {\n  match = [\"s%d.slice/**\", \"t%d.slice\"]\n  exclude = [\"s%d.slice/x\"]\n}\n", i, i, i, i)
	}
	if r := LoadSource("t.hcl", []byte(b.String())); r.Policy == nil {
		t.Fatalf("5,000 classes refused: %v", r.Diags)
	}
}

// TestNestingLimitsAreGenerous: a policy nested up to the limit loads.
func TestNestingLimitsAreGenerous(t *testing.T) {
	pre := "class \"x\" {\n  match = [\"a\"]\n  protected = "
	ok := pre + strings.Repeat("(", maxNesting-1) + "true" + strings.Repeat(")", maxNesting-1) + "\n}\n"
	if r := LoadSource("t.hcl", []byte(ok)); r.Policy == nil {
		t.Errorf("%d levels refused: %v", maxNesting, r.Diags)
	}
	loadWant(t, "one level more", pre+strings.Repeat("(", maxNesting)+"true"+strings.Repeat(")", maxNesting)+"\n}\n",
		"nest more than 64 levels", 3, 0)
	ok = pre + strings.Repeat("!", maxUnaryRun) + "false\n}\n"
	if r := LoadSource("t.hcl", []byte(ok)); r.Policy == nil {
		t.Errorf("%d bangs refused: %v", maxUnaryRun, r.Diags)
	}
}

// TestTemplateLoops: four nested %{for} loops in 1.3 KB kept validate busy
// for minutes; nested for expressions do the same. Neither has a use in a
// language without variables or functions: both are refused, at the loop.
func TestTemplateLoops(t *testing.T) {
	var xs []string
	for i := range 40 {
		xs = append(xs, fmt.Sprint(i))
	}
	list := "[" + strings.Join(xs, ",") + "]"
	tmpl := ""
	for _, v := range []string{"a", "b", "c", "d"} {
		tmpl += "%{for " + v + " in " + list + "}"
	}
	tmpl += "x"
	tmpl += strings.Repeat("%{endfor}", 4)
	src := "class \"x\" {\n  match = [\"" + tmpl + "\"]\n}\n"
	loadWant(t, "nested %{for}", src, "Template directives not allowed", 2, 13)
	loadWant(t, "%{if}", "class \"x\" {\n  match = [\"%{if true}a%{endif}\"]\n}\n", "Template directives not allowed", 2, 13)
	// A malformed UTF-8 sequence: HCL's lexer and the scan could part
	// ways after it (the fuzz corpus's FuzzCheckShape/20db87cf9d9b56c7
	// hid a directive that way); it is refused where it is, and a valid
	// multi-byte character before it counts as one column.
	loadWant(t, "bad UTF-8", "class \"é\" {\n  match = [\"a\xdb\"\"%{if}\"]\n}\n", "Invalid character encoding", 2, 14)
	loop := "x"
	for _, v := range []string{"a", "b", "c", "d"} {
		loop = "[for " + v + " in " + list + " : " + loop + "]"
	}
	loadWant(t, "nested for expressions", "class \"x\" {\n  match = [\"a\"]\n  exclude = "+loop+"\n}\n", "For expressions not allowed", 3, 13)
	// An escaped "%{" is a literal and still allowed.
	if r := LoadSource("t.hcl", []byte("class \"x\" {\n  match = [\"a%%{b\"]\n}\n")); r.Policy == nil {
		t.Errorf("escaped %%%%{ refused: %v", r.Diags)
	}
}

// lexDepth is the deepest nesting in src by HCL's own lexer, with the same
// closing rules as checkShape, and whether the lexer saw a template
// directive.
func lexDepth(src []byte) (int, bool) {
	toks, _ := hclsyntax.LexConfig(src, "t.hcl", hcl.InitialPos)
	var stack []byte
	deepest, directive := 0, false
	for _, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenOParen, hclsyntax.TokenOBrack:
			stack = append(stack, '(')
		case hclsyntax.TokenOBrace:
			stack = append(stack, '{')
		case hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			directive = directive || tok.Type == hclsyntax.TokenTemplateControl
			stack = append(stack, '$')
		case hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			stack = append(stack, '"')
		case hclsyntax.TokenCParen, hclsyntax.TokenCBrack:
			if len(stack) > 0 && stack[len(stack)-1] == '(' {
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if len(stack) > 0 && stack[len(stack)-1] == '"' {
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
			for len(stack) > 0 {
				k := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if k == '{' || k == '$' {
					break
				}
			}
		}
		deepest = max(deepest, len(stack))
	}
	return deepest, directive
}

// FuzzCheckShape: whatever checkShape lets through, HCL's own lexer finds
// nested no deeper than the limit and free of template directives, so
// checkShape's reading of strings, heredocs and comments is the lexer's.
func FuzzCheckShape(f *testing.F) {
	addPolicySeeds(f)
	for _, s := range []string{
		"a = \"${\"${\"x\"}\"}\"\n", "a = <<EOT\n${\"}\"}\nEOT\nb = [\"x\"]\n", "a = <<-EOT\n  x\n  EOT\n",
		"a = \"$${x\" # (((\n", "a = \"\\\"${1}\"\n", "a = { b = (1 }\n", "/* \" */ a = \"%%{\"\n",
		"a = \"${ { x = 1 } }\"\n", "a = 1.5e-3 - -2\n", "a = x-y\n", "a = <<EOT\nEOT",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if checkShape("t.hcl", src).HasErrors() {
			return
		}
		depth, directive := lexDepth(src)
		if depth > maxNesting || directive {
			t.Fatalf("checkShape let through depth %d (limit %d), directive %v", depth, maxNesting, directive)
		}
	})
}

// TestGoodPoliciesPassShape: every shipped and test policy is within the
// limits, and checkShape agrees with the lexer on each.
func TestGoodPoliciesPassShape(t *testing.T) {
	for _, pattern := range []string{"testdata/good/*.hcl", "default.hcl", "../examples/*.hcl"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if d := checkShape(p, src); d.HasErrors() {
				t.Errorf("%s: %v", p, d)
			}
		}
	}
}

// TestGlobLimits: a pattern with more "**" or elements than the limit, and
// a class with more patterns than the limit, are refused at their line
// (ten "**" against a 33-deep path used to stall the loop for ~44 s).
func TestGlobLimits(t *testing.T) {
	ten := strings.Repeat("**/", 10) + "y"
	loadWant(t, "ten **", "class \"x\" {\n  match = [\"a\",\n    \""+ten+"\"]\n}\n", "has 10 \"**\" elements; the limit is 4", 3, 5)
	long := strings.Repeat("a/", 40) + "b"
	loadWant(t, "41 elements", "class \"x\" {\n  match = [\"a\"]\n  exclude = [\""+long+"\"]\n}\n", "has 41 elements; the limit is 32", 3, 14)
	var pats []string
	for i := range 40 {
		pats = append(pats, fmt.Sprintf("%q", fmt.Sprintf("s%d.slice/**", i)))
	}
	list := "[" + strings.Join(pats, ", ") + "]"
	loadWant(t, "80 patterns", "\n\nclass \"x\" {\n  match = "+list+"\n  exclude = "+list+"\n}\n", "has 80 match and exclude patterns; the limit is 64", 3, 1)
	ok := "class \"x\" {\n  match = [\"adv/**/x/**/*.scope\", \"" + strings.Repeat("**/", 4) + "y\"]\n  exclude = " + list + "\n}\n"
	if r := LoadSource("t.hcl", []byte(ok)); r.Policy == nil {
		t.Errorf("patterns within the limits refused: %v", r.Diags)
	}
}
