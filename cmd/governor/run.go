package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/bpf"
	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/internal/procfs"
	"github.com/governor-dev/governor/policies"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type runFlags struct {
	configs       stringList
	dryRun        bool
	logLevel      string
	logJSON       bool
	stateDir      string
	cgroupRoot    string
	noBPF         bool
	noCgroupIter  bool
	bpfStamps     bool
	allowInsecure bool
	allowSystemd  stringList
	ops           opsFlags
	record        recordFlags
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	// Signals first of all, on a goroutine of their own (signals.go): a
	// SIGTERM during the policy load, the BPF load (seconds, tens under
	// emulation), crash recovery or a reload must end in a clean stop,
	// not the default death or a wait behind a blocked read.
	sig := catchSignals()
	defer sig.stop()
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Var(&f.configs, "config", "policy file, or directory of *.hcl files (`PATH`; repeatable); none: the built-in default policy")
	fs.BoolVar(&f.dryRun, "dry-run", false, "log every action it would take; write nothing")
	fs.StringVar(&f.logLevel, "log-level", "info", "`LEVEL`: trace, debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines (for journald and log shippers)")
	fs.StringVar(&f.stateDir, "state-dir", "/run/governor", "`DIR` where originals of changed knobs are recorded for crash recovery (and the control socket)")
	fs.StringVar(&f.cgroupRoot, "cgroup-root", "", "cgroup2 mount point `DIR` (default: found in /proc/self/mountinfo)")
	fs.BoolVar(&f.noBPF, "no-bpf", false, "do not load the BPF sensors (PSI and cgroup statistics only)")
	fs.BoolVar(&f.noCgroupIter, "no-cgroup-iter", false, "do not use the BPF cgroup iterator to find the cgroups whose pressure and CPU counters moved (read every busy cgroup's files instead)")
	fs.BoolVar(&f.bpfStamps, "bpf-wakeup-stamps", false, "time run-queue waits with BPF wakeup stamps instead of the kernel's sched_info accounting (about twice the BPF cost)")
	fs.Var(&f.allowSystemd, "allow-systemd", "let policies limit this systemd service `UNIT` (e.g. systemd-oomd.service; repeatable): systemd's own services and D-Bus are otherwise never limited, frozen or killed")
	f.record.register(fs)
	fs.BoolVar(&f.allowInsecure, "allow-insecure-config", false, "accept policy files not owned by root or writable by group/others (tests only)")
	f.ops.register(fs)
	rest, code, ok := parseFlags(fs, runHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "governor run: unexpected argument %q\n", rest[0])
		return 2
	}
	if f.ops.metricsCgroupLimit < 0 {
		fmt.Fprintf(stderr, "governor run: --metrics-cgroup-limit must be 0 (no limit) or more, not %d\n", f.ops.metricsCgroupLimit)
		return 2
	}
	level := hclog.LevelFromString(f.logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "governor run: unknown log level %q\n", f.logLevel)
		return 2
	}
	if !f.dryRun {
		// Refuse at once, before anything is touched, rather than
		// "govern" with every write failing.
		if err := checkPrivileges(f); err != nil {
			fmt.Fprintf(stderr, "governor run: %v\n", err)
			return 1
		}
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "governor",
		Level:      level,
		JSONFormat: f.logJSON,
		Output:     stderr,
		Color:      hclog.AutoColor,
	})
	setGCPercent(os.Getenv("GOGC"))
	setMaxProcs(os.Getenv("GOMAXPROCS"))
	if err := run(f, log, stderr, sig); err != nil {
		log.Error("governor stopped", "error", err)
		return 1
	}
	return 0
}

// defaultGCPercent is the daemon's garbage-collection target unless GOGC
// says otherwise. The loop allocates next to nothing per tick; what it does
// allocate comes in bursts (a metrics scrape, a status request) over a live
// heap that grows with the number of cgroups, and Go's default of 100 lets
// the heap grow to twice the live data after each burst. 50 keeps RSS at
// 10,000 cgroups under 64 MiB with scrapes every 15 s for no measurable CPU
// (BENCHMARKS.md, "RSS").
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless the operator set GOGC (the
// runtime has then applied it already).
func setGCPercent(env string) {
	if env == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// defaultMaxProcs is the daemon's GOMAXPROCS unless GOMAXPROCS says
// otherwise. The loop is one goroutine that sleeps between ticks; what else
// runs (scrapes, status requests, PSI trigger wake-ups) is brief. With more
// Ps, every wake-up of the loop also wakes threads to look for work on the
// idle ones: at 100 cgroups on a quiet 2-CPU VM the daemon used 0.086 % of
// a core with the default (2) and 0.065 % with 1, no scrape
// (BENCHMARKS.md). Blocking syscalls (cgroupfs writes, epoll) hand the P
// over as with any GOMAXPROCS.
const defaultMaxProcs = 1

// setMaxProcs applies defaultMaxProcs unless the operator set GOMAXPROCS
// (the runtime has then applied it already).
func setMaxProcs(env string) {
	if env == "" {
		runtime.GOMAXPROCS(defaultMaxProcs)
	}
}

// loadPolicy reads the configured policy files, or the built-in default.
func loadPolicy(f runFlags, log hclog.Logger, _ io.Writer) (*governor.Policy, error) {
	if len(f.configs) == 0 {
		log.Info("no --config given: using the built-in default policy (see README, 'Default policy')")
		return policies.Default(), nil
	}
	res := policies.Load(f.configs, policies.Options{AllowInsecure: f.allowInsecure})
	// Each diagnostic once, through the logger: with --log-json every
	// line stays one JSON object.
	errs := logDiagnostics(log.Named("policy"), res)
	if res.Diags.HasErrors() {
		return nil, policyError(f.configs, max(errs, 1))
	}
	if noPolicyFiles(res.Diags, len(f.configs)) {
		log.Warn("no *.hcl policy files in the configuration: using the built-in default policy (see README, 'Default policy')", "config", f.configs.String())
		return policies.Default(), nil
	}
	return res.Policy, nil
}

// reloadTimeout bounds a policy reload: a load that takes longer (a FIFO
// or a hung file system under the policy directory) is abandoned and the
// running policy kept.
const reloadTimeout = 10 * time.Second

// policyResult is loadPolicy's result, passed between goroutines.
type policyResult struct {
	pol *governor.Policy
	err error
}

func run(f runFlags, log hclog.Logger, diagOut io.Writer, sig *signals) error {
	ctx := sig.ctx
	log.Info("starting", "version", version, "dry_run", f.dryRun)
	// stoppedEarly: a stop signal before the loop ran; nothing has been
	// changed yet, so there is nothing to restore (a crashed run's state
	// file stays for the next start).
	stoppedEarly := func(during string) error {
		log.Info("signal received while starting; nothing changed yet; stopping", "signal", fmt.Sprint(sig.stopSignal()), "during", during)
		return nil
	}

	root := f.cgroupRoot
	if root == "" {
		var err error
		if root, err = cgroup.FindMount(); err != nil {
			return fmt.Errorf("no cgroup v2 hierarchy: %w", err)
		}
	}
	// One daemon per hierarchy and per state directory (lock.go), before
	// anything is read or written for governing.
	lock, err := lockDaemon(f.stateDir, root, f.dryRun)
	if err != nil {
		return err
	}
	defer lock.Close()

	res, ok := within(ctx, func() policyResult {
		p, err := loadPolicy(f, log, diagOut)
		return policyResult{p, err}
	})
	if !ok {
		return stoppedEarly("policy load")
	}
	if res.err != nil {
		return res.err
	}
	pol := res.pol

	caps, err := cgroup.Probe(root)
	if err != nil {
		return fmt.Errorf("probe cgroup2 hierarchy %s: %w", root, err)
	}
	logCapabilities(log.Named("cgroup"), caps)
	self := selfCgroup()

	var (
		bpfStats  func() []bpf.ProgStats
		bpfAlerts func() uint64
		watcher   governor.Watcher
	)
	src := cgroup.NewSource(root, cgroup.SourceOptions{Logger: log.Named("source")})
	sources := []governor.Source{src}
	if !f.noBPF {
		type loaded struct {
			s   *bpf.Sensor
			err error
		}
		r, ok := within(ctx, func() loaded {
			s, err := bpf.Load(bpf.Options{Logger: log.Named("bpf"), ForceStamps: f.bpfStamps})
			return loaded{s, err}
		})
		if !ok {
			return stoppedEarly("BPF load")
		}
		if r.err != nil {
			log.Warn("BPF sensing unavailable; continuing with PSI and cgroup statistics only (runq.* and reclaim.stall signals absent)", "error", r.err)
		} else {
			sensor := r.s
			defer sensor.Close()
			log.Info("BPF sensing loaded", "mode", sensor.Mode(), "run_queue_waits", sensor.WaitSource())
			bpfStats = sensor.Stats
			sources = append(sources, sensor)
			watcher, bpfAlerts = sensor, sensor.Alerts
		}
		if !f.noCgroupIter {
			if mv, err := bpf.OpenMoves(root); err != nil {
				log.Info("BPF cgroup iterator unavailable; each busy cgroup's files are read to see whether they moved", "error", err)
			} else {
				defer mv.Close()
				src.SetMoves(mv)
				log.Info("BPF cgroup iterator loaded: only cgroups whose pressure or CPU counters moved are read")
			}
		}
	}
	if ctx.Err() != nil {
		return stoppedEarly("start-up")
	}

	trig, err := cgroup.NewTriggers(log.Named("psi"))
	if err != nil {
		log.Warn("PSI triggers unavailable; relying on the tick alone", "error", err)
	} else {
		defer trig.Close()
		armHostTriggers(trig, log)
	}

	sd := newSystemd(log.Named("systemd"))
	ops := newOps(f.ops, f.stateDir, root, log)
	defer ops.close()
	ops.bpf, ops.alerts = bpfStats, bpfAlerts
	cfg := governor.Config{
		Policy:    pol,
		Sources:   sources,
		Actuator:  ops.act,
		Logger:    log.Named("loop"),
		DryRun:    f.dryRun,
		StatePath: filepath.Join(f.stateDir, "state.json"),
		Caps:      caps,
		SelfPath:  self,
		// systemd's own services and D-Bus stay off limits unless named.
		AllowSystemd: f.allowSystemd,
		AfterStep:    ops.afterStep(sd.afterStep),
		OnAction:     ops.onAction,
		Hints:        cgroup.XattrHints{Root: root},
	}
	if watcher != nil {
		cfg.Watcher = watcher
	}
	if trig != nil {
		cfg.Notifier = trig
		cfg.Armer = cgroup.Armer{Triggers: trig, Root: root}
	}
	if rec := openRecorder(f, cfg, log.Named("record")); rec != nil {
		cfg.Recorder, cfg.Actuator = rec, rec.Wrap(cfg.Actuator)
		defer rec.Close() // after the loop's restores: they are recorded too
	}
	loop, err := governor.New(cfg)
	if err != nil {
		return err
	}
	// A metrics address or control socket that cannot be bound is a
	// start-up error (they are disabled with --metrics-addr "" and
	// --control-socket none), found before anything is changed.
	if err := ops.start(ctx, loop); err != nil {
		return err
	}
	recovered, ok := within(ctx, loop.Recover)
	if !ok {
		return stoppedEarly("crash recovery")
	}
	if recovered != nil {
		log.Error("cannot use the state file of an earlier run; starting without it", "error", recovered)
	}
	go reloadPolicies(ctx, sig.reload, f, log, diagOut, sd, loop)

	log.Info("governing", "cgroup_root", root, "self", "/"+self, "tick", pol.Tick.String(), "classes", len(pol.Classes), "state", cfg.StatePath)
	runErr := loop.Run(ctx)
	if s := sig.stopSignal(); s != nil {
		log.Info("signal received; restoring every changed knob and stopping", "signal", s.String())
		sd.stopping()
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer closeCancel()
	closeErr := loop.Close(closeCtx)
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("restoring on exit: %w", closeErr)
	}
	log.Info("stopped cleanly")
	return nil
}

// reloadPolicies loads the policy again on each SIGHUP, off the signal
// goroutine, until ctx ends. A load that does not finish within
// reloadTimeout, or when a stop signal comes, is abandoned: the running
// policy stays.
func reloadPolicies(ctx context.Context, reload <-chan struct{}, f runFlags, log hclog.Logger, diagOut io.Writer, sd *systemd, loop *governor.Loop) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
		}
		sd.reloading()
		rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
		res, ok := within(rctx, func() policyResult {
			p, err := loadPolicy(f, log, diagOut)
			return policyResult{p, err}
		})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case !ok:
			log.Error("reload did not finish; abandoned, keeping the running policy (is a policy file a FIFO, or its file system hung?)", "timeout", reloadTimeout.String(), "config", f.configs.String())
		case res.err != nil:
			log.Error("reload failed; keeping the running policy", "error", res.err)
		default:
			loop.SetPolicy(res.pol)
			log.Info("policy reloaded", "config", f.configs.String())
		}
		sd.ready()
	}
}

// logCapabilities tells the operator what the hierarchy allows.
func logCapabilities(log hclog.Logger, c governor.Capabilities) {
	var have []string
	for k, ok := range c.Controllers {
		if ok {
			have = append(have, k)
		}
	}
	sort.Strings(have)
	log.Info("cgroup2 hierarchy", "root", c.Root, "controllers", strings.Join(have, " "),
		"memory.reclaim", c.Reclaim, "cgroup.freeze", c.Freeze, "cgroup.kill", c.Kill, "detected_from", c.FeaturesFrom)
	var missing []string
	for _, ctl := range []string{"memory", "cpu", "io"} {
		if !c.Controllers[ctl] {
			missing = append(missing, ctl)
		}
	}
	if len(missing) > 0 {
		log.Warn("controllers not enabled at the cgroup2 root: their knobs are impossible for cgroups that systemd does not manage (for a unit, the governor asks systemd for the property, which enables the controller); pressure is still observed; `governor validate --host` lists what each controller can do",
			"missing", strings.Join(missing, " "), "root", c.Root)
	}
}

// armHostTriggers wakes the loop as soon as the host's pressure rises, so a
// reaction does not wait for the next tick: 10% stall over a 2 s window
// (2 s multiples work without CAP_SYS_RESOURCE).
func armHostTriggers(t *cgroup.Triggers, log hclog.Logger) {
	for _, res := range []string{"cpu", "memory", "io"} {
		path := "/proc/pressure/" + res
		w, err := t.Add(governor.Ref{Path: ""}, path, false, 200*time.Millisecond, 2*time.Second)
		if err != nil {
			log.Warn("cannot arm PSI trigger", "file", path, "error", err)
			continue
		}
		log.Debug("armed PSI trigger", "file", path, "window", w.String())
	}
}

// selfCgroup returns the governor's own cgroup v2 path, relative to the
// root ("" when unknown or the root).
func selfCgroup() string {
	rel, err := procfs.ProcCgroup(0)
	if err != nil {
		return ""
	}
	return strings.Trim(rel, "/")
}
