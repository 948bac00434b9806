package bpf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/internal/procfs"
)

// The privileged tests re-execute the test binary as workload processes:
// GOVERNOR_BPF_CHILD selects the role, GOVERNOR_BPF_CGROUP the cgroup the
// child moves itself into before it starts.
const (
	envChild  = "GOVERNOR_BPF_CHILD"
	envCgroup = "GOVERNOR_BPF_CGROUP"
)

// unifiedRoot is the cgroup2 mount: /sys/fs/cgroup/unified on the hybrid
// development and CI machines, /sys/fs/cgroup on a pure v2 host.
var unifiedRoot = func() string {
	if m, err := procfs.Cgroup2Mount(); err == nil {
		return m
	}
	return "/sys/fs/cgroup/unified"
}()

func TestMain(m *testing.M) {
	if role := os.Getenv(envChild); role != "" {
		os.Exit(child(role))
	}
	os.Exit(m.Run())
}

func child(role string) int {
	if cg := os.Getenv(envCgroup); cg != "" {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fmt.Fprintln(os.Stderr, "join cgroup:", err)
			return 2
		}
	}
	runtime.LockOSThread()
	switch role {
	case "spin":
		for {
		}
	case "writer":
		// One byte per millisecond into fd 3 until killed.
		b := []byte{1}
		for {
			if _, err := unix.Write(3, b); err != nil {
				return 0
			}
			ts := unix.Timespec{Nsec: 1_000_000}
			_ = unix.Nanosleep(&ts, nil)
		}
	case "unprivileged-load":
		// Run as nobody: Load must fail with ErrUnavailable and log it.
		var logs bytes.Buffer
		_, err := Load(Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
		if n := strings.Count(logs.String(), "PSI alone"); n != 1 {
			fmt.Printf("other: %d log lines about running on PSI alone:\n%s", n, logs.String())
			return 0
		}
		switch {
		case err == nil:
			fmt.Println("loaded")
		case errors.Is(err, ErrUnavailable):
			fmt.Println("unavailable:", err)
		default:
			fmt.Println("other:", err)
		}
		return 0
	case "alloc":
		// Touch 512 MiB, page by page, until the cgroup's memory.max OOM
		// kills us.
		var keep [][]byte
		for i := 0; i < 512; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println(len(keep))
		return 0
	case "reader":
		// Blocking reads from fd 3 until EOF; prints how many reads returned
		// data (each one followed a sleep in read, i.e. a wakeup).
		var buf [1]byte
		n := 0
		for {
			k, err := unix.Read(3, buf[:])
			if err == unix.EINTR {
				continue
			}
			if k <= 0 || err != nil {
				fmt.Println(n)
				return 0
			}
			n++
		}
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// requireBPF skips without root and fails if the sensors do not load: the
// CI kernel (6.18, BTF) must support them.
func requireBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := Supported(); err != nil {
		t.Fatalf("BPF should be supported on this kernel: %v", err)
	}
}

type testCgroup struct {
	governor.Ref
	dir string
}

func mkCgroup(t *testing.T, parent, name string) testCgroup {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmCgroup(dir) })
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(unifiedRoot, dir)
	return testCgroup{Ref: governor.Ref{ID: governor.CgroupID(st.Ino), Path: rel}, dir: dir}
}

// rmCgroup removes a cgroup after moving any leftover process out of it.
func rmCgroup(dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type procs struct {
	mu   sync.Mutex
	cmds []*exec.Cmd
}

// start runs the test binary as role in cg, pinned to cpu.
func (p *procs) start(t *testing.T, role string, cg testCgroup, cpu int, extra *os.File, stdout *bytes.Buffer) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("taskset", "-c", strconv.Itoa(cpu), self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+role, envCgroup+"="+cg.dir, "GOMAXPROCS=1")
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// Die with the test binary, even if it panics before its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.cmds = append(p.cmds, cmd)
	p.mu.Unlock()
	return cmd
}

func (p *procs) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cmds {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	p.cmds = nil
}

func snapshotOf(cgs ...testCgroup) *governor.Snapshot {
	snap := &governor.Snapshot{Time: time.Now()}
	for _, c := range cgs {
		snap.Cgroups = append(snap.Cgroups, &governor.Sample{Ref: c.Ref, Populated: true})
	}
	return snap
}

// histCount reads a cgroup's total number of run-queue samples straight from
// the maps (false when it has no entry).
func histCount(t *testing.T, s *Sensor, id governor.CgroupID) (uint64, bool) {
	t.Helper()
	var slot uint32
	key := uint64(id)
	if err := s.objs.CgIndex.Lookup(&key, &slot); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return 0, false
		}
		t.Fatal(err)
	}
	var v governorCgStats
	if err := s.objs.CgSlots.Lookup(&slot, &v); err != nil {
		t.Fatal(err)
	}
	if v.Cgid != key {
		t.Fatalf("slot %d of cgroup %d belongs to %d", slot, key, v.Cgid)
	}
	var n uint64
	for _, c := range v.Hist {
		n += uint64(c)
	}
	return n, true
}

func pairsWith(t *testing.T, s *Sensor, id governor.CgroupID) int {
	t.Helper()
	var k governorPairKey
	var n uint64
	found := 0
	it := s.objs.PreemptPairs.Iterate()
	for it.Next(&k, &n) {
		if k.Victim == uint64(id) || k.Offender == uint64(id) {
			found++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

func testLogger(t *testing.T, buf *bytes.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "bpf", Level: hclog.Debug, Output: buf})
}

// TestSensorAttribution is the end-to-end check on the real kernel:
//   - cgroup A: two CPU-bound tasks and a pipe writer, all pinned to CPU 0;
//   - cgroup C: one more CPU-bound task on CPU 0 (the noisy neighbour);
//   - cgroup B: the pipe's reader alone on CPU 1, woken by A's writer;
//   - cgroup D: empty.
//
// A must show the contention; the reader's wakeups must land in B (its
// wakeups come from A, and when it is switched in the previous task is the
// idle task, so attributing to the waker's or prev's cgroup would leave B
// almost empty); D must get no entries; after C is removed and a snapshot
// without it is sampled, C's entries must be gone.
func TestSensorAttribution(t *testing.T) {
	requireBPF(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	for _, v := range loadVariants {
		t.Run(v.name, func(t *testing.T) { testAttribution(t, v) })
	}
}

// loadVariant is one way Load can set the sensors up; the tests run each.
type loadVariant struct {
	name string
	mode Mode
	wait WaitSource
}

var loadVariants = []loadVariant{
	{"tp_btf", ModeTPBTF, WaitSchedInfo},
	{"tp_btf_stamps", ModeTPBTF, WaitStamps},
	{"raw_tp", ModeRawTP, WaitStamps},
}

// requireFeature skips the test when err says this kernel lacks a BPF
// feature (ebpf.ErrNotSupported: Debian 11's 5.10 has no task storage maps,
// so no tp_btf set) and fails it on any other error: a probe that breaks on
// a kernel that has the feature is a bug, not a reason to skip.
func requireFeature(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, ebpf.ErrNotSupported):
		t.Skipf("%s not supported on %s: %v", what, kernelRelease(), err)
	default:
		t.Fatalf("probing %s: %v", what, err)
	}
}

// require skips when the kernel cannot load the variant.
func (v loadVariant) require(t *testing.T) {
	t.Helper()
	if v.mode == ModeTPBTF {
		requireFeature(t, "the tp_btf program set", haveTPBTF())
	}
	if v.wait == WaitSchedInfo {
		requireFeature(t, "sched_info run-queue waits", schedInfoSupported())
	}
}

// load loads the variant and fails the test when Load picked another; it
// skips where the kernel lacks what the variant needs.
func (v loadVariant) load(t *testing.T, opts Options) *Sensor {
	t.Helper()
	v.require(t)
	var logs bytes.Buffer
	opts.Logger = testLogger(t, &logs)
	opts.ForceRawTP = v.mode == ModeRawTP
	opts.ForceStamps = v.wait == WaitStamps
	s, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Mode() != v.mode || s.WaitSource() != v.wait {
		s.Close()
		t.Fatalf("loaded %s with %s waits, want %s with %s; log:\n%s", s.Mode(), s.WaitSource(), v.mode, v.wait, logs.String())
	}
	return s
}

func testAttribution(t *testing.T, v loadVariant) {
	s := v.load(t, Options{})
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-test-%d-%s", os.Getpid(), v.name))
	a := mkCgroup(t, base.dir, "a")
	b := mkCgroup(t, base.dir, "b")
	c := mkCgroup(t, base.dir, "c")
	d := mkCgroup(t, base.dir, "d")
	ctx := context.Background()
	if err := s.Sample(ctx, snapshotOf(base, a, b, c, d)); err != nil {
		t.Fatal(err)
	}

	var p procs
	defer p.stop()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var readerOut bytes.Buffer
	reader := p.start(t, "reader", b, 1, pr, &readerOut)
	writer := p.start(t, "writer", a, 0, pw, nil)
	pr.Close()
	pw.Close()
	p.start(t, "spin", a, 0, nil, nil)
	p.start(t, "spin", a, 0, nil, nil)
	p.start(t, "spin", c, 0, nil, nil)

	time.Sleep(2500 * time.Millisecond)

	// Mid-run sample: A is contended right now.
	snap := snapshotOf(base, a, b, c, d)
	if err := s.Sample(ctx, snap); err != nil {
		t.Fatal(err)
	}
	sa, sb, sd := snap.Cgroups[1], snap.Cgroups[2], snap.Cgroups[4]
	p50a, ok := sa.Get(governor.RunqP50)
	if !ok {
		t.Fatalf("A has no runq.p50")
	}
	p90a, _ := sa.Get(governor.RunqP90)
	p99a, _ := sa.Get(governor.RunqP99)
	delayA, _ := sa.Get(governor.RunqDelay)
	preA, _ := sa.Get(governor.RunqPreemptedByOthers)
	t.Logf("A: p50 %.3gms p90 %.3gms p99 %.3gms delay %.0f%% preempted by others %.0f/s", p50a*1e3, p90a*1e3, p99a*1e3, delayA, preA)
	// Three CPU hogs and a writer share CPU 0: the hogs wait for one
	// another for whole slices (milliseconds). Most of A's samples are the
	// writer's wakeups, which EEVDF serves quickly, so the tail shows it.
	if p99a < 1e-3 {
		t.Errorf("A's runq.p99 %.3gms, want >= 1ms under contention", p99a*1e3)
	}
	if delayA < 80 {
		t.Errorf("A's runq.delay %.0f%%, want > 80%% (two or more tasks waiting on CPU 0)", delayA)
	}
	if preA <= 0 {
		t.Errorf("A's runq.preempted %v, want > 0 (C's hog shares CPU 0)", preA)
	}
	t.Logf("ids: A %d, B %d, C %d", a.ID, b.ID, c.ID)
	var sawC, sawSelf bool
	for _, o := range s.TopOffenders(a.ID) {
		t.Logf("A preempted by %d: %d (%.0f/s)", o.Cgroup, o.Preemptions, o.PerSecond)
		sawC = sawC || o.Cgroup == c.ID
		sawSelf = sawSelf || o.Cgroup == a.ID
	}
	if !sawC {
		t.Errorf("C is not among A's offenders")
	}
	if !sawSelf {
		t.Errorf("A's own tasks are not among A's offenders (two hogs share CPU 0)")
	}
	// The sample carries the offenders for the governor: others only.
	sawC = false
	for _, p := range sa.PreemptedBy {
		if p.Cgroup == a.ID || p.Cgroup == 0 {
			t.Errorf("A's PreemptedBy lists %d (itself or idle): %+v", p.Cgroup, sa.PreemptedBy)
		}
		sawC = sawC || p.Cgroup == c.ID && p.PerSecond > 0
	}
	if !sawC {
		t.Errorf("C is not in A's PreemptedBy: %+v", sa.PreemptedBy)
	}
	p50b, okb := sb.Get(governor.RunqP50)
	p90b, _ := sb.Get(governor.RunqP90)
	p99b, _ := sb.Get(governor.RunqP99)
	t.Logf("B: p50 %.3gms p90 %.3gms p99 %.3gms", p50b*1e3, p90b*1e3, p99b*1e3)
	if !okb {
		t.Errorf("B has no runq.p50")
	} else if p90b >= p90a {
		t.Errorf("B's runq.p90 %.3gms >= A's %.3gms: the reader on an idle CPU should wait less", p90b*1e3, p90a*1e3)
	}
	if _, ok := sd.Get(governor.RunqP50); ok {
		t.Errorf("empty cgroup D has runq.p50")
	}
	if v, ok := sd.Get(governor.RunqDelay); !ok || v != 0 {
		t.Errorf("empty cgroup D: runq.delay %v %v, want 0 present", v, ok)
	}

	// Stop the writer; the reader sees EOF and reports its reads.
	_ = writer.Process.Kill()
	_ = writer.Wait()
	if err := reader.Wait(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	reads, err := strconv.Atoi(strings.TrimSpace(readerOut.String()))
	if err != nil {
		t.Fatalf("reader output %q: %v", readerOut.String(), err)
	}
	p.stop()
	t.Logf("drops: %+v", s.Drops())
	nb, _ := histCount(t, s, b.ID)
	t.Logf("B: reader woke for %d reads; B has %d run-queue samples", reads, nb)
	if reads < 100 {
		t.Fatalf("reader did only %d reads", reads)
	}
	if nb < uint64(reads)/2 {
		t.Errorf("B has %d samples for %d reads: the reader's wakeups are not attributed to B", nb, reads)
	}
	if _, ok := histCount(t, s, d.ID); ok {
		t.Errorf("empty cgroup D has a cgroup entry")
	}
	if pairsWith(t, s, d.ID) != 0 {
		t.Errorf("empty cgroup D has preemption entries")
	}

	// Remove C; a snapshot without it must drop its entries.
	if _, ok := histCount(t, s, c.ID); !ok {
		t.Fatalf("C has no entry before removal")
	}
	if pairsWith(t, s, c.ID) == 0 {
		t.Fatalf("C has no preemption entries before removal")
	}
	rmCgroup(c.dir)
	if err := s.Sample(ctx, snapshotOf(base, a, b, d)); err != nil {
		t.Fatal(err)
	}
	if _, ok := histCount(t, s, c.ID); ok {
		t.Errorf("removed cgroup C still has a cgroup entry")
	}
	if n := pairsWith(t, s, c.ID); n != 0 {
		t.Errorf("removed cgroup C still has %d preemption entries", n)
	}
	if _, ok := s.prev[uint64(c.ID)]; ok {
		t.Errorf("removed cgroup C still has user-space state")
	}
}

// TestSensorMapFull checks that a full cgroup map is counted and logged.
func TestSensorMapFull(t *testing.T) {
	requireBPF(t)
	var logs bytes.Buffer
	s, err := Load(Options{Logger: testLogger(t, &logs), MaxCgroups: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-full-%d", os.Getpid()))
	a := mkCgroup(t, base.dir, "a")
	b := mkCgroup(t, base.dir, "b")
	var p procs
	defer p.stop()
	p.start(t, "spin", a, 0, nil, nil)
	p.start(t, "spin", b, 0, nil, nil)
	time.Sleep(500 * time.Millisecond)
	if err := s.Sample(context.Background(), snapshotOf(base, a, b)); err != nil {
		t.Fatal(err)
	}
	if d := s.Drops(); d.CgroupMapFull == 0 {
		t.Errorf("no drops counted with MaxCgroups=1: %+v", d)
	}
	if !strings.Contains(logs.String(), "BPF maps full") {
		t.Errorf("no log line for the full map; log:\n%s", logs.String())
	}
}

func TestProbeOOMLayout(t *testing.T) {
	requireBPF(t)
	// The attached set below is the tp_btf set with sched_info waits.
	loadVariant{mode: ModeTPBTF, wait: WaitSchedInfo}.require(t)
	s, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	for _, p := range s.Stats() {
		names = append(names, p.Tracepoint)
	}
	// 6.18 (and Debian's 6.1) have every tracepoint the sensors use, and
	// sched_info: no wakeup programs.
	want := []string{"sched_switch",
		"mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end",
		"mm_vmscan_memcg_reclaim_begin", "mm_vmscan_memcg_reclaim_end", "mark_victim"}
	t.Logf("fentry memstall programs loaded: %v", s.memstall)
	if s.WaitSource() != WaitSchedInfo {
		t.Errorf("run-queue waits from %s, want %s", s.WaitSource(), WaitSchedInfo)
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("attached %v, want %v", names, want)
	}
	// The memstall pair, where fentry loads (Debian's 6.1; not this
	// development host, which refuses fentry with EPERM), is attached by
	// the first Watch of memory stalls, not before.
	if s.memstall {
		if err := s.Watch(governor.Ref{ID: 1}, governor.Watch{MemStall: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		s.Unwatch(1)
		names = names[:0]
		for _, p := range s.Stats() {
			names = append(names, p.Tracepoint)
		}
		want = append(want, "psi_memstall_leave", "psi_memstall_enter")
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("attached after a Watch of memory stalls %v, want %v", names, want)
		}
	}
	if s.rb == nil {
		t.Errorf("no OOM ring buffer reader")
	}
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	// 6.8+ passes (struct task_struct *, uid_t), older kernels (int pid).
	l, err := probeOOMLayout(kspec)
	t.Logf("oom:mark_victim layout %d on %s", l, kernelRelease())
	if err != nil {
		t.Errorf("probeOOMLayout: %v", err)
	}
}

func TestLoadBadOptions(t *testing.T) {
	if _, err := Load(Options{HistogramSubBuckets: 3}); err == nil {
		t.Fatal("HistogramSubBuckets 3 accepted")
	}
}

// TestOOMEventPlumbing runs the raw_tp mark_victim program through
// BPF_PROG_TEST_RUN (a real OOM kill needs a memory-limited cgroup, which
// this host's hybrid hierarchy lacks) and checks that the ring buffer event
// reaches Sample as an OOM kill rate. The fake argument is a NULL task, so
// the event carries cgroup id 0.
func TestOOMEventPlumbing(t *testing.T) {
	requireBPF(t)
	var logs bytes.Buffer
	s, err := Load(Options{Logger: testLogger(t, &logs), ForceRawTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prog := s.objs.RawMarkVictim
	if prog == nil {
		t.Fatal("raw_mark_victim not loaded")
	}
	for i := 0; i < 3; i++ {
		if _, err := prog.Run(&ebpf.RunOptions{Context: make([]byte, 8)}); err != nil {
			t.Fatalf("test run: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := s.oomCounts[0]
		s.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d OOM events read, want 3", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The window is measured on the snapshot's clock (the loop's), not
	// the sensor's own: 3 kills in 6 s of it are 0.5/s.
	snap := &governor.Snapshot{Time: s.last.Add(6 * time.Second), Cgroups: []*governor.Sample{{Ref: governor.Ref{ID: 0}}}}
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if v, ok := snap.Cgroups[0].Get(governor.OOMKills); !ok || v != 0.5 {
		t.Errorf("oom.kills = %v/s (present %v), want 3 kills in the snapshot clock's 6 s: 0.5/s", v, ok)
	}
	if k := s.RecentOOMKills(); len(k) != 3 || k[0].PID != 0 || k[2].Time.IsZero() {
		t.Errorf("RecentOOMKills = %+v, want 3 kills of pid 0", k)
	}
	if !strings.Contains(logs.String(), "OOM kill") {
		t.Errorf("no log line for the OOM kill:\n%s", logs.String())
	}
}

// TestLoadUnprivileged checks that Load without privileges fails with an
// error wrapping ErrUnavailable (what the daemon logs once before going on
// with PSI alone).
func TestLoadUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary's directory is private to root: run a copy.
	dir, err := os.MkdirTemp("", "governor-bpf-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "bpf.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envChild+"=unprivileged-load")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.HasPrefix(string(out), "unavailable:") {
		t.Errorf("unprivileged Load: %s, want an error wrapping ErrUnavailable", out)
	}
}

// TestReclaimPlumbing runs the raw_tp reclaim begin/end programs through
// BPF_PROG_TEST_RUN on one locked thread, 100 ms apart: the programs run as
// the calling thread (current), so the stall is charged to the test's own
// cgroup, as a real direct or memcg reclaim is charged to the stalled task's
// cgroup. Real reclaim cannot be provoked on this host (no memory controller
// in the v2 hierarchy, and the v1 hierarchies are off limits).
func TestReclaimPlumbing(t *testing.T) {
	requireBPF(t)
	s, err := Load(Options{ForceRawTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	self := selfCgroup(t)
	snap := snapshotOf(self)
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for _, pair := range [][2]*ebpf.Program{
		{s.objs.RawDirectReclaimBegin, s.objs.RawDirectReclaimEnd},
		{s.objs.RawMemcgReclaimBegin, s.objs.RawMemcgReclaimEnd},
	} {
		runReclaim(t, pair, 100*time.Millisecond)
	}
	window := time.Since(start)
	snap = snapshotOf(self)
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	v, ok := snap.Cgroups[0].Get(governor.ReclaimStall)
	// 200 ms of stall in a window a little longer than that.
	t.Logf("reclaim.stall %.1f%% over ~%v", v, window)
	if !ok || v < 20 || v > 100 {
		t.Errorf("reclaim.stall = %.1f%% (present %v), want 200ms of stall in the window", v, ok)
	}
}

// runReclaim test-runs a reclaim begin/end pair of raw_tp programs on this
// thread (the caller locks it), held apart: a reclaim of that length by the
// test's task, as the programs see it.
func runReclaim(t *testing.T, pair [2]*ebpf.Program, held time.Duration) {
	t.Helper()
	for edge, p := range pair {
		if p == nil {
			t.Fatalf("reclaim program %d of %v not loaded", edge, pair)
		}
		if _, err := p.Run(&ebpf.RunOptions{Context: make([]byte, 8)}); err != nil {
			t.Fatalf("test run: %v", err)
		}
		if edge == 0 {
			time.Sleep(held)
		}
	}
}

// selfCgroup is the test process's own cgroup in the unified hierarchy.
func selfCgroup(t *testing.T) testCgroup {
	t.Helper()
	p, err := procfs.ProcCgroup(0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(unifiedRoot, p)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(unifiedRoot, dir)
	if rel == "." {
		rel = ""
	}
	return testCgroup{Ref: governor.Ref{ID: governor.CgroupID(st.Ino), Path: rel}, dir: dir}
}

// TestRealOOMAndReclaim provokes memcg reclaim and an OOM kill in a cgroup
// with a small memory.max and checks that both land on that cgroup. It needs
// the memory controller in the cgroup2 hierarchy, which the hybrid
// development hosts lack: there it skips, and it runs in the VM test bed
// (pure cgroup v2).
func TestRealOOMAndReclaim(t *testing.T) {
	requireBPF(t)
	ctrl, err := os.ReadFile(filepath.Join(unifiedRoot, "cgroup.controllers"))
	if err != nil || !strings.Contains(" "+string(ctrl)+" ", " memory ") {
		t.Skip("no memory controller in the cgroup2 hierarchy")
	}
	var logs bytes.Buffer
	s, err := Load(Options{Logger: testLogger(t, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-oom-%d", os.Getpid()))
	if err := os.WriteFile(filepath.Join(base.dir, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		t.Fatalf("enabling memory: %v", err)
	}
	m := mkCgroup(t, base.dir, "m")
	if err := os.WriteFile(filepath.Join(m.dir, "memory.max"), []byte("64M"), 0); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(m.dir, "memory.swap.max"), []byte("0"), 0)
	if err := s.Sample(context.Background(), snapshotOf(base, m)); err != nil {
		t.Fatal(err)
	}
	// The fast path sees the reclaim as it happens.
	if err := s.Watch(m.Ref, governor.Watch{MemStall: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var p procs
	defer p.stop()
	cmd := p.start(t, "alloc", m, 0, nil, nil)
	err = cmd.Wait()
	t.Logf("allocator: %v", err)
	var found bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !found; time.Sleep(50 * time.Millisecond) {
		for _, k := range s.RecentOOMKills() {
			t.Logf("OOM kill: %+v", k)
			found = found || k.Cgroup == m.ID
		}
	}
	if !found {
		t.Errorf("no OOM kill attributed to cgroup %d; log:\n%s", m.ID, logs.String())
	}
	snap := snapshotOf(base, m)
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	kills, _ := snap.Cgroups[1].Get(governor.OOMKills)
	stall, _ := snap.Cgroups[1].Get(governor.ReclaimStall)
	t.Logf("m: oom.kills %.3g/s reclaim.stall %.3g%%", kills, stall)
	if kills <= 0 {
		t.Errorf("oom.kills of m = %v, want > 0", kills)
	}
	if stall <= 0 {
		t.Errorf("reclaim.stall of m = %v, want > 0 (memcg reclaim before the OOM kill)", stall)
	}
	select {
	case r := <-s.Wake():
		t.Logf("fast path: %d alerts, first for cgroup %d", s.Alerts(), r.ID)
		if r.ID != m.ID {
			t.Errorf("fast-path alert for cgroup %d, want m (%d)", r.ID, m.ID)
		}
	default:
		t.Errorf("no fast-path alert for m's reclaim (watched for 1ms of reclaim in 100ms)")
	}
	if v, _ := snap.Cgroups[0].Get(governor.OOMKills); v != 0 {
		t.Errorf("oom.kills of the parent = %v, want 0 (signals are per cgroup)", v)
	}
}

// TestHaveSchedInfo: the sched_info program is chosen only where kernel BTF
// has task_struct.sched_info with pcount and run_delay.
func TestHaveSchedInfo(t *testing.T) {
	u64 := &btf.Int{Name: "unsigned long long", Size: 8}
	spec := func(task *btf.Struct) *btf.Spec {
		t.Helper()
		b, err := btf.NewBuilder([]btf.Type{task}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := b.Marshal(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pid := btf.Member{Name: "pid", Type: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}
	full := &btf.Struct{Name: "sched_info", Size: 16, Members: []btf.Member{
		{Name: "pcount", Type: u64}, {Name: "run_delay", Type: u64, Offset: 64}}}
	partial := &btf.Struct{Name: "sched_info", Size: 8, Members: []btf.Member{{Name: "pcount", Type: u64}}}
	for _, c := range []struct {
		name string
		task *btf.Struct
		ok   bool
	}{
		{"with sched_info", &btf.Struct{Name: "task_struct", Size: 24, Members: []btf.Member{pid, {Name: "sched_info", Type: full, Offset: 64}}}, true},
		{"without CONFIG_SCHED_INFO", &btf.Struct{Name: "task_struct", Size: 4, Members: []btf.Member{pid}}, false},
		{"without run_delay", &btf.Struct{Name: "task_struct", Size: 16, Members: []btf.Member{pid, {Name: "sched_info", Type: partial, Offset: 64}}}, false},
	} {
		err := haveSchedInfo(spec(c.task))
		if (err == nil) != c.ok {
			t.Errorf("%s: haveSchedInfo = %v, want ok %v", c.name, err, c.ok)
		}
		// A kernel built without it lacks a feature (tests skip there).
		if c.name == "without CONFIG_SCHED_INFO" && !errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("%s: %v does not wrap ebpf.ErrNotSupported", c.name, err)
		}
	}
	if kspec, err := btf.LoadKernelSpec(); err == nil {
		t.Logf("this kernel: %v", haveSchedInfo(kspec))
	}
}

// TestSelectPrograms: each variant loads its own programs of the generated
// specs, no program of the other set, and none of a missing group.
func TestSelectPrograms(t *testing.T) {
	spec, err := loadGovernor()
	if err != nil {
		t.Fatal(err)
	}
	var specs governorSpecs
	if err := spec.Assign(&specs); err != nil {
		t.Fatal(err)
	}
	noReclaim := map[string]error{"direct": errors.New("x"), "memcg": errors.New("x")}
	for _, c := range []struct {
		name    string
		v       int
		missing map[string]error
		want    string
	}{
		{"tp_btf sched_info", inBTFSchedInfo, nil, "btf_sched_switch_si btf_direct_reclaim_begin btf_direct_reclaim_end btf_memcg_reclaim_begin btf_memcg_reclaim_end btf_mark_victim"},
		{"tp_btf stamps", inBTFStamps, nil, "btf_sched_wakeup btf_sched_wakeup_new btf_sched_switch btf_direct_reclaim_begin btf_direct_reclaim_end btf_memcg_reclaim_begin btf_memcg_reclaim_end btf_mark_victim"},
		{"raw_tp", inRaw, nil, "raw_sched_wakeup raw_sched_wakeup_new raw_sched_switch raw_sched_process_free raw_direct_reclaim_begin raw_direct_reclaim_end raw_memcg_reclaim_begin raw_memcg_reclaim_end raw_mark_victim"},
		{"raw_tp without reclaim", inRaw, noReclaim, "raw_sched_wakeup raw_sched_wakeup_new raw_sched_switch raw_sched_process_free raw_mark_victim"},
		{"tp_btf without oom", inBTFSchedInfo, map[string]error{"oom": errors.New("x")}, "btf_sched_switch_si btf_direct_reclaim_begin btf_direct_reclaim_end btf_memcg_reclaim_begin btf_memcg_reclaim_end"},
	} {
		var got []string
		for _, a := range selectPrograms(&specs.governorProgramSpecs, c.v, c.missing) {
			got = append(got, a.spec.Name)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: selected %v, want %s", c.name, got, c.want)
		}
	}
	if got, want := strings.Join(Tracepoints(), " "), "sched_wakeup sched_wakeup_new sched_switch sched_process_free mm_vmscan_direct_reclaim_begin mm_vmscan_direct_reclaim_end mm_vmscan_memcg_reclaim_begin mm_vmscan_memcg_reclaim_end mark_victim"; got != want {
		t.Errorf("Tracepoints() = %s, want %s", got, want)
	}
}

// TestLoadedObjects: the typed objects point at what the raw_tp set loaded
// and are nil for the tp_btf set's programs and task storage map.
func TestLoadedObjects(t *testing.T) {
	requireBPF(t)
	s, err := Load(Options{ForceRawTP: true, MaxCgroups: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := &s.objs
	if o.RawSchedSwitch == nil || o.RawSchedProcessFree == nil || o.RawStamps == nil || o.CgSlots == nil || o.HistSubbits == nil {
		t.Errorf("raw_tp objects missing: %+v", o)
	}
	if o.BtfSchedSwitch != nil || o.BtfSchedSwitchSi != nil || o.TaskStamps != nil {
		t.Errorf("tp_btf objects loaded with ForceRawTP: %+v", o)
	}
	if n := o.CgSlots.MaxEntries(); n != 64 {
		t.Errorf("cg_slots has %d entries, want MaxCgroups 64", n)
	}
	if len(s.progs) != 9 || !s.reclaim || s.rb == nil {
		t.Errorf("attached %d programs (reclaim %v, oom reader %v), want 9 with both", len(s.progs), s.reclaim, s.rb != nil)
	}
}

// TestReadSlotMapped: the sensor reads cg_slots from its mapping (every
// kernel we load on, 5.10+, maps arrays), and a slot read that way is
// the slot a lookup reads, at every slot position (the stride between
// elements included): values written from user space into slots no
// cgroup holds are read back the same both ways.
func TestReadSlotMapped(t *testing.T) {
	requireBPF(t)
	const slots = 4096
	s, err := Load(Options{MaxCgroups: slots})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.slots == nil {
		t.Fatal("cg_slots is not mapped")
	}
	// Slots BPF has not taken (free_slots is a queue, filled from 0:
	// the high slots go last, after thousands of cgroups with tasks): a
	// taken one would see the programs add to what is written.
	for _, slot := range []uint32{slots - 1, slots - 2, slots - 9, slots / 2} {
		want := governorCgStats{Cgid: 1<<40 + uint64(slot), WaitNs: 3 * uint64(slot), ReclaimNs: 5, Reclaims: 7}
		for i := range want.Hist {
			want.Hist[i] = uint32(i)*11 + slot
		}
		if err := s.objs.CgSlots.Update(&slot, &want, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
		var mapped, looked governorCgStats
		if err := s.readSlot(slot, &mapped); err != nil {
			t.Fatal(err)
		}
		if err := s.objs.CgSlots.Lookup(&slot, &looked); err != nil {
			t.Fatal(err)
		}
		if mapped != want || looked != want {
			t.Errorf("slot %d: mapped %+v\nlookup %+v\nwant %+v", slot, mapped, looked, want)
		}
	}
	if err := s.readSlot(slots, &governorCgStats{}); err == nil {
		t.Errorf("slot %d of %d read without error", slots, slots)
	}
}
