package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// signals is the daemon's signal handling, started by the first statement
// of `run`, before anything that can block (policy load, BPF load, crash
// recovery, a reload): it has its own goroutine, which never does any of
// that work itself, so a SIGTERM is seen at once whatever the rest is
// doing. SIGTERM and SIGINT end ctx; SIGHUP queues a reload (several
// pending reloads are one). SIGPIPE is ignored: a write to a closed pipe
// (the reader of stderr gone) then fails with EPIPE instead of killing
// the daemon, which would leave changed knobs and frozen cgroups behind.
// (Go kills a program for SIGPIPE on fd 1 and 2 unless the signal is
// ignored or handled.) hclog drops a write error, so logging is then
// best-effort: lines are lost, the daemon goes on.
type signals struct {
	ch     chan os.Signal
	ctx    context.Context // ends on SIGTERM or SIGINT
	cancel context.CancelFunc
	reload chan struct{}

	mu  sync.Mutex
	got os.Signal
}

func catchSignals() *signals {
	signal.Ignore(syscall.SIGPIPE)
	s := &signals{ch: make(chan os.Signal, 8), reload: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go s.watch()
	return s
}

func (s *signals) watch() {
	for sig := range s.ch {
		if sig == syscall.SIGHUP {
			select {
			case s.reload <- struct{}{}:
			default: // one is pending already
			}
			continue
		}
		s.mu.Lock()
		if s.got == nil {
			s.got = sig
		}
		s.mu.Unlock()
		s.cancel()
	}
}

// stopSignal is the signal that ended ctx (nil if none).
func (s *signals) stopSignal() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

func (s *signals) stop() {
	signal.Stop(s.ch)
	s.cancel()
}

// within runs fn on a goroutine of its own and waits for its result or
// for ctx to end. ok is false if ctx ended first: fn is then abandoned,
// left to finish (its result dropped) or to block on its own.
func within[T any](ctx context.Context, fn func() T) (v T, ok bool) {
	res := make(chan T, 1)
	go func() { res <- fn() }()
	select {
	case v = <-res:
		return v, true
	case <-ctx.Done():
		select {
		case v = <-res:
			return v, true
		default:
			return v, false
		}
	}
}
