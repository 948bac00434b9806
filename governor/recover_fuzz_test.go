package governor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// FuzzRecoverState feeds arbitrary bytes as the state file through crash
// recovery: Recover, one Step (adoption, release of unclaimed knobs) and
// Close, with the real cgroupfs Actuator on a fixture tree. It checks that
// nothing panics, that the heap stays under fuzzHeapCeiling, and that no
// file of a cgroup the rules deny is written: the root, init.scope and the
// governor's own cgroup not at all, the protected class and systemd's own
// service only in memory.low/memory.min (protection, which a protect
// controller may give them).

const fuzzHeapCeiling = 256 << 20

// fuzzCgroup is one cgroup of the fixture tree and what may change in it.
type fuzzCgroup struct {
	id    governor.CgroupID
	path  string
	may   func(file string) bool
	files map[string]string // overrides of fuzzFiles
}

var fuzzFiles = map[string]string{
	"memory.high": "max", "memory.max": "max", "memory.low": "0", "memory.min": "0",
	"cpu.weight": "100", "cpu.max": "max 100000", "cpu.idle": "0", "io.weight": "default 100",
	"cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0", "cgroup.kill": "", "memory.reclaim": "",
}

func nothing(string) bool { return false }

var fuzzCgroups = []fuzzCgroup{
	{id: 1, path: "", may: nothing},
	{id: 2, path: "init.scope", may: nothing},
	{id: 3, path: "system.slice/web.service", may: func(f string) bool { return f == "memory.low" || f == "memory.min" },
		files: map[string]string{"cgroup.freeze": "1", "cgroup.events": "populated 1\nfrozen 1"}},
	// systemd's own services may receive protection, nothing else.
	{id: 4, path: "system.slice/systemd-journald.service", may: func(f string) bool { return f == "memory.low" || f == "memory.min" }},
	{id: 5, path: "governor.slice/governor.service", may: nothing},
	{id: 6, path: "batch.slice/job1", may: func(string) bool { return true }},
	{id: 7, path: "batch.slice/job2", may: func(string) bool { return true }},
}

func fuzzPolicy() *governor.Policy {
	never := governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeHost, Signal: governor.MemoryFullAvg10, Op: governor.Above, Value: 99}}}
	return &governor.Policy{
		Classes: []governor.Class{
			{Name: "web", Match: []string{"system.slice/web.service"}, Protected: true},
			{Name: "sys", Match: []string{"system.slice/*", "init.scope", "governor.slice/*"}},
			{Name: "batch", Match: []string{"batch.slice/*"}},
		},
		Protect:    []governor.ProtectController{{Name: "keep", Target: "web", Low: 1 << 30}},
		Suppress:   []governor.SuppressController{{Name: "squeeze", Target: "batch", Trigger: never, Knobs: []governor.SuppressKnob{{Knob: governor.CPUWeight, Step: governor.Step{Percent: 50}}}}},
		LastResort: []governor.LastResortController{{Name: "lr", Target: "batch", Grace: time.Second, Kill: true, Trigger: never}},
	}
}

func fuzzSeed(entries ...governor.StateEntry) []byte {
	b, _ := json.Marshal(map[string]any{"version": 1, "pid": 1, "entries": entries})
	return b
}

func FuzzRecoverState(f *testing.F) {
	var all []governor.StateEntry
	for _, c := range fuzzCgroups {
		for _, k := range []string{"memory.high", "memory.max", "memory.low", "memory.min", "cpu.weight", "cpu.max", "cpu.idle", "io.weight"} {
			kn, _ := governor.KnobByName(k)
			w := governor.Unlimited
			switch kn {
			case governor.MemoryLow, governor.MemoryMin, governor.CPUIdle:
				w = 0
			case governor.CPUWeight, governor.IOWeight:
				w = 100
			}
			all = append(all, governor.StateEntry{ID: c.id, Path: c.path, Knob: k, Original: "1", OrigVal: 1, Written: w, Owner: "keep"})
		}
		all = append(all, governor.StateEntry{ID: c.id, Path: c.path, Knob: "cgroup.freeze", Original: "0", Written: 1, Owner: "lr"})
	}
	// One seed per entry, not all in one: with several knobs held at once
	// the coverage of sorting the state file depends on map order, and the
	// fuzzer then spends its time re-checking inputs that only look new
	// (measured: 12 execs counted in 60 s with one 63-entry seed).
	for _, e := range all {
		f.Add(fuzzSeed(e))
	}
	f.Add(fuzzSeed(governor.StateEntry{ID: 3, Path: "system.slice/web.service", Knob: "memory.max", Original: "1", OrigVal: 1, Written: governor.Unlimited, Owner: "x"}))
	f.Add(fuzzSeed(governor.StateEntry{ID: 2, Path: "init.scope", Knob: "cpu.weight", Original: "1", OrigVal: 1, Written: 100, Owner: "squeeze"}))
	f.Add(fuzzSeed(governor.StateEntry{ID: 6, Path: "batch.slice/job1", Knob: "cpu.weight", Original: "../../init.scope", OrigVal: 5, Written: 100, Previous: 100, Owner: "squeeze"}))
	f.Add([]byte(`{"version":1,"entries":[{"id":3,"path":"system.slice/web.service","knob":"cgroup.freeze"},{"id":1,"path":"","knob":"cgroup.freeze"}]}`))
	f.Add([]byte(`{"version":2,"entries":[]}`))
	f.Add([]byte(`{"version":1,"entries":null}`))
	f.Add([]byte(`[`))
	f.Add([]byte{})

	// Every exec saves the state file (fsync of file and directory) a few
	// times: on a tmpfs that costs nothing, on a disk it holds the fuzzer
	// to some 20 execs a second.
	tmp := f.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "governor-fuzz-"); err == nil {
		tmp = d
		f.Cleanup(func() { os.RemoveAll(d) })
	}
	root := filepath.Join(tmp, "cg")
	stateDir := filepath.Join(tmp, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		f.Fatal(err)
	}
	want := map[string]string{} // file -> content the fixture starts with
	may := map[string]bool{}    // file -> may change
	for _, c := range fuzzCgroups {
		for name, v := range fuzzFiles {
			if o, ok := c.files[name]; ok {
				v = o
			}
			p := filepath.Join(root, c.path, name)
			want[p], may[p] = v, c.may(name)
		}
	}
	// reset does the same work whatever the previous input left behind:
	// coverage that depends on the previous exec misleads the fuzzer.
	reset := func(t *testing.T) {
		for p, v := range want {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.RemoveAll(stateDir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	src := &govtest.Source{}
	for _, c := range fuzzCgroups {
		src.Cgs = append(src.Cgs, governor.Sample{Ref: governor.Ref{ID: c.id, Path: c.path}, Populated: true})
	}
	act := cgroup.NewActuator(root, nil)
	state := filepath.Join(stateDir, "state.json")

	f.Fuzz(func(t *testing.T, data []byte) {
		reset(t)
		if err := os.WriteFile(state, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := governor.New(governor.Config{
			Policy: fuzzPolicy(), Sources: []governor.Source{src}, Actuator: act,
			Logger: hclog.NewNullLogger(), StatePath: state, SelfPath: "governor.slice/governor.service",
			Caps:         governor.Capabilities{Root: root, Controllers: map[string]bool{"memory": true, "cpu": true, "io": true}, Freeze: true, Kill: true, Reclaim: true},
			WriteTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Recover()
		ctx := context.Background()
		if err := l.Step(ctx); err != nil {
			t.Fatal(err)
		}
		_ = l.Close(ctx)
		for p, v := range want {
			if may[p] {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, []byte(v)) {
				t.Fatalf("%s written outside the deny-list/protected rules: %q, was %q\nstate file: %s",
					strings.TrimPrefix(p, root), b, v, data)
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > fuzzHeapCeiling {
			t.Fatalf("heap %d MiB after recovering a %d-byte state file, ceiling %d MiB", ms.HeapAlloc>>20, len(data), fuzzHeapCeiling>>20)
		}
	})
}
