package main

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// systemd speaks the sd_notify protocol when NOTIFY_SOCKET is set: READY=1
// after the first Step, RELOADING=1 with MONOTONIC_USEC on SIGHUP, and
// watchdog pings from the loop itself (a stuck loop stops pinging and
// systemd restarts it).
type systemd struct {
	log      hclog.Logger
	watchdog time.Duration
	lastPing time.Time
	isReady  bool
}

func newSystemd(log hclog.Logger) *systemd {
	s := &systemd{log: log}
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		s.watchdog = d / 2
		log.Info("systemd watchdog enabled", "ping_every", s.watchdog.String())
	}
	return s
}

func (s *systemd) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		s.log.Warn("sd_notify failed", "state", state, "error", err)
	}
}

func (s *systemd) afterStep(r governor.StepResult) {
	if !s.isReady {
		s.isReady = true
		s.ready()
	}
	if s.watchdog > 0 && time.Since(s.lastPing) >= s.watchdog {
		s.notify("WATCHDOG=1")
		s.lastPing = time.Now()
	}
}

func (s *systemd) ready() { s.notify("READY=1\nSTATUS=governing") }

func (s *systemd) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	s.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

func (s *systemd) stopping() { s.notify("STOPPING=1") }
