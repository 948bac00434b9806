package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor/control"
)

var topHelp = help{name: "top", usage: "governor top [--socket PATH] [--interval DURATION] [-n N]",
	about: `The status table, redrawn every interval until q or Ctrl-C, clipped to the
terminal: the cgroups an operator looks at first (knobs held changed, then
recent actions, then pressure), as many as fit. Not on a terminal it prints
plain frames, without escape codes.`}

// topCmd: governor top — the status table, redrawn every second until q or
// Ctrl-C.
func topCmd(args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	var every time.Duration
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	c.registerSocket(fs)
	fs.DurationVar(&every, "interval", time.Second, "redraw every `DURATION` (e.g. 500ms, 2s)")
	rows := fs.Int("n", 0, "list at most `N` cgroups (0: as many as fit the terminal, 40 when it is not one)")
	rest, code, ok := parseFlags(fs, topHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 || every <= 0 || *rows < 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", topHelp.usage)
		return 2
	}
	quit := make(chan struct{}, 1)
	stop := func() {
		select {
		case quit <- struct{}{}:
		default:
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() { <-sigs; stop() }()
	if restore, ok := cbreak(int(os.Stdin.Fd())); ok {
		defer restore()
		go func() {
			b := make([]byte, 1)
			for {
				n, err := os.Stdin.Read(b)
				if err != nil {
					return
				}
				if n == 1 && (b[0] == 'q' || b[0] == 'Q' || b[0] == 3) {
					stop()
					return
				}
			}
		}()
	}
	limit := func() int { return *rows }
	if *rows == 0 {
		limit = func() int { return terminalRows(int(os.Stdout.Fd())) }
	}
	scr := screen{w: stdout}
	if f, ok := stdout.(*os.File); ok && isTerminal(int(f.Fd())) {
		scr.size = func() (int, int) { return terminalSize(int(f.Fd())) }
	}
	topLoop(control.Client{Path: c.socket}, every, limit, scr, quit)
	return 0
}

// screen is where top draws: a terminal (size set) gets each frame in
// place, clipped to its size; anything else gets plain frames one after
// the other, without escape codes.
type screen struct {
	w    io.Writer
	size func() (rows, cols int)
}

// topLoop redraws the status every interval until quit, with at most
// limit() cgroups: the daemon picks and copies only those (at 10,000
// cgroups a full status is tens of MB, once a second).
func topLoop(cl control.Client, every time.Duration, limit func() int, scr screen, quit <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), every+5*time.Second)
		st, err := cl.StatusTop(ctx, limit())
		cancel()
		rows, cols := 0, 0
		if scr.size != nil {
			rows, cols = scr.size()
		}
		var text string
		if err != nil {
			text = termSafe(fmt.Sprintf("governor top: %v", err)) + "\n"
		} else {
			// Long cgroup paths keep their tail, so the columns after
			// them stay on screen.
			text = statusText(st, time.Now(), cols/3)
		}
		var frame string
		if scr.size != nil {
			// Home, clear, redraw in one write so the screen does not
			// flicker; clipped so that long lines do not wrap and push
			// the header off the top. The last line is the footer, with
			// no newline after it (that would scroll).
			body := clip(text, rows-1, cols)
			frame = "\x1b[H\x1b[2J" + body + clip("(q or Ctrl-C quits)", 1, cols)
			frame = strings.TrimSuffix(frame, "\n")
		} else {
			frame = text + "\n"
		}
		io.WriteString(scr.w, frame)
		select {
		case <-quit:
			return
		case <-t.C:
		}
	}
}

// terminalSize is the size of the terminal on fd (24x80 if it cannot
// tell).
func terminalSize(fd int) (rows, cols int) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return 24, 80
	}
	return int(ws.Row), int(ws.Col)
}

// terminalRows is how many table rows fit the terminal on fd below top's
// header and footer (at least 5), or 40 when fd is not a terminal.
func terminalRows(fd int) int {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return 40
	}
	return max(int(ws.Row)-12, 5)
}

// cbreak turns off line buffering and echo on a terminal so a single q
// quits; Ctrl-C still raises SIGINT. It returns the restore function.
func cbreak(fd int) (func(), bool) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, false
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, false
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, true
}
