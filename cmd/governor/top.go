package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor/control"
)

// topCmd: governor top — the status table, redrawn every second until q or
// Ctrl-C.
func topCmd(args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	var every time.Duration
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.socket, "socket", control.DefaultPath, "the daemon's control socket")
	fs.DurationVar(&every, "interval", time.Second, "refresh interval")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || every <= 0 {
		fmt.Fprintln(stderr, "usage: governor top [--socket PATH] [--interval 1s]")
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
	topLoop(control.Client{Path: c.socket}, every, stdout, quit)
	return 0
}

// topLoop redraws the status every interval until quit.
func topLoop(cl control.Client, every time.Duration, stdout io.Writer, quit <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), every+5*time.Second)
		st, err := cl.Status(ctx)
		cancel()
		// Home, clear, redraw in one write so the screen does not flicker.
		frame := "\x1b[H\x1b[2J"
		if err != nil {
			frame += fmt.Sprintf("governor top: %v\n", err)
		} else {
			frame += statusText(st, time.Now())
		}
		frame += "\n(q or Ctrl-C quits)\n"
		io.WriteString(stdout, frame)
		select {
		case <-quit:
			return
		case <-t.C:
		}
	}
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
