package control

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// A status with a limit lists the first cgroups by governor.RankKey, in
// that order, says how many it left out, and — through Visit, which reuses
// the status it hands over — keeps copies, not the reused maps.
func TestStatusLimit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(path string, pressure float64, acted int, changed bool) governor.CgroupStatus {
		cs := governor.CgroupStatus{Ref: governor.Ref{ID: governor.CgroupID(len(path)), Path: path}, Class: "batch",
			Signals: map[string]float64{governor.MemorySomeAvg10.Name(): pressure}}
		if acted > 0 {
			cs.Last = &governor.Action{Time: t0.Add(time.Duration(acted) * time.Second), Controller: "r", Kind: "reclaim"}
		}
		if changed {
			cs.Knobs = []governor.KnobStatus{{Knob: "cpu.weight", Value: "10", Original: "100", Owner: "squeeze"}}
		}
		return cs
	}
	all := []governor.CgroupStatus{
		mk("idle-b", 0, 0, false), mk("hot", 40, 0, false), mk("idle-a", 0, 0, false),
		mk("acted-old", 1, 3, false), mk("squeezed", 0, 0, true), mk("acted-new", 0, 9, false), mk("warm", 5, 0, false),
	}
	status := func(context.Context) (governor.Status, error) {
		return governor.Status{Cgroups: slices.Clone(all)}, nil
	}
	visit := func(_ context.Context, f func(*governor.CgroupStatus), _ ...governor.Signal) (governor.Status, error) {
		cs := governor.CgroupStatus{Signals: map[string]float64{}}
		for i := range all {
			sig := cs.Signals
			clear(sig)
			for k, v := range all[i].Signals {
				sig[k] = v
			}
			cs = all[i]
			cs.Signals = sig
			f(&cs)
			sig[governor.MemorySomeAvg10.Name()] = -1 // reused: a kept copy must not see this
		}
		return governor.Status{}, nil
	}
	for _, b := range []struct {
		name string
		be   Backend
	}{{"status", Backend{Status: status}}, {"visit", Backend{Status: status, Visit: visit}}} {
		t.Run(b.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "c.sock")
			srv, err := Listen(Options{Path: sock}, b.be)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go srv.Serve(ctx)
			for _, tc := range []struct {
				limit int
				want  []string
			}{
				{4, []string{"squeezed", "acted-new", "acted-old", "hot"}},
				{6, []string{"squeezed", "acted-new", "acted-old", "hot", "warm", "idle-a"}},
				{1, []string{"squeezed"}},
			} {
				st, err := Client{Path: sock}.StatusTop(ctx, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, c := range st.Cgroups {
					got = append(got, c.Path)
					if want := all[slices.IndexFunc(all, func(a governor.CgroupStatus) bool { return a.Path == c.Path })].Signals[governor.MemorySomeAvg10.Name()]; c.Signals[governor.MemorySomeAvg10.Name()] != want {
						t.Errorf("limit %d: %s has pressure %v, want %v", tc.limit, c.Path, c.Signals[governor.MemorySomeAvg10.Name()], want)
					}
				}
				if !slices.Equal(got, tc.want) || st.Governed != len(all) || st.Omitted != len(all)-tc.limit {
					t.Errorf("limit %d: %v (governed %d, omitted %d), want %v (%d, %d)", tc.limit, got, st.Governed, st.Omitted, tc.want, len(all), len(all)-tc.limit)
				}
			}
			st, err := Client{Path: sock}.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Cgroups) != len(all) || st.Governed != len(all) || st.Omitted != 0 {
				t.Errorf("no limit: %d cgroups, governed %d, omitted %d", len(st.Cgroups), st.Governed, st.Omitted)
			}
			if _, err := (Client{Path: sock}).Call(ctx, Request{Cmd: "status", Limit: -1}); err == nil {
				t.Error("a negative limit is accepted")
			}
		})
	}
}

// BenchmarkStatus10k: one status request over the socket of a loop
// governing 10,000 idle cgroups, every cgroup (as governor status) and the
// 40 that governor top asks for.
func BenchmarkStatus10k(b *testing.B) {
	const n = 10000
	src := govtest.IdleSource(n, func(i int) string { return fmt.Sprintf("bench/batch.slice/g%03d.slice/job-%05d", i/200, i) })
	loop, err := governor.New(governor.Config{
		Policy:  &governor.Policy{Tick: time.Second, Classes: []governor.Class{{Name: "batch", Match: []string{"bench/batch.slice/*/*"}}}},
		Sources: []governor.Source{src}, Actuator: govtest.NewActuator(),
		Caps: governor.Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true, "io": true}},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := govtest.Run(b, loop, n)
	sock := filepath.Join(b.TempDir(), "c.sock")
	srv, err := Listen(Options{Path: sock}, Backend{Status: loop.Status, Visit: loop.VisitStatus})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ctx)
	for _, limit := range []int{0, 40} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st, err := Client{Path: sock}.StatusTop(ctx, limit)
				if err != nil || st.Governed != n {
					b.Fatal(err, st.Governed)
				}
			}
		})
	}
}
