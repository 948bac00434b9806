package policies

import (
	"context"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// heapCeiling is what the heap may hold after one policy went through
// load, compile and a step (the 4 MiB file limit and the shape limits keep
// a real run far below it).
const heapCeiling = 256 << 20

// memActuator is an in-memory cgroupfs: knobs start at the kernel's
// defaults and keep what was written.
type memActuator struct {
	mu   sync.Mutex
	vals map[string]int64
}

func (a *memActuator) key(cg governor.Ref, k governor.Knob) string {
	return cg.Path + "\x00" + k.String()
}

func (a *memActuator) Read(_ context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.vals[a.key(cg, k)]
	if !ok {
		v = governor.Unlimited
		switch k {
		case governor.CPUWeight, governor.IOWeight:
			v = 100
		case governor.MemoryLow, governor.MemoryMin, governor.CPUIdle:
			v = 0
		}
	}
	return governor.Setting{Value: v, Raw: "fixture"}, nil
}

func (a *memActuator) Write(_ context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vals[a.key(cg, k)] = v
	return nil
}

func (a *memActuator) Restore(ctx context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	return a.Write(ctx, cg, k, s.Value)
}

func (a *memActuator) Reclaim(context.Context, governor.Ref, int64) error { return nil }
func (a *memActuator) Freeze(context.Context, governor.Ref, bool) error   { return nil }
func (a *memActuator) Kill(context.Context, governor.Ref) error           { return nil }

// fixedClock stands still: the same policy takes the same path through a
// step every time (the fuzzer minimises an input by re-running it).
type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(1_800_000_000, 0) }

// fixtureSource is a node under pressure: services, batch jobs, user
// sessions, pods and one deep chain, every signal high.
func fixtureSource() *govtest.Source {
	paths := []string{
		"system.slice", "system.slice/web.service", "system.slice/sshd.service", "system.slice/db.service",
		"batch.slice", "batch.slice/job-1.scope", "batch.slice/job-2.scope", "batch.slice/g1.slice/job-3.scope",
		"user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope",
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope",
		"nomad.slice/share.slice/0a1b.web.scope", "init.scope",
		"adv" + strings.Repeat("/x", 40) + "/leaf.scope",
	}
	src := &govtest.Source{}
	for sig := governor.Signal(0); sig < governor.NumSignals; sig++ {
		src.Host.Set(sig, 50)
	}
	for i, p := range paths {
		s := governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(100 + i), Path: p}}
		for sig := governor.Signal(0); sig < governor.NumSignals; sig++ {
			s.Set(sig, 90)
		}
		s.Set(governor.MemoryCurrent, 8<<30)
		s.Set(governor.MemoryHighRatio, 0.99)
		s.Set(governor.MemoryMaxRatio, 0.99)
		src.Cgs = append(src.Cgs, s)
	}
	return src
}

// FuzzPolicyStep feeds arbitrary bytes as a policy file through what the
// daemon does with one on start or SIGHUP: load and compile it, and when it
// compiles, run a step of a loop with it over a node under pressure and
// close the loop. Nothing may panic or overflow the stack, the step may
// not fail, and the heap afterwards stays under heapCeiling.
func FuzzPolicyStep(f *testing.F) {
	addPolicySeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		r := LoadSource("fuzz.hcl", src)
		if err := r.WriteDiagnostics(io.Discard, false); err != nil {
			t.Fatal(err)
		}
		if r.Policy != nil {
			loop, err := governor.New(governor.Config{
				Policy:   r.Policy,
				Sources:  []governor.Source{fixtureSource()},
				Actuator: &memActuator{vals: map[string]int64{}},
				Logger:   hclog.NewNullLogger(),
				Clock:    fixedClock{},
				Caps: governor.Capabilities{
					Controllers: map[string]bool{"memory": true, "cpu": true, "io": true, "pids": true},
					Reclaim:     true, Freeze: true, Kill: true,
				},
				SelfPath: "system.slice/governor.service",
				NumCPU:   4,
			})
			if err != nil {
				t.Fatalf("a compiled policy makes no loop: %v", err)
			}
			if err := loop.Step(context.Background()); err != nil {
				t.Fatalf("step: %v", err)
			}
			if err := loop.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > heapCeiling {
			t.Fatalf("heap holds %d MiB after a %d-byte policy; the ceiling is %d MiB", ms.HeapAlloc>>20, len(src), heapCeiling>>20)
		}
	})
}
