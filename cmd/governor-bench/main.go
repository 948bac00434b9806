// Command governor-bench measures the real governor daemon at scale: it
// creates N cgroups in this host's cgroup2 hierarchy, runs `governor run` on
// a policy whose classes match them, and reports the daemon's CPU use (from
// /proc/PID/stat utime+stime), its RSS and the mean wall time of a control
// loop step (from the daemon's own step-duration histogram). Everything it
// creates is removed again, also on failure and on SIGINT/SIGTERM; cgroups
// left by an earlier, killed run are removed at start.
//
// Usage (root):
//
//	governor-bench scale -bin bin/governor [-ref OTHER_BINARY] [-counts 100,1000,10000]
//	    [-duration 60s] [-scrape-every 15s] [-record on|off|both]
//	    [-out results.json] [-baseline baseline.json -tolerance 3]
//	governor-bench check -baseline FILE [-tolerance 3] [-write] < go-test-bench-output
//	governor-bench cleanup [-root DIR] [-all]
//
// With -ref, both binaries are measured at each count, alternately, in the
// same run: on a shared, noisy machine the ratio is the figure that counts.
// -record both does the same for the flight recorder: each binary runs with
// it (label "current", "ref") and with --record-size 0 ("current-norec",
// "ref-norec"). See BENCHMARKS.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor/record"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: governor-bench scale|check|cleanup [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "scale":
		err = scaleCmd(os.Args[2:])
	case "check":
		err = checkCmd(os.Args[2:], os.Stdin, os.Stdout)
	case "cleanup":
		fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
		root := fs.String("root", "/sys/fs/cgroup/unified", "cgroup2 mount")
		all := fs.Bool("all", false, "also remove the cgroups of runs still alive")
		fs.Parse(os.Args[2:])
		err = cleanupStale(*root, *all)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "governor-bench:", err)
		os.Exit(1)
	}
}

// Result is one measurement of one binary at one cgroup count.
type Result struct {
	Binary         string  `json:"binary"`
	Label          string  `json:"label"`
	Cgroups        int     `json:"cgroups"`
	Populated      int     `json:"populated"`        // cgroups holding a task
	Active         int     `json:"active"`           // ... whose task wakes often
	Layout         string  `json:"layout,omitempty"` // "kube", or "" (flat)
	Seconds        float64 `json:"seconds"`
	CPUPct         float64 `json:"cpu_pct"`                   // % of one core
	RSSMiB         float64 `json:"rss_mib"`                   // at the end
	RSSNoScrapeMiB float64 `json:"rss_noscrape_mib"`          // before the first metrics scrape
	HWMMiB         float64 `json:"hwm_mib"`                   // peak RSS
	ScrapeEveryS   float64 `json:"scrape_every_s"`            // metrics scraped this often in the window (0: at its start only)
	Scrapes        int     `json:"scrapes"`                   // scrapes before RSS was read at the end
	ScrapeBytes    int     `json:"scrape_bytes"`              // size of the last exposition
	StepMS         float64 `json:"step_ms"`                   // mean step wall time
	Steps          float64 `json:"steps"`                     // steps in the window
	FirstMS        float64 `json:"first_ms"`                  // mean over the first steps (startup walk included)
	CPUMSPerStep   float64 `json:"cpu_ms_per_step,omitempty"` // CPU time over the window's steps: extra steps woken by PSI triggers move CPU %, not this
	// The flight recorder (off: --record-size 0). Its size per tick is
	// taken after the daemon stopped (its last block flushed) from the
	// block headers: bytes over ticks of the blocks holding the full
	// BlockTicks (a block is flushed every 30 ticks; the partial last
	// block, cut at SIGTERM, is left out unless there is no full one).
	Recording       string  `json:"recording,omitempty"`          // "on", "off" ("": runs before -record)
	RecBytes        int64   `json:"rec_bytes,omitempty"`          // on disk after the daemon stopped
	RecTicks        int     `json:"rec_ticks,omitempty"`          // ticks recorded in the daemon's life
	RecBytesPerTick float64 `json:"rec_bytes_per_tick,omitempty"` // over the full blocks
	RecHours        float64 `json:"rec_hours_256mib,omitempty"`   // hours the default 256 MiB hold at the window's step rate
	Machine         string  `json:"machine"`                      // where it ran
	Recorded        string  `json:"recorded"`                     // when
}

const prefix = "governor-bench-"

func scaleCmd(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	bin := fs.String("bin", "bin/governor", "governor binary to measure")
	ref := fs.String("ref", "", "second governor binary measured alternately in the same run (e.g. an older build)")
	root := fs.String("root", "/sys/fs/cgroup/unified", "cgroup2 mount to create the cgroups in")
	counts := fs.String("counts", "100,1000,10000", "cgroup counts to measure")
	dur := fs.Duration("duration", 60*time.Second, "measurement window per run (after warm-up)")
	warm := fs.Duration("warmup", 5*time.Second, "wait after the daemon's first step before measuring")
	every := fs.Duration("scrape-every", 15*time.Second, "scrape /metrics this often during the window, as Prometheus would (0: once, at its start)")
	populated := fs.Int("populated", -1, "number of cgroups that get a task (overrides -populated-share when >= 0)")
	share := fs.Float64("populated-share", 1, "share of the cgroups that hold a task (1: all, as on a real node)")
	active := fs.Float64("active-share", 0.1, "share of the populated cgroups whose task wakes every -active-every (the rest sleep)")
	activeEvery := fs.Duration("active-every", 100*time.Millisecond, "how often an active task wakes")
	layout := fs.String("layout", "kube", "cgroup tree: kube (kubepods.slice/QoS slice/pod slice/container scope) or flat (the runs before 2026-12-06)")
	repeat := fs.Int("repeat", 1, "measurements of each binary at each count (alternating), on the same cgroups")
	policy := fs.String("policy", "policies/default.hcl", "default policy the bench classes are added to")
	bpf := fs.Bool("bpf", false, "let the daemon load its BPF sensors (default --no-bpf: the figures are the loop's)")
	recMode := fs.String("record", "on", "flight recorder: on (the daemon's default), off (--record-size 0), or both, alternately on the same cgroups")
	out := fs.String("out", "", "write the results as JSON here")
	baseline := fs.String("baseline", "", "fail when a figure is worse than this baseline's by more than -tolerance")
	tol := fs.Float64("tolerance", 3, "regression factor that fails -baseline")
	fs.Parse(args)

	if os.Geteuid() != 0 {
		return errors.New("needs root (creates cgroups)")
	}
	if err := cleanupStale(*root, false); err != nil {
		return err
	}
	var ns []int
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad count %q", f)
		}
		ns = append(ns, n)
	}
	bins := []string{*bin}
	if *ref != "" {
		bins = append(bins, *ref)
	}
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			return err
		}
	}
	var recs []bool
	switch *recMode {
	case "on":
		recs = []bool{true}
	case "off":
		recs = []bool{false}
	case "both":
		recs = []bool{true, false}
	default:
		return fmt.Errorf("bad -record %q (on, off or both)", *recMode)
	}
	// The variants measured, alternately: each binary with each recorder
	// setting. The labels with the recorder on are those of the runs
	// before -record ("current", "ref"): -baseline compares "current".
	type variant struct {
		bin, label string
		rec        bool
	}
	var vars []variant
	for i, b := range bins {
		for _, rec := range recs {
			label := "current"
			if i == 1 {
				label = "ref"
			}
			if !rec {
				label += "-norec"
			}
			vars = append(vars, variant{b, label, rec})
		}
	}
	def, err := os.ReadFile(*policy)
	if err != nil {
		return err
	}
	if *layout != "kube" && *layout != "flat" {
		return fmt.Errorf("bad -layout %q (kube or flat)", *layout)
	}
	if *share < 0 || *share > 1 || *active < 0 || *active > 1 {
		return errors.New("-populated-share and -active-share are shares between 0 and 1")
	}
	if _, err := exec.LookPath("perl"); *active > 0 && err != nil {
		return fmt.Errorf("active tasks need perl: %w", err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	host := machine()
	var results []Result
	for _, n := range ns {
		pop := int(float64(n)**share + 0.5)
		if *populated >= 0 {
			pop = min(*populated, n)
		}
		shape := treeShape{n: n, populated: pop, active: int(float64(pop)**active + 0.5), every: *activeEvery, kube: *layout == "kube"}
		fx, err := newFixture(*root, shape)
		if err != nil {
			if fx != nil {
				fx.close()
			}
			return fmt.Errorf("%d cgroups: %w", n, err)
		}
		fmt.Printf("%d cgroups (%s layout): %d hold a task, %d of them waking every %v\n", n, *layout, shape.populated, shape.active, shape.every)
		byLabel := make([][]Result, len(vars))
		for rep := 0; rep < *repeat; rep++ {
			for i, v := range vars {
				r, err := measure(ctx, fx, v.bin, *dur, *warm, *every, def, *bpf, v.rec)
				if err != nil {
					fx.close()
					return fmt.Errorf("%s (%s) at %d cgroups: %w", v.bin, v.label, n, err)
				}
				r.Label, r.Machine, r.Recorded = v.label, host, time.Now().UTC().Format(time.RFC3339)
				results = append(results, r)
				byLabel[i] = append(byLabel[i], r)
				rec := "recording off"
				if v.rec {
					rec = fmt.Sprintf("recording %.0f B/tick (%d B, %d ticks; 256 MiB hold %.1f h)", r.RecBytesPerTick, r.RecBytes, r.RecTicks, r.RecHours)
				}
				fmt.Printf("%-13s %6d cgroups: step %8.2f ms (first steps %8.2f ms)  cpu %6.3f %% of a core  rss %6.1f MiB before any scrape, %6.1f after %d (peak %6.1f)  [%s, %.0f steps in %.0f s, exposition %d KB, %s]\n",
					v.label, n, r.StepMS, r.FirstMS, r.CPUPct, r.RSSNoScrapeMiB, r.RSSMiB, r.Scrapes, r.HWMMiB, v.bin, r.Steps, r.Seconds, r.ScrapeBytes/1000, rec)
			}
		}
		if err := fx.close(); err != nil {
			return err
		}
		if *repeat > 1 {
			for i, v := range vars {
				fmt.Printf("%-13s %6d cgroups over %d runs: %s\n", v.label, n, len(byLabel[i]), minMedian(byLabel[i]))
			}
		}
		// Same recorder setting, the two binaries; same binary, recorder
		// on and off.
		for i, a := range vars {
			for j, b := range vars {
				if j <= i {
					continue
				}
				c, r := summary(byLabel[i]), summary(byLabel[j])
				switch {
				case a.rec == b.rec && a.bin != b.bin:
					fmt.Printf("ratio %s/%s at %d cgroups (medians, same run, alternating): step %s  cpu %s  rss %s (before any scrape %s)\n",
						a.label, b.label, n, ratio(c.StepMS, r.StepMS), ratio(c.CPUPct, r.CPUPct), ratio(c.RSSMiB, r.RSSMiB), ratio(c.RSSNoScrapeMiB, r.RSSNoScrapeMiB))
				case a.label+"-norec" == b.label:
					fmt.Printf("recording cost of %s at %d cgroups (medians, same run, alternating): cpu %.3f %% of a core vs %.3f without (%+.1f %%), cpu per step %.3f vs %.3f ms (%+.1f %%; steps %.0f vs %.0f), step %.2f vs %.2f ms (%+.1f %%), rss %.1f vs %.1f MiB\n",
						a.label, n, c.CPUPct, r.CPUPct, pctMore(c.CPUPct, r.CPUPct), c.CPUMSPerStep, r.CPUMSPerStep, pctMore(c.CPUMSPerStep, r.CPUMSPerStep),
						c.Steps, r.Steps, c.StepMS, r.StepMS, pctMore(c.StepMS, r.StepMS), c.RSSMiB, r.RSSMiB)
				}
			}
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *baseline != "" {
		return compareScale(results, *baseline, *tol)
	}
	return nil
}

// summary is the median of each figure of rs.
func summary(rs []Result) Result {
	med := func(f func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return Result{
		StepMS:         med(func(r Result) float64 { return r.StepMS }),
		CPUMSPerStep:   med(func(r Result) float64 { return r.CPUMSPerStep }),
		Steps:          med(func(r Result) float64 { return r.Steps }),
		CPUPct:         med(func(r Result) float64 { return r.CPUPct }),
		RSSMiB:         med(func(r Result) float64 { return r.RSSMiB }),
		RSSNoScrapeMiB: med(func(r Result) float64 { return r.RSSNoScrapeMiB }),
	}
}

// minMedian describes the spread of rs: min and median of step and CPU,
// median RSS.
func minMedian(rs []Result) string {
	lo := rs[0]
	for _, r := range rs {
		lo.StepMS, lo.CPUPct, lo.CPUMSPerStep = min(lo.StepMS, r.StepMS), min(lo.CPUPct, r.CPUPct), min(lo.CPUMSPerStep, r.CPUMSPerStep)
	}
	m := summary(rs)
	return fmt.Sprintf("step min %.2f / median %.2f ms, cpu min %.3f / median %.3f %% of a core, cpu per step min %.3f / median %.3f ms, rss median %.1f MiB",
		lo.StepMS, m.StepMS, lo.CPUPct, m.CPUPct, lo.CPUMSPerStep, m.CPUMSPerStep, m.RSSMiB)
}

// pctMore is how much more a is than b, in percent of b.
func pctMore(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return (a/b - 1) * 100
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3gx", a/b)
}

// compareScale fails when the current binary's figures are worse than the
// baseline's by more than tol. Tiny absolute values are floored so that
// noise around zero cannot fail the run.
func compareScale(res []Result, path string, tol float64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var base []Result
	if err := json.Unmarshal(b, &base); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var bad []string
	for _, r := range res {
		if r.Label != "current" {
			continue
		}
		matched := false
		for _, br := range base {
			// Only figures of the same tree compare.
			if br.Label != "current" || br.Cgroups != r.Cgroups || br.Populated != r.Populated ||
				br.Active != r.Active || br.Layout != r.Layout {
				continue
			}
			matched = true
			check := func(what string, cur, old, floor float64) {
				if cur > max(old, floor)*tol {
					bad = append(bad, fmt.Sprintf("%d cgroups: %s %.3g vs baseline %.3g (> %gx)", r.Cgroups, what, cur, old, tol))
				}
			}
			check("step ms", r.StepMS, br.StepMS, 1)
			check("cpu %", r.CPUPct, br.CPUPct, 0.1)
			check("rss MiB", r.RSSMiB, br.RSSMiB, 16)
			check("rss MiB before any scrape", r.RSSNoScrapeMiB, br.RSSNoScrapeMiB, 16)
		}
		if !matched {
			fmt.Printf("no baseline figures in %s for %d cgroups, %d populated, %d active, layout %q: not compared\n",
				path, r.Cgroups, r.Populated, r.Active, r.Layout)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("regression against %s:\n  %s", path, strings.Join(bad, "\n  "))
	}
	fmt.Printf("no regression beyond %gx against %s\n", tol, path)
	return nil
}

// treeShape is what a fixture holds: n leaf cgroups (containers in the
// kube layout), populated of them (spread evenly) with a task, active of
// those with a task that wakes every `every`.
type treeShape struct {
	n, populated, active int
	every                time.Duration
	kube                 bool
}

// fixture is a bench parent cgroup with its tree and tasks.
type fixture struct {
	shape  treeShape
	parent string // its name below root
	root   string
	dir    string
	tasks  []*exec.Cmd
}

// newFixture creates the cgroups of shape below root and starts their
// tasks. On error the caller closes what was made.
func newFixture(root string, shape treeShape) (*fixture, error) {
	fx := &fixture{shape: shape, root: root, parent: fmt.Sprintf("%s%d.slice", prefix, os.Getpid())}
	fx.dir = filepath.Join(root, fx.parent)
	if err := makeTree(fx.dir, shape); err != nil {
		return fx, err
	}
	// Populated and active cgroups are spread evenly over the leaves, so
	// every slice holds some of each.
	pick := func(i, of, k int) bool { return k > 0 && (i+1)*k/of != i*k/of }
	p := 0
	for i := 0; i < shape.n; i++ {
		if !pick(i, shape.n, shape.populated) {
			continue
		}
		var c *exec.Cmd
		if pick(p, shape.populated, shape.active) {
			// Wakes every `every` without forking: a select(2) timeout.
			c = exec.Command("perl", "-e", fmt.Sprintf("select(undef, undef, undef, %g) while 1", shape.every.Seconds()))
		} else {
			c = exec.Command("sleep", "1000000")
		}
		p++
		cg, err := os.Open(filepath.Join(fx.dir, leaf(i, shape)))
		if err != nil {
			return fx, err
		}
		// Born in its cgroup (clone3 CLONE_INTO_CGROUP): no migration.
		c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		err = c.Start()
		cg.Close()
		if err != nil {
			return fx, err
		}
		fx.tasks = append(fx.tasks, c)
	}
	return fx, nil
}

// close kills the fixture's tasks and removes its cgroups.
func (fx *fixture) close() error {
	os.WriteFile(filepath.Join(fx.dir, "cgroup.kill"), []byte("1"), 0)
	for _, c := range fx.tasks {
		c.Process.Kill()
		c.Wait()
	}
	fx.tasks = nil
	return cgroup.RemoveTree(fx.dir, time.Minute)
}

// measure runs the daemon on the fixture's cgroups and measures it.
func measure(ctx context.Context, fx *fixture, bin string, dur, warm, every time.Duration, def []byte, withBPF, rec bool) (res Result, err error) {
	n, root, parent := fx.shape.n, fx.root, fx.parent
	res = Result{Binary: bin, Cgroups: n, Populated: fx.shape.populated, Active: fx.shape.active, ScrapeEveryS: every.Seconds(), Recording: "off"}
	if rec {
		res.Recording = "on"
	}
	if fx.shape.kube {
		res.Layout = "kube"
	}
	tmp, err := os.MkdirTemp("", "governor-bench")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	pol, err := benchPolicy(def, parent, fx.shape.kube)
	if err != nil {
		return res, err
	}
	polPath := filepath.Join(tmp, "bench.hcl")
	if err := os.WriteFile(polPath, pol, 0o600); err != nil {
		return res, err
	}
	sock := filepath.Join(tmp, "metrics.sock")
	// The recording goes to the state dir's record/ (the daemon's default
	// for a --state-dir other than its own), its default size.
	recDir := filepath.Join(tmp, "state", "record")
	args := []string{"run", "--config", polPath, "--cgroup-root", root, "--state-dir", filepath.Join(tmp, "state"),
		"--metrics-addr", "unix:" + sock, "--control-socket", "none", "--log-level", "info"}
	if !withBPF {
		args = append(args, "--no-bpf")
	}
	if !rec {
		args = append(args, "--record-size", "0")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	logf, err := os.Create(filepath.Join(tmp, "daemon.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return res, err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}
	defer func() {
		if err := stop(); err != nil && res.Steps > 0 {
			fmt.Fprintf(os.Stderr, "daemon exit: %v\n", err)
		}
	}()

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	// Wait until the daemon governs, then let it settle. The metrics are
	// not scraped before RSS is read: a scrape grows the heap by itself, so
	// RSS is reported before the first scrape and at the end, after a
	// scrape every `every` through the window as Prometheus would do.
	deadline := time.Now().Add(2 * time.Minute)
	for !logHas(logf.Name(), "governing") {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			return res, fmt.Errorf("daemon not governing after 2 minutes; log: %s", tail(logf.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(warm + time.Duration(n/1000)*time.Second):
	}
	if res.RSSNoScrapeMiB, _, err = procRSS(cmd.Process.Pid); err != nil {
		return res, err
	}
	m1, err := scrape(client)
	if err != nil {
		return res, err
	}
	res.Scrapes++
	if m1.count > 0 {
		res.FirstMS = m1.sum / m1.count * 1000
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	end := t0.Add(dur)
	for every > 0 && time.Until(end) > every {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(every):
		}
		if _, err := scrape(client); err != nil {
			return res, err
		}
		res.Scrapes++
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Until(end)):
	}
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	el := time.Since(t0).Seconds()
	rss, hwm, err := procRSS(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	m2, err := scrape(client)
	if err != nil {
		return res, err
	}
	res.Seconds = el
	res.ScrapeBytes = m2.bytes
	res.CPUPct = (cpu1 - cpu0) / el * 100
	res.RSSMiB, res.HWMMiB = rss, hwm
	res.Steps = m2.count - m1.count
	if res.Steps > 0 {
		res.StepMS = (m2.sum - m1.sum) / res.Steps * 1000
		res.CPUMSPerStep = (cpu1 - cpu0) / res.Steps * 1000
	}
	if err := stop(); err != nil {
		return res, fmt.Errorf("daemon did not stop cleanly: %v; log: %s", err, tail(logf.Name()))
	}
	if rec {
		if err := recordingSize(&res, recDir); err != nil {
			return res, fmt.Errorf("recording: %w; log: %s", err, tail(logf.Name()))
		}
	} else if _, err := os.Stat(recDir); err == nil {
		return res, fmt.Errorf("--record-size 0, yet %s exists", recDir)
	}
	return res, nil
}

// recordingSize sets res's recording figures from the blocks in dir,
// written by a daemon that has stopped. Bytes per tick are those of the
// full blocks: each starts with every cgroup in full and meta, then
// deltas, so a block cut short (the last, at SIGTERM) costs more per tick
// than the steady state and is left out when there is a full one. Hours
// in the default 256 MiB are at the window's step rate (the loop runs
// extra steps when PSI triggers fire, each one recorded).
func recordingSize(res *Result, dir string) error {
	bs, err := record.Blocks(dir)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		return errors.New("no blocks recorded")
	}
	full := 0
	for _, b := range bs {
		res.RecBytes += b.Bytes
		res.RecTicks += b.Ticks
		full = max(full, b.Ticks)
	}
	var bytes int64
	var ticks int
	for _, b := range bs {
		if b.Ticks == full {
			bytes += b.Bytes
			ticks += b.Ticks
		}
	}
	res.RecBytesPerTick = float64(bytes) / float64(ticks)
	if res.Steps > 0 && res.Seconds > 0 {
		perHour := res.RecBytesPerTick * res.Steps / res.Seconds * 3600
		res.RecHours = float64(record.DefaultSize) / perHour
	}
	return nil
}

// leaf is the path (below the bench parent) of leaf cgroup i.
//
// Flat layout: half services (one protected class, read by the suppress
// condition), half batch jobs (the class suppress and reclaim act on), 200
// per intermediate slice.
//
// Kube layout, as the kubelet's systemd driver names them: pods of two
// containers, a fifth of them Guaranteed (directly below kubepods.slice),
// half Burstable (services) and the rest BestEffort (batch jobs), each
// container a scope in its pod's slice.
func leaf(i int, shape treeShape) string {
	if !shape.kube {
		kind := "svc"
		if i%2 == 1 {
			kind = "batch"
		}
		return fmt.Sprintf("%s.slice/g%03d.slice/%s-%05d", kind, i/200, kind, i)
	}
	pod := i / 2
	uid := fmt.Sprintf("%08x_%04x_4000_8000_%012x", uint32(pod*2654435761), pod%65536, pod)
	ctr := fmt.Sprintf("cri-containerd-%016x%048x.scope", uint64(i)*0x9e3779b97f4a7c15, i)
	switch pod % 10 {
	case 0, 1:
		return fmt.Sprintf("kubepods.slice/kubepods-pod%s.slice/%s", uid, ctr)
	case 2, 3, 4, 5, 6:
		return fmt.Sprintf("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/%s", uid, ctr)
	default:
		return fmt.Sprintf("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/%s", uid, ctr)
	}
}

// makeTree creates dir and the leaves of shape with their slices.
func makeTree(dir string, shape treeShape) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	made := map[string]bool{dir: true}
	var mk func(p string) error
	mk = func(p string) error {
		if made[p] {
			return nil
		}
		if err := mk(filepath.Dir(p)); err != nil {
			return err
		}
		made[p] = true
		return os.Mkdir(p, 0o755)
	}
	for i := 0; i < shape.n; i++ {
		if err := mk(filepath.Join(dir, leaf(i, shape))); err != nil {
			return err
		}
	}
	return nil
}

// cleanupStale removes bench cgroups left by runs whose process is gone
// (all of them with all set).
func cleanupStale(root string, all bool) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, prefix) {
			continue
		}
		// governor-bench-PID.slice, governor-bench-gotest-PID (go test).
		rest := strings.TrimSuffix(name, ".slice")
		pid, _ := strconv.Atoi(rest[strings.LastIndexByte(rest, '-')+1:])
		if !all && pid > 0 && syscall.Kill(pid, 0) == nil {
			continue // a concurrent run's
		}
		fmt.Fprintf(os.Stderr, "removing stale %s\n", filepath.Join(root, name))
		if err := cgroup.RemoveTree(filepath.Join(root, name), time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// benchPolicy is the default policy with two classes for the bench cgroups
// inserted before its catch-all class, a suppress controller acting on the
// batch class while the service class waits for CPU, and proactive reclaim
// of every batch cgroup. Where the host lacks the cpu and memory controllers
// those two are disabled (observing only), but classification, sampling and
// PSI trigger arming run as on a real host.
//
// In the kube layout the Burstable pods are the services and the
// BestEffort containers the batch jobs; Guaranteed pods fall to the
// default policy's classes.
func benchPolicy(def []byte, parent string, kube bool) ([]byte, error) {
	marker := `class "other"`
	i := strings.Index(string(def), marker)
	if i < 0 {
		return nil, fmt.Errorf("default policy has no %s to insert the bench classes before", marker)
	}
	svc, batch := "svc.slice/**", "batch.slice/*/*"
	if kube {
		svc, batch = "kubepods.slice/kubepods-burstable.slice/**", "kubepods.slice/kubepods-besteffort.slice/*/*"
	}
	classes := fmt.Sprintf(`class "bench-svc" {
  match     = ["%[1]s/%[2]s"]
  protected = true
}

class "bench-batch" {
  match = ["%[1]s/%[3]s"]
}

`, parent, svc, batch)
	ctls := `
suppress "bench-batch-yields-cpu" {
  target = "bench-batch"
  when {
    class  = "bench-svc"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "5s"
  }
  recover {
    class  = "bench-svc"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }
  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "5s"
  }
}

reclaim "bench-batch-proactive" {
  target   = "bench-batch"
  signal   = "memory.some.stall"
  goal     = "0.1%"
  interval = "6s"
  step     = "0.5%"
  max_step = "32MiB"
  min_size = "64MiB"
}
`
	s := string(def[:i]) + classes + string(def[i:]) + ctls
	return []byte(s), nil
}

type metricsSnap struct {
	sum, count float64
	bytes      int // size of the exposition
}

var metricLine = regexp.MustCompile(`^governor_loop_step_duration_seconds_(sum|count)\s+(\S+)`)

func scrape(c *http.Client) (metricsSnap, error) {
	var m metricsSnap
	resp, err := c.Get("http://governor/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for sc.Scan() {
		m.bytes += len(sc.Bytes()) + 1
		if g := metricLine.FindStringSubmatch(sc.Text()); g != nil {
			v, _ := strconv.ParseFloat(g[2], 64)
			if g[1] == "sum" {
				m.sum = v
			} else {
				m.count = v
			}
			found++
		}
	}
	if found < 2 {
		return m, errors.New("no step histogram in metrics")
	}
	return m, sc.Err()
}

// procCPU returns the CPU time pid has used, in seconds: the larger of the
// sum of its threads' run time in /proc/PID/task/*/schedstat (nanoseconds;
// a thread that exited is no longer counted there) and utime+stime from
// /proc/PID/stat (the same run time, counting exited threads, but truncated
// to clock ticks of 10 ms: at 100 cgroups a minute's window held 5 of
// them, so the figure moved in steps of 0.017 % of a core).
func procCPU(pid int) (float64, error) {
	st, err := procStatCPU(pid)
	if err != nil {
		return 0, err
	}
	return max(st, procSchedCPU(pid)), nil
}

// procSchedCPU sums the run time of pid's threads from schedstat, 0 if
// unavailable.
func procSchedCPU(pid int) float64 {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			v, _ := strconv.ParseFloat(fs[0], 64)
			ns += v
		}
	}
	return ns / 1e9
}

// procStatCPU returns utime+stime of pid in seconds.
func procStatCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc/PID/stat")
	}
	f := strings.Fields(s[i+1:])
	// fields after ")": state(0) ... utime is field 14 of the line, index 11 here.
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck, nil
}

// clkTck is USER_HZ, 100 on every Linux architecture Go supports.
const clkTck = 100

func procRSS(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v / 1024
		case "VmHWM:":
			hwm = v / 1024
		}
	}
	return rss, hwm, nil
}

func machine() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	rel := utsString(u.Release[:])
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			n++
		}
	}
	return fmt.Sprintf("%s, %d CPUs, Linux %s", model, n, rel)
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func logHas(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ---- check: go test -bench output against a baseline ----------------------

// GoBench is one benchmark's figures.
type GoBench struct {
	NsOp     float64 `json:"ns_op"`
	AllocsOp float64 `json:"allocs_op"`
	BytesOp  float64 `json:"bytes_op"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?\s([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

func parseGoBench(r io.Reader) (map[string]GoBench, error) {
	out := map[string]GoBench{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		g := benchLine.FindStringSubmatch(sc.Text())
		if g == nil {
			continue
		}
		var b GoBench
		b.NsOp, _ = strconv.ParseFloat(g[2], 64)
		if g[3] != "" {
			b.BytesOp, _ = strconv.ParseFloat(g[3], 64)
			b.AllocsOp, _ = strconv.ParseFloat(g[4], 64)
		}
		out[g[1]] = b
	}
	return out, sc.Err()
}

// checkCmd reads `go test -bench -benchmem` output and fails when a
// benchmark is slower, or allocates more, than the baseline by more than
// the tolerance. -write records the output as the new baseline.
func checkCmd(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	baseline := fs.String("baseline", "", "baseline JSON")
	tol := fs.Float64("tolerance", 3, "regression factor")
	write := fs.Bool("write", false, "write the input as the new baseline instead of checking")
	fs.Parse(args)
	cur, err := parseGoBench(io.TeeReader(in, out))
	if err != nil {
		return err
	}
	if len(cur) == 0 {
		return errors.New("no benchmark results in the input")
	}
	if *write {
		b, _ := json.MarshalIndent(cur, "", "  ")
		return os.WriteFile(*baseline, append(b, '\n'), 0o644)
	}
	b, err := os.ReadFile(*baseline)
	if err != nil {
		return err
	}
	var base map[string]GoBench
	if err := json.Unmarshal(b, &base); err != nil {
		return err
	}
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	var bad []string
	for _, n := range names {
		c, ok := base[n]
		if !ok {
			continue
		}
		r := cur[n]
		if r.NsOp > max(c.NsOp, 1000)*(*tol) {
			bad = append(bad, fmt.Sprintf("%s: %.0f ns/op vs baseline %.0f (> %gx)", n, r.NsOp, c.NsOp, *tol))
		}
		// Allocations are deterministic: allow the factor plus a few.
		if r.AllocsOp > c.AllocsOp*(*tol)+4 {
			bad = append(bad, fmt.Sprintf("%s: %.0f allocs/op vs baseline %.0f (> %gx)", n, r.AllocsOp, c.AllocsOp, *tol))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("benchmark regression against %s:\n  %s", *baseline, strings.Join(bad, "\n  "))
	}
	fmt.Fprintf(out, "go benchmarks: no regression beyond %gx against %s\n", *tol, *baseline)
	return nil
}
