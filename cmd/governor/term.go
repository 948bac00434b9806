package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// termSafe makes text from the daemon (cgroup names above all: any byte but
// '/' and NUL is allowed in them) safe to print on a terminal: control
// characters (C0, DEL, C1), other non-printing runes (bidi overrides, line
// separators) and bytes that are not UTF-8 become Go-style escapes (\x1b,
// \x7f, \u0085, \u202e, \xff); everything else, printable Unicode
// included, is left as it is. Backslashes stay as they are, so systemd's
// escaped unit names (system-systemd\x2dfsck.slice) read as they do in
// systemctl.
func termSafe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// clip cuts text to at most rows lines of at most cols runes each (a rune
// is taken as one column: what top prints is ASCII but for a few arrows and
// dashes, and escaped names). rows or cols <= 0: no limit.
func clip(text string, rows, cols int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if rows > 0 && len(lines) > rows {
		lines = lines[:rows]
	}
	if cols > 0 {
		for i, l := range lines {
			if utf8.RuneCountInString(l) > cols {
				r := []rune(l)
				lines[i] = string(r[:cols])
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
