package bpf

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/governor-dev/governor/governor"
)

// TestBenchBPF is `make bench-bpf`: it runs a scheduler-heavy load in a
// cgroup and reports, side by side in the same run, the per-event cost of
// governor's programs (BPF_ENABLE_STATS through the sensor) and of
// bpftrace's runqlat.bt (run_time_ns/run_cnt from bpftool), and cross-checks
// governor's p50/p99 for the cgroup against a bpftrace histogram filtered to
// the waiting task's cgroup. Set GOVERNOR_BPF_BENCH=1 to run it;
// GOVERNOR_BPF_BENCH_SECONDS sets the load's duration (default 10);
// GOVERNOR_BPF_BENCH_WATCH=0 leaves the fast path unused.
func TestBenchBPF(t *testing.T) {
	if os.Getenv("GOVERNOR_BPF_BENCH") == "" {
		t.Skip("set GOVERNOR_BPF_BENCH=1 (make bench-bpf)")
	}
	requireBPF(t)
	for _, tool := range []string{"bpftrace", "bpftool", "stress-ng"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make bench-bpf installs it)", tool)
		}
	}
	secs := 10
	if v := os.Getenv("GOVERNOR_BPF_BENCH_SECONDS"); v != "" {
		secs, _ = strconv.Atoi(v)
	}
	stock := findRunqlat(t)
	for _, v := range loadVariants {
		t.Run(v.name, func(t *testing.T) { benchMode(t, v, stock, secs) })
	}
}

func findRunqlat(t *testing.T) string {
	for _, p := range []string{os.Getenv("RUNQLAT_BT"), "/usr/share/bpftrace/tools/runqlat.bt", "/usr/sbin/runqlat.bt"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("runqlat.bt not found (package bpftrace); set RUNQLAT_BT")
	return ""
}

// cgroupRunqlat is runqlat.bt's logic restricted to tasks of cgroup $1. At
// sched_switch the tracepoint has no pointer to next, and bpftrace's cgroup
// builtin is the current (prev) task's cgroup, so each task's cgroup is
// remembered when it is switched out and looked up when it is switched in.
// prev_state 256 (TASK_REPORT_MAX, "R+") is an involuntary preemption.
const cgroupRunqlat = `
tracepoint:sched:sched_wakeup,
tracepoint:sched:sched_wakeup_new
{
	@qtime[args->pid] = nsecs;
}

tracepoint:sched:sched_process_exit
{
	delete(@cg[args->pid]);
	delete(@qtime[args->pid]);
}

tracepoint:sched:sched_switch
{
	@cg[args->prev_pid] = cgroup;
	if (args->prev_state == 0 || args->prev_state == 256) {
		@qtime[args->prev_pid] = nsecs;
	}
	$ns = @qtime[args->next_pid];
	if ($ns && @cg[args->next_pid] == $1) {
		@usecs = hist((nsecs - $ns) / 1000);
	}
	delete(@qtime[args->next_pid]);
}

END
{
	clear(@qtime);
	clear(@cg);
}
`

type bpftraceProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func startBpftrace(t *testing.T, env []string, script string, args ...string) *bpftraceProc {
	t.Helper()
	cmd := exec.Command("bpftrace", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard // its memlock warning is harmless on >= 5.11
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bpftraceProc{cmd: cmd, done: make(chan struct{})}
	attached := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Attaching") {
				once.Do(func() { close(attached) })
			}
		}
	}()
	select {
	case <-attached:
	case <-p.done:
		t.Fatalf("bpftrace %s exited: %s", script, p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("bpftrace %s did not attach", script)
	}
	time.Sleep(500 * time.Millisecond) // attaching done after the line
	return p
}

func (p *bpftraceProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *bpftraceProc) stop(t *testing.T) string {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
	return p.output()
}

type progCost struct {
	name     string
	runTime  uint64
	runCount uint64
}

type bpftoolProg struct {
	ID       int    `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	RunTime  uint64 `json:"run_time_ns"`
	RunCount uint64 `json:"run_cnt"`
}

func bpftoolProgs(t *testing.T) []bpftoolProg {
	t.Helper()
	out, err := exec.Command("bpftool", "-j", "prog", "show").Output()
	if err != nil {
		t.Fatalf("bpftool prog show: %v", err)
	}
	var progs []bpftoolProg
	if err := json.Unmarshal(out, &progs); err != nil {
		t.Fatalf("bpftool json: %v", err)
	}
	return progs
}

// progIDs lists the loaded tracepoint programs. Debian's bpftool does not
// report owning pids, so bpftrace's programs are the ones that appear while
// it starts.
func progIDs(t *testing.T) map[int]bool {
	ids := map[int]bool{}
	for _, p := range bpftoolProgs(t) {
		if p.Type == "tracepoint" {
			ids[p.ID] = true
		}
	}
	return ids
}

// bpftraceCosts reads run_time_ns/run_cnt of the given programs.
func bpftraceCosts(t *testing.T, ids map[int]bool) map[int]progCost {
	res := map[int]progCost{}
	for _, p := range bpftoolProgs(t) {
		if ids[p.ID] {
			res[p.ID] = progCost{name: p.Name, runTime: p.RunTime, runCount: p.RunCount}
		}
	}
	return res
}

func rawHist(t *testing.T, s *Sensor, id governor.CgroupID) []uint64 {
	out := make([]uint64, s.hist.n())
	var slot uint32
	key := uint64(id)
	if err := s.objs.CgIndex.Lookup(&key, &slot); err != nil {
		return out
	}
	var v governorCgStats
	if err := s.objs.CgSlots.Lookup(&slot, &v); err != nil {
		return out
	}
	for i := range out {
		out[i] = uint64(v.Hist[i])
	}
	return out
}

func costDelta(before, after map[int]progCost) (ns, runs uint64) {
	for id, a := range after {
		b := before[id]
		ns += a.runTime - b.runTime
		runs += a.runCount - b.runCount
	}
	return ns, runs
}

var histLine = regexp.MustCompile(`^\[(\d+)([KMG]?)(?:, (\d+)([KMG]?))?\)?\]?\s+(\d+)\s+\|`)

// bpftraceQuantileBucket parses bpftrace's hist() output and returns the
// log2 bucket (-1 for [0], k for [2^k, 2^(k+1))) holding the q-quantile.
func bpftraceQuantileBucket(out string, q float64) (int, uint64) {
	type bkt struct {
		k int
		n uint64
	}
	var bs []bkt
	var total uint64
	mult := map[string]uint64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
	for _, line := range strings.Split(out, "\n") {
		m := histLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		lo, _ := strconv.ParseUint(m[1], 10, 64)
		lo *= mult[m[2]]
		n, _ := strconv.ParseUint(m[5], 10, 64)
		k := -1
		if lo > 0 {
			k = int(math.Log2(float64(lo)))
		}
		bs = append(bs, bkt{k, n})
		total += n
	}
	var cum uint64
	for _, b := range bs {
		cum += b.n
		if float64(cum) >= q*float64(total) {
			return b.k, total
		}
	}
	return -2, total
}

func log2Bucket(seconds float64) int {
	us := math.Floor(seconds * 1e6)
	if us < 1 {
		return -1
	}
	return int(math.Log2(us))
}

func benchMode(t *testing.T, v loadVariant, stockPath string, secs int) {
	dir := t.TempDir()
	stock, err := os.ReadFile(stockPath)
	if err != nil {
		t.Fatal(err)
	}
	// The packaged script includes <linux/sched.h> for TASK_RUNNING, which
	// fails without kernel headers; define it instead, change nothing else.
	stockScript := filepath.Join(dir, "runqlat.bt")
	if err := os.WriteFile(stockScript, []byte(strings.Replace(string(stock),
		"#include <linux/sched.h>", "#define TASK_RUNNING 0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cgScript := filepath.Join(dir, "runqlat-cgroup.bt")
	if err := os.WriteFile(cgScript, []byte(cgroupRunqlat), 0o644); err != nil {
		t.Fatal(err)
	}

	bench := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-bench-%d-%s", os.Getpid(), v.name))
	s := v.load(t, Options{EnableStats: true})
	defer s.Close()
	// The fast path as a policy on runq.p99 above 1 ms or cpu.some.stall
	// above 10 % sets it up: the load's cgroup watched, its alerts
	// delivered (GOVERNOR_BPF_BENCH_WATCH=0: nothing watched, the programs
	// pay only the check that nothing is).
	watch := os.Getenv("GOVERNOR_BPF_BENCH_WATCH") != "0"
	if watch {
		if err := s.Watch(bench.Ref, governor.Watch{Wait: time.Millisecond, WaitSum: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	alertsBefore := s.Alerts()
	idsBefore := progIDs(t)
	bt := startBpftrace(t, nil, stockScript)
	btIDs := map[int]bool{}
	for id := range progIDs(t) {
		if !idsBefore[id] {
			btIDs[id] = true
		}
	}
	// Room for every thread of a busy machine in the pid-keyed maps.
	btc := startBpftrace(t, []string{"BPFTRACE_MAP_KEYS_MAX=65536"}, cgScript, strconv.FormatUint(uint64(bench.ID), 10))

	floor := attachEmpty(t)
	floorBefore, _ := floor.Stats()

	ctx := context.Background()
	snap := snapshotOf(bench)
	if err := s.Sample(ctx, snap); err != nil {
		t.Fatal(err)
	}
	ourBefore := s.Stats()
	btBefore := bpftraceCosts(t, btIDs)
	histBefore := rawHist(t, s, bench.ID)

	load := fmt.Sprintf("stress-ng --switch 2 --cpu 2 --timeout %ds --quiet", secs)
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("echo $$ > %s/cgroup.procs && exec %s", bench.dir, load))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v", load, err)
	}
	elapsed := time.Since(start)

	snap = snapshotOf(bench)
	if err := s.Sample(ctx, snap); err != nil {
		t.Fatal(err)
	}
	ourAfter := s.Stats()
	btAfter := bpftraceCosts(t, btIDs)
	floorAfter, _ := floor.Stats()
	histAfter := rawHist(t, s, bench.ID)
	_ = bt.stop(t)
	cgOut := btc.stop(t)

	var b strings.Builder
	fmt.Fprintf(&b, "\n== %s (mode %s, waits from %s), load: %s (%.1fs), kernel %s, %d CPUs\n",
		v.name, s.Mode(), s.WaitSource(), load, elapsed.Seconds(), kernelRelease(), numCPU())
	fmt.Fprintf(&b, "%-28s %12s %12s %10s\n", "program", "runs", "run time", "ns/event")
	var ourNs, ourRuns uint64
	for i, a := range ourAfter {
		runs := a.RunCount - ourBefore[i].RunCount
		ns := uint64(a.RunTime - ourBefore[i].RunTime)
		if runs == 0 {
			continue
		}
		fmt.Fprintf(&b, "%-28s %12d %12s %10.1f\n", a.Name, runs, time.Duration(ns), float64(ns)/float64(runs))
		if strings.Contains(a.Name, "sched_") {
			ourNs += ns
			ourRuns += runs
		}
	}
	btNs, btRuns := costDelta(btBefore, btAfter)
	ours := float64(ourNs) / float64(ourRuns)
	theirs := float64(btNs) / float64(btRuns)
	fmt.Fprintf(&b, "%-28s %12d %12s %10.1f\n", "governor sched_* (all)", ourRuns, time.Duration(ourNs), ours)
	fmt.Fprintf(&b, "%-28s %12d %12s %10.1f\n", "bpftrace runqlat.bt (all)", btRuns, time.Duration(btNs), theirs)
	fmt.Fprintf(&b, "ratio governor/bpftrace: %.2f\n", ours/theirs)
	if floorBefore != nil && floorAfter != nil && floorAfter.RunCount > floorBefore.RunCount {
		switches := floorAfter.RunCount - floorBefore.RunCount
		fmt.Fprintf(&b, "floor (empty tp_btf program on sched_switch, same run): %.1f ns/event\n",
			float64(floorAfter.Runtime-floorBefore.Runtime)/float64(switches))
		// Programs per switch differ between the tools (and between
		// governor's wait sources): the whole cost per context switch.
		fmt.Fprintf(&b, "per context switch (%d switches): governor %.1f ns, bpftrace %.1f ns, ratio %.2f\n",
			switches, float64(ourNs)/float64(switches), float64(btNs)/float64(switches), float64(ourNs)/float64(btNs))
	}
	if watch {
		fmt.Fprintf(&b, "fast path: the cgroup watched (one wait of 1ms, or 10ms of waits in %v), %d alerts (%.1f/s; at most one per %v)\n",
			defaultAlertWindow, s.Alerts()-alertsBefore, float64(s.Alerts()-alertsBefore)/elapsed.Seconds(), DefaultAlertGap)
	} else {
		fmt.Fprintf(&b, "fast path: nothing watched\n")
	}
	verdict := "met"
	if ours > 150 || ours > theirs {
		verdict = "MISSED"
	}
	fmt.Fprintf(&b, "target (<= 150 ns/event and cheaper than bpftrace): %s\n", verdict)

	c := snap.Cgroups[0]
	p50, _ := c.Get(governor.RunqP50)
	p90, _ := c.Get(governor.RunqP90)
	p99, _ := c.Get(governor.RunqP99)
	delay, _ := c.Get(governor.RunqDelay)
	k50, total := bpftraceQuantileBucket(cgOut, 0.5)
	k99, _ := bpftraceQuantileBucket(cgOut, 0.99)
	fmt.Fprintf(&b, "cgroup %s: governor p50 %.1fus p90 %.1fus p99 %.1fus delay %.0f%%\n", bench.Path, p50*1e6, p90*1e6, p99*1e6, delay)
	fmt.Fprintf(&b, "  log2 bucket: governor p50 %d p99 %d; bpftrace (cgroup-filtered, %d samples) p50 %d p99 %d\n",
		log2Bucket(p50), log2Bucket(p99), total, k50, k99)
	t.Log(b.String())
	fmt.Print(b.String())
	if os.Getenv("GOVERNOR_BPF_BENCH_VERBOSE") != "" {
		fmt.Println("governor's histogram of the cgroup, folded into log2 microsecond buckets:")
		folded := map[int]uint64{}
		keys := []int{}
		for i := range histAfter {
			d := histAfter[i] - histBefore[i]
			if d == 0 {
				continue
			}
			lo, _ := s.hist.bounds(i)
			k := log2Bucket(lo / 1e9)
			if _, ok := folded[k]; !ok {
				keys = append(keys, k)
			}
			folded[k] += d
		}
		for _, k := range keys {
			if k < 0 {
				fmt.Printf("  [0, 1) us %d\n", folded[k])
				continue
			}
			fmt.Printf("  [%d, %d) us %d\n", 1<<k, 2<<k, folded[k])
		}
		fmt.Println("bpftrace, filtered to the cgroup:")
		fmt.Println(cgOut)
	}

	if total == 0 {
		t.Fatalf("bpftrace's cgroup histogram is empty:\n%s", cgOut)
	}
	if d := log2Bucket(p50) - k50; d < -1 || d > 1 {
		t.Errorf("p50: governor bucket %d, bpftrace %d: more than one log2 bucket apart", log2Bucket(p50), k50)
	}
	if d := log2Bucket(p99) - k99; d < -1 || d > 1 {
		t.Errorf("p99: governor bucket %d, bpftrace %d: more than one log2 bucket apart", log2Bucket(p99), k99)
	}
	// The cost target is reported above, not enforced: the figures move
	// by several percent between runs on a shared machine. The preferred
	// set must stay clearly cheaper than bpftrace.
	if s.Mode() == ModeTPBTF && ours > theirs {
		t.Errorf("governor's programs cost %.1f ns/event, more than bpftrace's %.1f", ours, theirs)
	}
}

// attachEmpty attaches a program that does nothing to sched_switch: its
// cost is the floor every program pays (dispatch plus the statistics).
func attachEmpty(t *testing.T) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "empty_switch",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "sched_switch",
		License:      "GPL",
		Instructions: asm.Instructions{asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: p})
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); p.Close() })
	return p
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var sb strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

func numCPU() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if ok {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return n
}
