package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/bpf"
	"github.com/governor-dev/governor/governor"
)

// Churn on the real cgroup2 hierarchy: cgroups are created and removed
// continuously while a Loop governs them with the real Source, Actuator,
// PSI triggers (armed through an Armer over Triggers, as the daemon does)
// and, when it loads, the BPF sensor. Some cgroups get a process so the
// BPF maps get entries for them. Afterwards file descriptors, goroutines,
// heap, armed triggers and BPF map entries must be back at their starting
// level.
//
// TestChurn is the short version in the default suite; TestChurnLong
// (GOVERNOR_CHURN_LONG=1, `make churn-long`) runs 1,000 cgroups a minute for
// 10 minutes. Both print the figures recorded in docs/RELIABILITY.md.

type churnLevels struct {
	fds, goroutines int
	heap            uint64
	triggers        int
	bpfEntries      int // -1: no sensor
}

func (l churnLevels) String() string {
	return fmt.Sprintf("fds %d, goroutines %d, heap %.1f MiB, armed triggers %d, bpf cg_index entries %d",
		l.fds, l.goroutines, float64(l.heap)/(1<<20), l.triggers, l.bpfEntries)
}

func measureChurn(t *testing.T, trig *Triggers, cgIndex *ebpf.Map) churnLevels {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l := churnLevels{fds: fdCount(t), goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, triggers: trig.Len(), bpfEntries: -1}
	if cgIndex != nil {
		l.bpfEntries = countEntries(t, cgIndex)
	}
	return l
}

// findCgIndex finds the sensor's cg_index map among the BPF maps this
// process holds (by the map_id in /proc/self/fdinfo), so a sensor loaded by
// another test binary running at the same time is never picked.
func findCgIndex(t *testing.T, before ebpf.MapID) *ebpf.Map {
	ours := map[ebpf.MapID]bool{}
	ents, _ := os.ReadDir("/proc/self/fdinfo")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "map_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
					ours[ebpf.MapID(id)] = true
				}
			}
		}
	}
	var found *ebpf.Map
	for id := range ours {
		if id <= before {
			continue
		}
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if info, err := m.Info(); err == nil && info.Name == "cg_index" && found == nil {
			found = m
			continue
		}
		m.Close()
	}
	return found
}

func lastMapID() ebpf.MapID {
	var id ebpf.MapID
	for {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			return id
		}
		id = next
	}
}

func countEntries(t *testing.T, m *ebpf.Map) int {
	var k uint64
	var v uint32
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Logf("iterating cg_index: %v", err)
	}
	return n
}

func entriesFor(m *ebpf.Map, ids map[governor.CgroupID]bool) int {
	var k uint64
	var v uint32
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		if ids[governor.CgroupID(k)] {
			n++
		}
	}
	return n
}

func runChurn(t *testing.T, total int, over time.Duration) {
	root := kernelRoot(t)
	if os.Getenv("GOVERNOR_CHURN_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	rel := testCgroup(t, root, "churn")
	parent := filepath.Join(root, rel)

	logs := &lineCounter{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
	trig, err := NewTriggers(log.Named("psi"))
	if err != nil {
		t.Fatal(err)
	}
	defer trig.Close()
	caps, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	// The governed hierarchy is the test's own subtree, so cgroups other
	// tests or builds create on this host at the same time do not count;
	// GOVERNOR_CHURN_WHOLE=1 governs the whole hierarchy, as the daemon
	// does.
	groot, pattern := parent, "c*"
	var filter func(string) bool
	if os.Getenv("GOVERNOR_CHURN_WHOLE") != "" {
		groot, pattern = root, rel+"/c*"
		filter = func(p string) bool { return p == "" || strings.HasPrefix(p, rel) }
	}
	src := NewSource(groot, SourceOptions{Logger: log.Named("source"), Filter: filter})
	sources := []governor.Source{src}
	var cgIndex *ebpf.Map
	before := lastMapID()
	if sensor, err := bpf.Load(bpf.Options{Logger: log.Named("bpf")}); err != nil {
		t.Logf("BPF sensor not loaded (%v): BPF map entries not checked", err)
	} else {
		defer sensor.Close()
		sources = append(sources, sensor)
		if cgIndex = findCgIndex(t, before); cgIndex == nil {
			t.Fatal("BPF sensor loaded but no cg_index map found")
		}
		defer cgIndex.Close()
	}

	// Conditions on the churned cgroups' own pressure: the loop arms a
	// memory and a cpu trigger on each. The rule acts on cpu.weight, which
	// this host's hierarchy lacks: the loop observes only (and says so
	// once), which is all the churn needs.
	policy := &governor.Policy{
		Tick:        100 * time.Millisecond,
		ReportEvery: time.Hour,
		Classes:     []governor.Class{{Name: "churn", Match: []string{pattern}}},
		Rules: []governor.Rule{{Name: "squeeze", Target: "churn", Knob: governor.CPUWeight, Down: true,
			Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1},
			Trigger: governor.Trigger{When: []governor.Condition{
				{Scope: governor.ScopeSelf, Signal: governor.MemorySomeAvg10, Op: governor.Above, Value: 10},
				{Scope: governor.ScopeSelf, Signal: governor.CPUSomeAvg10, Op: governor.Above, Value: 50},
			}}}},
	}
	steps := 0
	var stepMu sync.Mutex
	l, err := governor.New(governor.Config{
		Policy: policy, Sources: sources, Actuator: NewActuator(groot, log.Named("actuator")),
		Notifier: trig, Logger: log, Caps: caps, StatePath: filepath.Join(t.TempDir(), "state.json"),
		Armer: Armer{Triggers: trig, Root: groot}, MaxTriggers: 4096,
		AfterStep: func(governor.StepResult) { stepMu.Lock(); steps++; stepMu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	time.Sleep(500 * time.Millisecond) // first steps, capability warnings
	start := measureChurn(t, trig, cgIndex)

	// Each cgroup lives for about lifetime, so several Steps see it and
	// arm its triggers; every fourth gets a process for a while.
	lifetime := 600 * time.Millisecond
	interval := over / time.Duration(total)
	type live struct {
		dir  string
		id   governor.CgroupID
		dies time.Time
		proc *exec.Cmd
	}
	var alive []live
	ids := map[governor.CgroupID]bool{}
	maxTriggers, maxBPF := 0, 0
	kill := func(c live) {
		if c.proc != nil {
			c.proc.Process.Kill()
			c.proc.Wait()
		}
		for i := 0; ; i++ {
			err := os.Remove(c.dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if i == 200 {
				t.Errorf("rmdir %s: %v", c.dir, err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	began := time.Now()
	for i := 0; i < total; i++ {
		next := began.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(next))
		for len(alive) > 0 && time.Now().After(alive[0].dies) {
			kill(alive[0])
			alive = alive[1:]
		}
		dir := filepath.Join(parent, "c"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c := live{dir: dir, id: inode(t, dir), dies: time.Now().Add(lifetime)}
		ids[c.id] = true
		if i%4 == 0 {
			cmd := exec.Command("/bin/sh", "-c", "while :; do sleep 0.01; done")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			c.proc = cmd
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
		}
		alive = append(alive, c)
		maxTriggers = max(maxTriggers, trig.Len())
		if cgIndex != nil && i%10 == 9 {
			maxBPF = max(maxBPF, entriesFor(cgIndex, ids))
		}
	}
	for _, c := range alive {
		kill(c)
	}
	took := time.Since(began)
	// Let the loop see every removal and the sensor release its slots.
	time.Sleep(time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The sensor frees slots of gone cgroups when it samples: one more
	// Step, synchronously, after everything is gone.
	if err := l.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := measureChurn(t, trig, cgIndex)
	if p := os.Getenv("GOVERNOR_CHURN_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
	closeSource(src)
	stepMu.Lock()
	n := steps
	stepMu.Unlock()

	t.Logf("churn: %d cgroups in %v (%d with a process), %d steps, at most %d triggers armed at once", total, took.Round(time.Millisecond), (total+3)/4, n, maxTriggers)
	t.Logf("before: %s", start)
	t.Logf("after:  %s", end)
	if cgIndex != nil {
		t.Logf("bpf cg_index entries for churned cgroups: at most %d during, %d after", maxBPF, entriesFor(cgIndex, ids))
		if maxBPF == 0 {
			t.Errorf("the BPF sensor never indexed a churned cgroup: the churn did not exercise its maps")
		}
		if left := entriesFor(cgIndex, ids); left != 0 {
			t.Errorf("%d cg_index entries left for removed cgroups", left)
		}
		// The map's total follows whatever else runs on the host (it
		// indexes every task's cgroup); only the churned ones must go.
	}
	if maxTriggers == 0 {
		t.Errorf("no PSI trigger was ever armed: the churn did not exercise triggers; log: %s", logs)
	}
	if end.triggers != start.triggers {
		t.Errorf("armed triggers %d -> %d", start.triggers, end.triggers)
	}
	if end.fds > start.fds {
		t.Errorf("fds %d -> %d", start.fds, end.fds)
	}
	if end.goroutines > start.goroutines+2 {
		t.Errorf("goroutines %d -> %d", start.goroutines, end.goroutines)
	}
	if end.heap > start.heap+8<<20 {
		t.Errorf("heap %d -> %d", start.heap, end.heap)
	}
	for _, line := range logs.errors {
		t.Errorf("error logged during churn: %s", line)
	}
	t.Logf("log lines: %s", logs)
}

// lineCounter counts log lines by message instead of keeping them, so the
// log does not count as heap growth; it keeps error lines.
type lineCounter struct {
	mu     sync.Mutex
	counts map[string]int
	errors []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if strings.Contains(line, "[ERROR]") && len(c.errors) < 20 {
			c.errors = append(c.errors, line)
		}
		// "2026-...Z [WARN]  msg: key=value": keep level and message.
		if i := strings.Index(line, " ["); i >= 0 {
			line = line[i+1:]
		}
		if i := strings.Index(line, ": "); i >= 0 {
			line = line[:i]
		}
		c.counts[line]++
	}
	return len(p), nil
}

func (c *lineCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for m, n := range c.counts {
		parts = append(parts, fmt.Sprintf("%q x%d", m, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// TestChurnMedium (GOVERNOR_CHURN_MEDIUM=1): 2,000 cgroups in a minute, to
// look at heap growth per cgroup without waiting for the long run.
func TestChurnMedium(t *testing.T) {
	if os.Getenv("GOVERNOR_CHURN_MEDIUM") == "" {
		t.Skip("set GOVERNOR_CHURN_MEDIUM=1")
	}
	runChurn(t, 2000, time.Minute)
}

func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	runChurn(t, 200, 10*time.Second)
}

func TestChurnLong(t *testing.T) {
	if os.Getenv("GOVERNOR_CHURN_LONG") == "" {
		t.Skip("set GOVERNOR_CHURN_LONG=1 (make churn-long): 1,000 cgroups a minute for 10 minutes")
	}
	runChurn(t, 10000, 10*time.Minute)
}
