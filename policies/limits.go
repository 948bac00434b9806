package policies

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on the shape of a policy file. The HCL parser and evaluator
// recurse once per nesting level and per operator, and a template or for
// expression loops over whatever it is given, so a few KiB of hostile text
// can exhaust the stack (a fatal error no recover catches) or keep the
// loader busy for minutes. checkShape scans the bytes before the parser
// sees them, and refuses the file with a diagnostic at the first offending
// character. Real policies stay far below every limit: they
// are blocks of literal strings, numbers, booleans and lists of strings,
// nested three or four levels deep. policies/REFERENCE.md ("Limits") lists
// them; keep the two in step.
const (
	// maxNesting bounds how deep brackets, braces, parentheses, quoted
	// strings, heredocs and template sequences ("${", "%{") may nest.
	maxNesting = 64
	// maxUnaryRun bounds a run of consecutive unary operators ("!", "-").
	maxUnaryRun = 16
	// maxOperators bounds the operator characters in one file (arithmetic,
	// comparison, logic, "!", "?", ":", ".", and a "[" that indexes a
	// value): each makes the parse tree one level deeper at worst, and the
	// parser builds a long chain of them (1+1+...) as a deep tree.
	maxOperators = 4096
)

// frame is one open level of the scan: a bracket or parenthesis, a brace,
// a template sequence ("${" or "%{") or a string or heredoc.
type frame struct {
	kind   byte   // '(' (also '['), '{', '$' (template sequence), '"', '<' (heredoc)
	marker []byte // a heredoc's closing marker
	line   bool   // heredoc: at the start of a line
}

// checkShape scans src once, byte by byte, with no recursion and no
// allocation per byte, and reports the first place where it breaks a
// limit, or a template directive, which the language does not have. It
// follows the HCL lexer's states closely enough to know code from string
// text and comments: strings with their escapes ("\\", "$${", "%%{"),
// heredocs and their closing marker, comments, and "}" closing a template
// sequence exactly when the lexer's brace count says so. Lexical errors
// are left to the parser, which reports them with more context.
func checkShape(name string, src []byte) hcl.Diagnostics {
	var stack []frame
	line, lineStart := 1, 0
	unary, ops := 0, 0
	// afterValue: the last thing in code was a value (a name, number,
	// string or closing bracket), so a "[" there indexes it.
	afterValue := false
	fail := func(i, n int, summary, format string, args ...any) hcl.Diagnostics {
		col := utf8.RuneCount(src[lineStart:i]) + 1
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   fmt.Sprintf(format, args...),
			Subject: &hcl.Range{
				Filename: name,
				Start:    hcl.Pos{Line: line, Column: col, Byte: i},
				End:      hcl.Pos{Line: line, Column: col + n, Byte: i + n},
			},
		}}
	}
	push := func(i, n int, f frame) hcl.Diagnostics {
		stack = append(stack, f)
		if len(stack) > maxNesting {
			return fail(i, n, "Nested too deeply",
				"Brackets, braces, parentheses, strings and template sequences nest more than %d levels deep here; policy files allow at most %d (see Limits in the policy reference).", maxNesting, maxNesting)
		}
		return nil
	}
	// template handles "${" and "%{" in string and heredoc text; it
	// returns how many bytes it consumed (0: not a sequence).
	template := func(i int) (int, hcl.Diagnostics) {
		c := src[i]
		if (c != '$' && c != '%') || i+1 >= len(src) {
			return 0, nil
		}
		if src[i+1] == c && i+2 < len(src) && src[i+2] == '{' {
			return 3, nil // "$${" or "%%{": literal text
		}
		if src[i+1] != '{' {
			return 0, nil
		}
		if c == '%' {
			return 0, fail(i, 2, "Template directives not allowed",
				"Policy files have no template directives (%%{if}, %%{for}): values are literal strings, numbers, booleans and lists. Write the value out; a literal \"%%{\" is written \"%%%%{\".")
		}
		return 2, push(i, 2, frame{kind: '$'})
	}
	newline := func(i int) { line, lineStart = line+1, i+1 }

	// HCL's lexer takes a malformed UTF-8 sequence as one token of a
	// length of its own (a lead byte and the byte after it, say), so past
	// one its idea of what is string and what is code can differ from this
	// scan's ("\xdb\"\"%{" hid a template directive inside a string
	// whose opening quote the lexer had eaten). Policy files are UTF-8
	// text: refuse the first bad byte, where the parser would have said
	// the same after the scan.
	if !utf8.Valid(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			if src[i] == '\n' {
				newline(i)
			}
			i += n
		}
		return fail(i, 1, "Invalid character encoding",
			"Policy files are UTF-8 text; byte 0x%02x here does not begin a valid UTF-8 sequence. Save the file as UTF-8.", src[i])
	}

	for i := 0; i < len(src); {
		c := src[i]
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch {
		case top != nil && top.kind == '"':
			if n, d := template(i); d != nil {
				return d
			} else if n > 0 {
				i += n
				continue
			}
			switch c {
			case '\\':
				if i+1 < len(src) && src[i+1] != '\n' && src[i+1] != '\r' {
					i++
				}
			case '"':
				stack = stack[:len(stack)-1]
				afterValue = true
			case '\n':
				newline(i)
			}
			i++
			continue
		case top != nil && top.kind == '<':
			if top.line {
				end := bytes.IndexByte(src[i:], '\n')
				if end < 0 {
					end = len(src) - i
				}
				if bytes.Equal(bytes.TrimSpace(src[i:i+end]), top.marker) && i+end < len(src) {
					stack = stack[:len(stack)-1]
					afterValue = true
					i += end // the newline is the code's again
					continue
				}
				top.line = false
			}
			if n, d := template(i); d != nil {
				return d
			} else if n > 0 {
				i += n
				continue
			}
			if c == '\n' {
				newline(i)
				top.line = true
			}
			i++
			continue
		}

		// Code.
		switch c {
		case ' ', '\t', '\r':
			i++
			continue
		case '\n':
			newline(i)
			i++
			continue
		case '#':
			i = skipLine(src, i)
			continue
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				i = skipLine(src, i)
				continue
			}
			// A "/*" with no "*/" after it is no comment to the lexer
			// but a "/" and a "*".
			if end := bytes.Index(src[min(i+2, len(src)):], []byte("*/")); i+1 < len(src) && src[i+1] == '*' && end >= 0 {
				for _, b := range src[i : i+2+end] {
					if b == '\n' {
						line++
					}
				}
				if nl := bytes.LastIndexByte(src[i:i+2+end], '\n'); nl >= 0 {
					lineStart = i + nl + 1
				}
				i += 2 + end + 2
				continue
			}
		}
		if c == '!' || c == '-' {
			if c == '!' && i+1 < len(src) && src[i+1] == '=' {
				unary = 0
			} else if unary++; unary > maxUnaryRun {
				return fail(i, 1, "Too many unary operators",
					"More than %d \"!\" or \"-\" in a row; policy files allow at most %d (see Limits in the policy reference).", maxUnaryRun, maxUnaryRun)
			}
		} else {
			unary = 0
		}
		index := c == '[' && afterValue
		afterValue = c == ')' || c == ']' || c == '}'
		switch {
		case c == '"':
			if d := push(i, 1, frame{kind: '"'}); d != nil {
				return d
			}
		case c == '<' && i+2 < len(src) && src[i+1] == '<':
			if m, n := heredocStart(src[i:]); n > 0 {
				if d := push(i, n, frame{kind: '<', marker: m, line: true}); d != nil {
					return d
				}
				i += n // at the newline, which the heredoc counts
				continue
			}
		case c == '(' || c == '[':
			if d := push(i, 1, frame{kind: '('}); d != nil {
				return d
			}
		case c == '{':
			if d := push(i, 1, frame{kind: '{'}); d != nil {
				return d
			}
		case c == ')' || c == ']':
			if top != nil && top.kind == '(' {
				stack = stack[:len(stack)-1]
			}
		case c == '}':
			// As the lexer: "}" closes the innermost brace or template
			// sequence; unclosed parentheses inside it go with it.
			for len(stack) > 0 {
				k := stack[len(stack)-1].kind
				stack = stack[:len(stack)-1]
				if k == '{' || k == '$' {
					break
				}
			}
		case c >= '0' && c <= '9':
			i = skipNumber(src, i)
			afterValue = true
			continue
		case c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z'):
			for i++; i < len(src); i++ {
				b := src[i]
				if !(b == '_' || b == '-' || b >= 0x80 || (b >= '0' && b <= '9') || (b|0x20 >= 'a' && b|0x20 <= 'z')) {
					break
				}
			}
			afterValue = true
			continue
		}
		if index || strings.IndexByte("+-*/%<>!?:.&|", c) >= 0 {
			if ops++; ops > maxOperators {
				return fail(i, 1, "Too many operators",
					"This file has more than %d operators; policy files allow at most %d (see Limits in the policy reference).", maxOperators, maxOperators)
			}
		}
		i++
	}
	return nil
}

// skipLine returns the index of the newline ending the line at i.
func skipLine(src []byte, i int) int {
	if end := bytes.IndexByte(src[i:], '\n'); end >= 0 {
		return i + end
	}
	return len(src)
}

// skipNumber skips a number literal: digits, a fraction, an exponent.
func skipNumber(src []byte, i int) int {
	digits := func(i int) int {
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		return i
	}
	i = digits(i)
	if i+1 < len(src) && src[i] == '.' && src[i+1] >= '0' && src[i+1] <= '9' {
		i = digits(i + 1)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && src[j] >= '0' && src[j] <= '9' {
			i = digits(j)
		}
	}
	return i
}

// heredocStart matches "<<" or "<<-", an identifier and a newline at the
// start of s, as the lexer does; it returns the marker and the length up to
// and without the newline's "\n" (0: not a heredoc).
func heredocStart(s []byte) ([]byte, int) {
	j := 2
	if j < len(s) && s[j] == '-' {
		j++
	}
	start := j
	for j < len(s) {
		b := s[j]
		if b == '_' || b >= 0x80 || (b|0x20 >= 'a' && b|0x20 <= 'z') || (j > start && (b == '-' || (b >= '0' && b <= '9'))) {
			j++
			continue
		}
		break
	}
	if j == start {
		return nil, 0
	}
	marker := s[start:j]
	if j < len(s) && s[j] == '\r' {
		j++
	}
	if j >= len(s) || s[j] != '\n' {
		return nil, 0
	}
	return marker, j
}

// checkLoops refuses for expressions ([for x in xs : ...]): with no
// variables and no functions a loop can only compute a constant that could
// be written out, and nested loops multiply their work, so a short file
// could keep the loader busy for hours.
func checkLoops(f *hcl.File) hcl.Diagnostics {
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if e, ok := n.(*hclsyntax.ForExpr); ok {
			rng := e.OpenRange
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "For expressions not allowed",
				Detail:   "Policy files have no for expressions: values are literal strings, numbers, booleans and lists. Write the list out.",
				Subject:  &rng,
			})
		}
		return nil
	})
	return diags
}
