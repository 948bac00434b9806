// Package metrics exports the governor's state for Prometheus. Counters and
// the step-duration histogram are fed by the loop's hooks (OnAction,
// AfterStep) at no more than a counter increment per event; everything that
// describes the current state — pressure per governed cgroup, managed knobs
// now and originally, controllers, the admission verdict, BPF program
// health — is read from the loop's Status when Prometheus scrapes, so an
// idle scrape interval costs the loop nothing.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/governor-dev/governor/bpf"
	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
)

// DefaultAddr is where the daemon serves /metrics unless told otherwise.
const DefaultAddr = "127.0.0.1:9477"

// Source is what a scrape reads. Status and Admission are normally the
// running loop's (they fail when it is not running: the scrape then reports
// governor_up 0). The rest are optional.
type Source struct {
	Status    func(ctx context.Context) (governor.Status, error)
	Admission func(ctx context.Context) (governor.AdmissionVerdict, error)
	// Reader reads the current value of managed knobs (the actuator).
	Reader interface {
		Read(ctx context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error)
	}
	// Via says how a cgroup's limits are written ("systemd", "cgroupfs").
	Via func(governor.Ref) string
	// BPF returns the sensor's program statistics.
	BPF func() []bpf.ProgStats
}

// Metrics holds the registry and the hook-fed instruments.
type Metrics struct {
	reg     *prometheus.Registry
	actions *prometheus.CounterVec
	errs    *prometheus.CounterVec
	steps   prometheus.Counter
	stepErr prometheus.Counter
	stepDur prometheus.Histogram
	seen    prometheus.Gauge
	state   *stateCollector
}

// New builds the metrics. src may be completed later with SetSource, before
// serving. timeout bounds each scrape's Status call (default 2 s).
func New(src Source, timeout time.Duration) *Metrics {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "governor_actions_total",
			Help: "Actions taken (or, in dry-run, that would have been), by controller and kind (write, restore, reclaim, freeze, thaw, kill, hand-back).",
		}, []string{"controller", "kind"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "governor_action_errors_total",
			Help: "Actions that failed (write errors), by controller and kind.",
		}, []string{"controller", "kind"}),
		steps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "governor_loop_steps_total",
			Help: "Control loop steps run.",
		}),
		stepErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "governor_loop_step_errors_total",
			Help: "Failed writes counted by the control loop's steps.",
		}),
		stepDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "governor_loop_step_duration_seconds",
			Help:    "Duration of one control loop step (sample, decide, write).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		seen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "governor_cgroups_seen",
			Help: "Cgroups in the hierarchy at the last step.",
		}),
		state: &stateCollector{src: src, timeout: timeout},
	}
	m.reg.MustRegister(m.actions, m.errs, m.steps, m.stepErr, m.stepDur, m.seen, m.state,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetSource replaces what scrapes read (call before serving).
func (m *Metrics) SetSource(src Source) { m.state.src = src }

// Registry is the registry behind Handler.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// OnAction is the loop's Config.OnAction hook.
func (m *Metrics) OnAction(a governor.Action) {
	m.actions.WithLabelValues(a.Controller, a.Kind).Inc()
	if a.Err != nil {
		m.errs.WithLabelValues(a.Controller, a.Kind).Inc()
	}
}

// AfterStep is the loop's Config.AfterStep hook.
func (m *Metrics) AfterStep(r governor.StepResult) {
	m.steps.Inc()
	m.stepErr.Add(float64(r.Errors))
	m.stepDur.Observe(r.Duration.Seconds())
	m.seen.Set(float64(r.Cgroups))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second})
}

// Serve serves /metrics on addr until ctx ends: "host:port", or
// "unix:/path" for a unix socket (mode 0660, replaced if it exists). It
// returns the address once listening (or the failure to).
func Serve(ctx context.Context, addr string, h http.Handler, log hclog.Logger) (net.Addr, error) {
	var ln net.Listener
	var err error
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		_ = os.Remove(p)
		if ln, err = net.Listen("unix", p); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		if err := os.Chmod(p, 0o660); err != nil {
			ln.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	} else if ln, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "governor: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 20 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return ln.Addr(), nil
}

var (
	dUp = prometheus.NewDesc("governor_up",
		"1 when the control loop answered the scrape's status request in time.", nil, nil)
	dGoverned = prometheus.NewDesc("governor_cgroups_governed",
		"Cgroups that belong to a class of the policy.", nil, nil)
	dPressure = prometheus.NewDesc("governor_cgroup_pressure_avg10_ratio",
		"PSI 10 s average of a governed cgroup (0..1): share of time some/all tasks stalled on the resource.",
		[]string{"cgroup", "class", "resource", "kind"}, nil)
	dHostPressure = prometheus.NewDesc("governor_host_pressure_avg10_ratio",
		"PSI 10 s average of the host (0..1).", []string{"resource", "kind"}, nil)
	dRunq = prometheus.NewDesc("governor_cgroup_runq_latency_p99_seconds",
		"99th percentile run-queue latency of the cgroup's tasks over the last window (BPF).",
		[]string{"cgroup", "class"}, nil)
	dInfo = prometheus.NewDesc("governor_cgroup_info",
		"A governed cgroup: its class, whether it is protected, and how its limits are written (systemd or cgroupfs).",
		[]string{"cgroup", "class", "protected", "via"}, nil)
	dKnob = prometheus.NewDesc("governor_knob_value",
		"Current value of a knob the governor manages (bytes for memory.*, CPUs for cpu.max, the weight otherwise; +Inf is max).",
		[]string{"cgroup", "class", "knob", "controller"}, nil)
	dKnobOrig = prometheus.NewDesc("governor_knob_original_value",
		"Value the knob had before the governor changed it, restored on exit (units as governor_knob_value).",
		[]string{"cgroup", "class", "knob", "controller"}, nil)
	dHandedBack = prometheus.NewDesc("governor_knobs_handed_back",
		"Knobs someone else changed, which the governor has handed back and leaves alone.", nil, nil)
	dCtlActive = prometheus.NewDesc("governor_controller_active",
		"1 while a controller's trigger is active (controllers whose conditions read a class or the host).",
		[]string{"controller", "kind", "target"}, nil)
	dCtlDisabled = prometheus.NewDesc("governor_controller_disabled",
		"1 when a controller of the policy cannot act on this host (missing cgroup controller or kernel feature).",
		[]string{"controller", "kind", "target"}, nil)
	dAccepting = prometheus.NewDesc("governor_admission_accepting",
		"1 while the node accepts more batch work, 0 while pressure says it should not.", []string{"origin"}, nil)
	dAdmSince = prometheus.NewDesc("governor_admission_since_timestamp_seconds",
		"When the admission verdict last changed (Unix time).", nil, nil)
	dHeadroom = prometheus.NewDesc("governor_admission_headroom",
		"Per admission condition, distance from the current value to the threshold in the signal's unit (percentage points for pressure); negative when crossed.",
		[]string{"subject", "signal"}, nil)
	dBPFRuns = prometheus.NewDesc("governor_bpf_program_runs_total",
		"Times a BPF program ran (kernel statistics).", []string{"program", "tracepoint"}, nil)
	dBPFTime = prometheus.NewDesc("governor_bpf_program_run_seconds_total",
		"Total run time of a BPF program (zero unless BPF statistics are enabled).", []string{"program", "tracepoint"}, nil)
)

// stateCollector reads the loop's status on each scrape.
type stateCollector struct {
	src     Source
	timeout time.Duration
}

// Describe sends nothing: the collector is unchecked (its series depend on
// the policy and the hierarchy).
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

var psiSignals = []struct {
	sig            governor.Signal
	resource, kind string
}{
	{governor.CPUSomeAvg10, "cpu", "some"}, {governor.CPUFullAvg10, "cpu", "full"},
	{governor.MemorySomeAvg10, "memory", "some"}, {governor.MemoryFullAvg10, "memory", "full"},
	{governor.IOSomeAvg10, "io", "some"}, {governor.IOFullAvg10, "io", "full"},
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if b := c.src.BPF; b != nil {
		for _, p := range b() {
			ch <- prometheus.MustNewConstMetric(dBPFRuns, prometheus.CounterValue, float64(p.RunCount), p.Name, p.Tracepoint)
			ch <- prometheus.MustNewConstMetric(dBPFTime, prometheus.CounterValue, p.RunTime.Seconds(), p.Name, p.Tracepoint)
		}
	}
	if c.src.Status == nil {
		gauge(ch, dUp, 0)
		return
	}
	st, err := c.src.Status(ctx)
	if err != nil {
		gauge(ch, dUp, 0)
		return
	}
	gauge(ch, dUp, 1)
	gauge(ch, dGoverned, float64(len(st.Cgroups)))
	for _, p := range psiSignals {
		if v, ok := st.Host[p.sig.Name()]; ok {
			gauge(ch, dHostPressure, v/100, p.resource, p.kind)
		}
	}
	handedBack := 0
	for _, cg := range st.Cgroups {
		path := cg.String()
		via := ""
		if c.src.Via != nil {
			via = c.src.Via(cg.Ref)
		}
		gauge(ch, dInfo, 1, path, cg.Class, fmt.Sprint(cg.Protected), via)
		for _, p := range psiSignals {
			if v, ok := cg.Signals[p.sig.Name()]; ok {
				gauge(ch, dPressure, v/100, path, cg.Class, p.resource, p.kind)
			}
		}
		if v, ok := cg.Signals[governor.RunqP99.Name()]; ok {
			gauge(ch, dRunq, v, path, cg.Class)
		}
		for _, ks := range cg.Knobs {
			if ks.HandedBack {
				handedBack++
				continue
			}
			k, ok := governor.KnobByName(ks.Knob)
			if !ok {
				continue // cgroup.freeze
			}
			if orig, err := parseRaw(k, ks.Original); err == nil {
				gauge(ch, dKnobOrig, orig, path, cg.Class, ks.Knob, ks.Owner)
			}
			if c.src.Reader != nil {
				if s, err := c.src.Reader.Read(ctx, cg.Ref, k); err == nil {
					gauge(ch, dKnob, unitValue(k, s.Value), path, cg.Class, ks.Knob, ks.Owner)
				}
			}
		}
	}
	gauge(ch, dHandedBack, float64(handedBack))
	for _, ctl := range st.Controllers {
		gauge(ch, dCtlActive, b2f(ctl.Active), ctl.Name, ctl.Kind, ctl.Target)
		gauge(ch, dCtlDisabled, b2f(ctl.Disabled != ""), ctl.Name, ctl.Kind, ctl.Target)
	}
	if c.src.Admission != nil {
		if vd, err := c.src.Admission(ctx); err == nil {
			gauge(ch, dAccepting, b2f(vd.Accepting), vd.Origin)
			if !vd.Since.IsZero() {
				gauge(ch, dAdmSince, float64(vd.Since.UnixNano())/1e9)
			}
			seen := map[string]bool{}
			for _, ac := range vd.Conditions {
				key := ac.Subject + "\x00" + ac.Signal
				if seen[key] { // two thresholds on one signal: report the tighter
					continue
				}
				seen[key] = true
				h := ac.Headroom
				for _, other := range vd.Conditions {
					if other.Subject == ac.Subject && other.Signal == ac.Signal && other.Headroom < h {
						h = other.Headroom
					}
				}
				gauge(ch, dHeadroom, h, ac.Subject, ac.Signal)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unitValue converts a knob value to the exported unit.
func unitValue(k governor.Knob, v int64) float64 {
	if v == governor.Unlimited {
		return math.Inf(1)
	}
	if k == governor.CPUMax {
		return float64(v) / 1e6
	}
	return float64(v)
}

// parseRaw parses a knob's cgroupfs content (a KnobStatus.Original).
func parseRaw(k governor.Knob, raw string) (float64, error) {
	b := []byte(raw)
	switch k {
	case governor.CPUMax:
		m, err := cgroup.ParseCPUMax(b)
		if err != nil {
			return 0, err
		}
		return unitValue(k, m.Millionths()), nil
	case governor.IOWeight:
		w, err := cgroup.ParseIOWeight(b)
		if err != nil {
			return 0, err
		}
		return float64(w.Default), nil
	}
	v, err := cgroup.ParseValue(b)
	if err != nil {
		return 0, err
	}
	return unitValue(k, v), nil
}
