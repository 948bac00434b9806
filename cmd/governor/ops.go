package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/bpf"
	sdact "github.com/governor-dev/governor/cgroup/systemd"
	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/control"
	"github.com/governor-dev/governor/governor/metrics"
)

// opsFlags configure what the daemon offers operators besides its logs.
type opsFlags struct {
	metricsAddr        string
	metricsCgroupLimit int
	controlSocket      string
	controlGroup       string
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-addr", metrics.DefaultAddr, "serve Prometheus metrics at `ADDR` (HOST:PORT, path /metrics), or on \"unix:/path\"; \"\" disables")
	fs.IntVar(&o.metricsCgroupLimit, "metrics-cgroup-limit", metrics.DefaultCgroupLimit,
		"export per-cgroup series for at most `N` governed cgroups per scrape (those with changed knobs, then the last acted on, then the highest pressure); 0: all")
	fs.StringVar(&o.controlSocket, "control-socket", "", "control socket `PATH` for status, top, explain and admission (default STATE_DIR/control.sock); \"none\" disables")
	fs.StringVar(&o.controlGroup, "control-group", "", "`GROUP` (name or gid) also allowed on the control socket (mode 0660); default: root only")
}

// ops is the daemon's operator-facing side: the actuator (systemd for unit
// cgroups, cgroupfs otherwise), metrics, the control socket, the audit
// trail and log-level signals.
type ops struct {
	f     opsFlags
	log   hclog.Logger
	audit hclog.Logger
	act   *sdact.Actuator
	m     *metrics.Metrics
	bpf   func() []bpf.ProgStats
	// alerts: the sensor's fast-path alert count (nil without a sensor).
	alerts func() uint64
	sock   string
}

// progStats converts the sensor's program statistics for metrics (nil
// without a sensor).
func (o *ops) progStats() []metrics.ProgStats {
	if o.bpf == nil {
		return nil
	}
	ps := o.bpf()
	out := make([]metrics.ProgStats, len(ps))
	for i, p := range ps {
		out[i] = metrics.ProgStats{Name: p.Name, Tracepoint: p.Tracepoint, RunCount: p.RunCount, RunTime: p.RunTime}
	}
	return out
}

func newOps(f opsFlags, stateDir, root string, log hclog.Logger) *ops {
	o := &ops{f: f, log: log, audit: log.Named("audit"), act: sdact.NewDefault(root, log.Named("actuator")), m: metrics.New(metrics.Source{}, 0)}
	o.m.SetCgroupLimit(f.metricsCgroupLimit)
	o.m.SetBuildInfo(version)
	switch f.controlSocket {
	case "":
		o.sock = filepath.Join(stateDir, "control.sock")
	case "none":
	default:
		o.sock = f.controlSocket
	}
	return o
}

func (o *ops) close() { o.act.Close() }

// afterStep chains the metrics hook after another AfterStep hook.
func (o *ops) afterStep(next func(governor.StepResult)) func(governor.StepResult) {
	return func(r governor.StepResult) {
		if next != nil {
			next(r)
		}
		o.m.AfterStep(r)
	}
}

// onAction is Config.OnAction: metrics, and the audit trail — one log line
// per action with every field (with --log-json, one JSON object).
func (o *ops) onAction(a governor.Action) {
	o.m.OnAction(a)
	governor.LogAction(o.audit, a)
}

// start serves metrics and the control socket for loop and watches
// SIGUSR1/SIGUSR2 until ctx ends. An address or socket that cannot be
// bound is an error: the daemon does not start without what it was told
// to offer ("" and "none" disable them).
func (o *ops) start(ctx context.Context, loop *governor.Loop) error {
	via := o.act.Via
	o.m.SetSource(metrics.Source{Status: loop.Status, Visit: loop.VisitStatus, Admission: loop.Admission, Via: via, BPF: o.progStats, Alerts: o.alerts})
	if o.f.metricsAddr != "" {
		if _, err := metrics.Serve(ctx, o.f.metricsAddr, o.m.Handler(), o.log.Named("metrics")); err != nil {
			return fmt.Errorf("cannot serve metrics on %s (--metrics-addr \"\" disables them): %w", o.f.metricsAddr, err)
		}
	}
	if o.sock != "" {
		srv, err := control.Listen(control.Options{Path: o.sock, Group: o.f.controlGroup, Logger: o.log.Named("control")},
			control.Backend{Status: loop.Status, Visit: loop.VisitStatus, Explain: loop.Explain, Admission: loop.Admission, Via: via})
		if err != nil {
			return fmt.Errorf("cannot open the control socket %s (--control-socket none disables it): %w", o.sock, err)
		}
		go srv.Serve(ctx)
	}
	go watchLogLevel(ctx, o.log)
	return nil
}

// levels, quietest last.
var levels = []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error}

// watchLogLevel: SIGUSR1 makes the log one level more verbose (down to
// trace), SIGUSR2 one level quieter (up to error). Every named logger
// shares the root's level.
func watchLogLevel(ctx context.Context, log hclog.Logger) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			log.SetLevel(shiftLevel(log.GetLevel(), s == syscall.SIGUSR1))
			log.Log(hclog.Info, "log level changed", "level", log.GetLevel().String(), "signal", s.String())
		}
	}
}

func shiftLevel(cur hclog.Level, verbose bool) hclog.Level {
	i := 2
	for j, l := range levels {
		if l == cur {
			i = j
		}
	}
	if verbose && i > 0 {
		i--
	} else if !verbose && i < len(levels)-1 {
		i++
	}
	return levels[i]
}
