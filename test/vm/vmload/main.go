// Command vmload is the workload and measurement helper of the VM test bed:
// it runs inside the guest (statically linked, injected per run) and stands in
// for tools the minimal guest root does not carry.
//
//	vmload anon   -size 600M [-hot 10] [-hold 60s] [-delay 1s] [-ops f]  allocate, touch, hold
//	vmload grow   -rate 64M -every 1s [-max 0] [-hold 0]  allocate (without end)
//	vmload sample -cgroup /sys/fs/cgroup/x -out f.csv [-every 1s]
//	vmload psi    -file memory.pressure               print some avg10
//	vmload latency -period 10ms -work 1ms -for 20s    a periodic service: p50/p99
//	vmload burn   -threads 2 -for 20s                 batch CPU work: ops/s (SIGUSR1 restarts the count, SIGTERM ends)
//	vmload watch  -out f.csv [-every 500ms] NAME=PATH...  sample cgroup files over time
//	vmload plot   -out f.svg -series PANEL|LABEL|FILE|COLUMN...  draw time series
//	vmload react  -cgroup /sys/fs/cgroup/x [-every 10ms] [-wait 10s] [-for 30s] [-cross 10 -cross-window 100ms]
//	              time from the onset of memory pressure (and from its crossing
//	              of a stall threshold) to a corrective event
//	vmload pin-tracepoints [-probes 2]  hold no-op probes on the sensors' tracepoints
//	              (so attaching the sensors patches no kernel text: see pin.go)
//
// Sizes accept K, M, G suffixes (powers of 1024).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: vmload anon|grow|sample|psi|latency|burn|watch|plot|react|pin-tracepoints [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "anon":
		err = anon(os.Args[2:])
	case "grow":
		err = grow(os.Args[2:])
	case "sample":
		err = sample(os.Args[2:])
	case "psi":
		err = psi(os.Args[2:])
	case "latency":
		err = latency(os.Args[2:])
	case "burn":
		err = burn(os.Args[2:])
	case "watch":
		err = watch(os.Args[2:])
	case "plot":
		err = plot(os.Args[2:])
	case "react":
		err = react(os.Args[2:])
	case "pin-tracepoints":
		err = pinTracepoints(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmload:", err)
		os.Exit(1)
	}
}

type size int64

func (s *size) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *size) Set(v string) error {
	n, err := parseSize(v)
	*s = size(n)
	return err
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult = 1 << 10
	case strings.HasSuffix(v, "M"):
		mult = 1 << 20
	case strings.HasSuffix(v, "G"):
		mult = 1 << 30
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", v)
	}
	return n * mult, nil
}

const page = 4096

// mapTouched maps n bytes of private anonymous memory, populated up front
// (one kernel call instead of a fault per page, which is slow under TCG),
// and writes every page, so the memory is really charged to the caller's
// cgroup and holds data.
func mapTouched(n int64) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	for i := 0; i < len(b); i += page {
		b[i] = byte(i>>12) | 1
	}
	return b, nil
}

func waitSignal(d time.Duration) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	if d <= 0 {
		<-ch
		return
	}
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// anon waits -delay, allocates -size bytes, then keeps the first -hot percent
// of them in use (touched every 200 ms) while the rest goes cold, until -hold
// passes or a signal arrives. With -ops FILE the hot set is instead touched
// without pause, as a job that works on it would, and every second a line
// "UNIX_MS PAGES" (pages touched in that second: the job's throughput) is
// appended to FILE.
func anon(args []string) error {
	fs := flag.NewFlagSet("anon", flag.ExitOnError)
	var sz size
	fs.Var(&sz, "size", "bytes to allocate")
	hot := fs.Float64("hot", 0, "percent of the allocation kept hot")
	hold := fs.Duration("hold", 0, "how long to hold (0: until signalled)")
	delay := fs.Duration("delay", 0, "wait this long before allocating")
	ops := fs.String("ops", "", "touch the hot set without pause and log its pages per second to this file")
	_ = fs.Parse(args)
	time.Sleep(*delay)
	b, err := mapTouched(int64(sz))
	if err != nil {
		return err
	}
	fmt.Printf("anon: %d MiB allocated and touched\n", len(b)>>20)
	hotEnd := int(float64(len(b)) * *hot / 100)
	switch {
	case hotEnd > 0 && *ops != "":
		f, err := os.OpenFile(*ops, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		var touched atomic.Uint64
		go func() {
			for {
				for i := 0; i < hotEnd; i += page {
					b[i]++
					if i&(63*page) == 0 {
						touched.Add(64)
					}
				}
			}
		}()
		go func() {
			t := time.NewTicker(time.Second)
			last := touched.Load()
			for now := range t.C {
				n := touched.Load()
				fmt.Fprintf(f, "%d %d\n", now.UnixMilli(), n-last)
				last = n
			}
		}()
	case hotEnd > 0:
		go func() {
			for {
				for i := 0; i < hotEnd; i += page {
					b[i]++
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	waitSignal(*hold)
	return nil
}

// grow allocates -rate bytes every -every until -max (0: forever), printing
// its total after each step, then holds it for -hold (0: until signalled).
func grow(args []string) error {
	fs := flag.NewFlagSet("grow", flag.ExitOnError)
	var rate, max size
	fs.Var(&rate, "rate", "bytes per step")
	fs.Var(&max, "max", "stop growing at this total (0: never)")
	every := fs.Duration("every", time.Second, "step period")
	hold := fs.Duration("hold", 0, "how long to hold at -max (0: until signalled)")
	_ = fs.Parse(args)
	if rate <= 0 {
		return fmt.Errorf("grow: -rate must be positive")
	}
	var held [][]byte
	var total int64
	for max == 0 || total < int64(max) {
		b, err := mapTouched(int64(rate))
		if err != nil {
			return err
		}
		held = append(held, b)
		total += int64(rate)
		fmt.Printf("grow: %d MiB\n", total>>20)
		time.Sleep(*every)
	}
	waitSignal(*hold)
	return nil
}

// psiAvg10 returns "some avg10" and "some total" from a pressure file.
func psiAvg10(path string) (avg10 float64, total int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "avg10":
				avg10, _ = strconv.ParseFloat(v, 64)
			case "total":
				total, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return avg10, total, nil
}

func psi(args []string) error {
	fs := flag.NewFlagSet("psi", flag.ExitOnError)
	file := fs.String("file", "/proc/pressure/memory", "pressure file")
	_ = fs.Parse(args)
	a, _, err := psiAvg10(*file)
	if err != nil {
		return err
	}
	fmt.Println(a)
	return nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func keyed(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return v
		}
	}
	return ""
}

// sample appends one CSV row per period with the cgroup's memory state and
// memory pressure until signalled; a removed cgroup ends it.
func sample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ExitOnError)
	cg := fs.String("cgroup", "", "cgroup directory")
	out := fs.String("out", "", "CSV file")
	every := fs.Duration("every", time.Second, "period")
	_ = fs.Parse(args)
	if *cg == "" || *out == "" {
		return fmt.Errorf("sample: -cgroup and -out are required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintln(f, "t_s,memory_current,memory_high,memory_low,memory_max,"+
		"mem_some_avg10,mem_some_total_us,mem_full_avg10,host_mem_some_avg10,"+
		"frozen,populated,anon,file,swap_current")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(*every)
	defer t.Stop()
	start := time.Now()
	for {
		if _, err := os.Stat(*cg); err != nil {
			return nil
		}
		p := filepath.Join(*cg, "memory.pressure")
		some, total, _ := psiAvg10(p)
		full := fullAvg10(p)
		host, _, _ := psiAvg10("/proc/pressure/memory")
		fmt.Fprintf(f, "%.1f,%s,%s,%s,%s,%.2f,%d,%.2f,%.2f,%s,%s,%s,%s,%s\n",
			time.Since(start).Seconds(),
			readTrim(filepath.Join(*cg, "memory.current")),
			readTrim(filepath.Join(*cg, "memory.high")),
			readTrim(filepath.Join(*cg, "memory.low")),
			readTrim(filepath.Join(*cg, "memory.max")),
			some, total, full, host,
			keyed(filepath.Join(*cg, "cgroup.events"), "frozen"),
			keyed(filepath.Join(*cg, "cgroup.events"), "populated"),
			keyed(filepath.Join(*cg, "memory.stat"), "anon"),
			keyed(filepath.Join(*cg, "memory.stat"), "file"),
			readTrim(filepath.Join(*cg, "memory.swap.current")))
		select {
		case <-ch:
			return nil
		case <-t.C:
		}
	}
}

func fullAvg10(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "full" {
			continue
		}
		if v, ok := strings.CutPrefix(f[1], "avg10="); ok {
			x, _ := strconv.ParseFloat(v, 64)
			return x
		}
	}
	return 0
}

// spin busy-loops for d of wall time and returns the loop count.
func spin(d time.Duration) uint64 {
	var n uint64
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			n++
		}
	}
	return n
}

// latency acts like a request-serving service: a request arrives every
// -period and takes -work of CPU (thread CPU time: sharing the CPU stretches
// it, as it does real work); requests are served one after another in
// arrival order, and a request's latency is from its arrival to the end of
// its work, so waiting for a CPU shows directly. A service that falls behind
// serves its backlog back to back: no arrival is skipped (skipping late
// requests would hide exactly the stalls this measures), and requests still
// waiting when -for ends count with their wait so far. Prints
// "n=... served=... p50_us=... p99_us=... max_us=...".
func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	period := fs.Duration("period", 10*time.Millisecond, "time between request arrivals")
	work := fs.Duration("work", time.Millisecond, "CPU work per request")
	dur := fs.Duration("for", 20*time.Second, "how long requests arrive")
	tracePath := fs.String("trace", "", "also write p50/p99/max per second to this CSV (for plots)")
	_ = fs.Parse(args)
	var trace *latencyTrace
	if *tracePath != "" {
		var err error
		if trace, err = newLatencyTrace(*tracePath, time.Second); err != nil {
			return err
		}
	}
	var lat []time.Duration
	start := time.Now()
	end := start.Add(*dur)
	next := start.Add(*period)
	for ; time.Now().Before(end); next = next.Add(*period) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		spinCPU(*work)
		lat = append(lat, time.Since(next))
		trace.add(lat[len(lat)-1])
	}
	served := len(lat)
	// The backlog: arrived, not served.
	now := time.Now()
	for ; next.Before(end); next = next.Add(*period) {
		lat = append(lat, now.Sub(next))
	}
	if err := trace.close(); err != nil {
		return err
	}
	if len(lat) == 0 {
		return fmt.Errorf("latency: no requests")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) int64 { return lat[int(p*float64(len(lat)-1))].Microseconds() }
	fmt.Printf("n=%d served=%d p50_us=%d p99_us=%d max_us=%d\n", len(lat), served, q(0.5), q(0.99), lat[len(lat)-1].Microseconds())
	return nil
}

// burn runs -threads busy loops for -for and prints "ops_per_s=...".
func burn(args []string) error {
	fs := flag.NewFlagSet("burn", flag.ExitOnError)
	threads := fs.Int("threads", 2, "busy threads")
	dur := fs.Duration("for", 20*time.Second, "how long to run")
	_ = fs.Parse(args)
	var total atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(*dur)
	for i := 0; i < *threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(end) {
				total.Add(spin(10 * time.Millisecond))
			}
		}()
	}
	// SIGUSR1 starts the count again: what was done before it (a warm-up,
	// a settling phase) does not count. SIGTERM/SIGINT end the run early.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var base uint64
	for running := true; running; {
		select {
		case s := <-sig:
			if s == syscall.SIGUSR1 {
				base, start = total.Load(), time.Now()
				continue
			}
			stop.Store(true)
			<-done
			running = false
		case <-done:
			running = false
		}
	}
	secs := time.Since(start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	fmt.Printf("ops_per_s=%d\n", uint64(float64(total.Load()-base)/secs))
	return nil
}

// react times how fast something corrects memory pressure in a cgroup. It
// waits up to -wait for the cgroup to exist and hold a task (the workload
// must not stall yet: start it with a delay), records its memory.high and
// the "some" total= of its memory.pressure, then polls them every -every.
//
// The onset is the first poll that sees total= grow: the first stall. The
// stall really began between that poll and the previous one (at most one
// poll earlier). From the onset on it waits for a corrective event:
//
//	high   memory.high differs from its initial value (a governor's write)
//	exit   a task that was in the cgroup at the onset is exiting or gone
//	       (PF_EXITING, zombie, or no /proc entry: a kill)
//	empty  the cgroup is unpopulated or removed
//
// It prints one line of key=value: onset_unix_ms, event (or timeout, or
// noonset when the cgroup emptied before any stall), react_ms (onset to the
// poll that saw the event), event_unix_ms, high0/high1, over_high_ms (first
// poll with memory.current above the initial memory.high, relative to the
// onset), stall_ms (some stall accumulated until the event), polls and
// max_gap_ms (the longest interval between two polls after the onset).
func react(args []string) error {
	fs := flag.NewFlagSet("react", flag.ExitOnError)
	cg := fs.String("cgroup", "", "cgroup directory")
	every := fs.Duration("every", 10*time.Millisecond, "poll period")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the cgroup to exist")
	limit := fs.Duration("for", 30*time.Second, "give up this long after the start (without onset) or the onset")
	crossPct := fs.Float64("cross", 0, "also time the reaction from the first moment the stall reached this percentage of -cross-window (0: not)")
	crossWin := fs.Duration("cross-window", 100*time.Millisecond, "the window of -cross")
	_ = fs.Parse(args)
	if *cg == "" {
		return fmt.Errorf("react: -cgroup is required")
	}
	var cross *crossing
	if *crossPct > 0 {
		cross = &crossing{window: *crossWin, need: int64(*crossPct / 100 * float64(crossWin.Microseconds()))}
	}
	pressure := filepath.Join(*cg, "memory.pressure")
	events := filepath.Join(*cg, "cgroup.events")
	deadline := time.Now().Add(*wait)
	for keyed(events, "populated") != "1" {
		if time.Now().After(deadline) {
			return fmt.Errorf("react: %s not populated within %v", *cg, *wait)
		}
		time.Sleep(*every)
	}
	_, total0, err := psiAvg10(pressure)
	if err != nil {
		return err
	}
	lastTotal := total0
	high0 := readTrim(filepath.Join(*cg, "memory.high"))
	highBytes, _ := strconv.ParseInt(high0, 10, 64) // 0 for "max": never "over"

	var (
		start           = time.Now()
		onset, overHigh time.Time
		onsetTotal      int64
		pids            []int
		polls           int
		maxGap          time.Duration
		last            time.Time
	)
	result := func(event string, at time.Time, total int64) error {
		high1 := readTrim(filepath.Join(*cg, "memory.high"))
		if onset.IsZero() {
			fmt.Printf("event=%s onset_unix_ms=- react_ms=- high0=%s high1=%s waited_ms=%d\n",
				event, high0, high1, time.Since(start).Milliseconds())
			return nil
		}
		over := "-"
		if !overHigh.IsZero() {
			over = strconv.FormatInt(overHigh.Sub(onset).Milliseconds(), 10)
		}
		// cross_ms: from the threshold crossing to the event; "-" when the
		// event came first (or no -cross).
		crossMs, crossedAt := "-", "-"
		if cross != nil && !cross.at.IsZero() {
			crossMs = strconv.FormatInt(at.Sub(cross.at).Milliseconds(), 10)
			crossedAt = strconv.FormatInt(cross.at.Sub(onset).Milliseconds(), 10)
		}
		fmt.Printf("event=%s onset_unix_ms=%d react_ms=%d event_unix_ms=%d high0=%s high1=%s over_high_ms=%s stall_ms=%d polls=%d max_gap_ms=%d cross_ms=%s crossed_at_ms=%s\n",
			event, onset.UnixMilli(), at.Sub(onset).Milliseconds(), at.UnixMilli(), high0, high1, over,
			(total-onsetTotal)/1000, polls, maxGap.Milliseconds(), crossMs, crossedAt)
		return nil
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		now := time.Now()
		total, perr := lastTotal, error(nil)
		if _, t, err := psiAvg10(pressure); err == nil {
			total, lastTotal = t, t
		} else {
			perr = err
		}
		populated := keyed(events, "populated")
		if perr != nil || populated == "0" {
			if onset.IsZero() {
				return result("noonset", now, total)
			}
			return result("empty", now, total)
		}
		if cross != nil && perr == nil {
			cross.add(now, total)
		}
		if highBytes > 0 && overHigh.IsZero() {
			if cur, err := strconv.ParseInt(readTrim(filepath.Join(*cg, "memory.current")), 10, 64); err == nil && cur > highBytes {
				overHigh = now
			}
		}
		if onset.IsZero() {
			if total > total0 {
				onset, onsetTotal, last = now, total0, now
				pids = procs(filepath.Join(*cg, "cgroup.procs"))
			} else if now.Sub(start) > *limit {
				return result("timeout", now, total)
			}
		} else {
			polls++
			maxGap = max(maxGap, now.Sub(last))
			last = now
			if readTrim(filepath.Join(*cg, "memory.high")) != high0 {
				return result("high", now, total)
			}
			for _, pid := range pids {
				if exiting(pid) {
					return result("exit", now, total)
				}
			}
			if now.Sub(onset) > *limit {
				return result("timeout", now, total)
			}
		}
		<-t.C
	}
}

// procs lists the pids in a cgroup.procs file.
func procs(path string) []int {
	var out []int
	for _, f := range strings.Fields(readTrim(path)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// exiting reports whether a process is gone, a zombie, or has begun to exit
// (PF_EXITING in the flags of /proc/PID/stat): the first sign of a kill.
func exiting(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:]) // state ppid pgrp session tty_nr tpgid flags ...
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" || f[0] == "x" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	const pfExiting = 0x4
	return err == nil && flags&pfExiting != 0
}
