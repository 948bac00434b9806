// Package govtest holds what tests and benchmarks of the packages around
// the loop share: a source of fixed samples and a running loop over many
// idle cgroups.
package govtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// Source hands the loop the same samples every tick: a copy of Host as
// the host's, and of each of Cgs.
type Source struct {
	mu   sync.Mutex
	Host governor.Sample
	Cgs  []governor.Sample
}

func (s *Source) Name() string { return "govtest" }

func (s *Source) Sample(_ context.Context, snap *governor.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.Host
	snap.Host = &h
	for i := range s.Cgs {
		c := s.Cgs[i]
		snap.Cgroups = append(snap.Cgroups, &c)
	}
	return nil
}

// IdleSource is a Source of n idle cgroups named by path, each with every
// PSI and usage signal at zero (the BPF ones absent), as a quiet host's.
func IdleSource(n int, path func(i int) string) *Source {
	src := &Source{}
	for i := range n {
		s := governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(100 + i), Path: path(i)}}
		for sig := governor.Signal(0); sig < governor.RunqP50; sig++ {
			s.Set(sig, 0)
		}
		src.Cgs = append(src.Cgs, s)
	}
	return src
}

// Run starts loop until the test ends and waits until it governs n
// cgroups; the context it returns ends with the test.
func Run(tb testing.TB, loop *governor.Loop, n int) context.Context {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(time.Minute)
	for st, _ := loop.Status(ctx); len(st.Cgroups) < n; st, _ = loop.Status(ctx) {
		if time.Now().After(deadline) {
			tb.Fatalf("the loop governs %d cgroups after a minute, want %d", len(st.Cgroups), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ctx
}
