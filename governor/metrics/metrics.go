// Package metrics exports the governor's state for Prometheus. Counters and
// the step-duration histogram are fed by the loop's hooks (OnAction,
// AfterStep) at no more than a counter increment per event; everything that
// describes the current state — pressure per governed cgroup, managed knobs
// now and originally, controllers, the admission verdict, BPF program
// health — is read from the loop's status when Prometheus scrapes, so an
// idle scrape interval costs the loop nothing.
//
// Per-cgroup series are bounded: a scrape exports them for at most
// SetCgroupLimit governed cgroups (DefaultCgroupLimit unless set), chosen
// by what matters to an operator — cgroups whose knobs the governor holds
// changed, then those it acted on most recently, then the highest pressure
// — and says how many it left out (governor_metrics_cgroups_omitted). With
// Source.Visit the loop hands the cgroups over one at a time and the scrape
// keeps a record of the chosen ones only, so its memory follows the limit,
// not the hierarchy. (Unbounded, at 10,000 cgroups, a scrape was an 11 MB
// exposition and one grew the daemon's RSS from 46 to 117 MiB.)
package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/governor-dev/governor/governor"
)

// DefaultAddr is where the daemon serves /metrics unless told otherwise.
const DefaultAddr = "127.0.0.1:9477"

// DefaultCgroupLimit is how many governed cgroups get per-cgroup series in
// one scrape unless SetCgroupLimit says otherwise: every cgroup of most
// hosts; on one with 10,000, about 3,500 series (0.5 MB of exposition, 5 MB
// allocated per scrape) instead of 70,000 (9 MB, 146 MB allocated).
const DefaultCgroupLimit = 500

// Source is what a scrape reads. Status and Admission are normally the
// running loop's (they fail when it is not running: the scrape then reports
// governor_up 0). The rest are optional.
type Source struct {
	Status func(ctx context.Context) (governor.Status, error)
	// Visit, when set, is used instead of Status: the loop's VisitStatus,
	// which hands over one cgroup at a time instead of building a status
	// of every cgroup. The scrape keeps a small record per cgroup.
	Visit     func(ctx context.Context, visit func(*governor.CgroupStatus), only ...governor.Signal) (governor.Status, error)
	Admission func(ctx context.Context) (governor.AdmissionVerdict, error)
	// Via says how a cgroup's limits are written ("systemd", "cgroupfs").
	Via func(governor.Ref) string
	// BPF returns the sensor's program statistics.
	BPF func() []ProgStats
	// Alerts returns how many fast-path alerts the sensor has delivered.
	Alerts func() uint64
}

// ProgStats is one BPF program's kernel statistics, as the sensor reports
// them (the daemon converts its loader's figures into these).
type ProgStats struct {
	Name       string // program name, e.g. "btf_sched_switch"
	Tracepoint string
	RunCount   uint64
	RunTime    time.Duration // zero unless BPF statistics are enabled
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
	build   *prometheus.GaugeVec
	state   *stateCollector
	reclaim reclaimSeries
}

// reclaimSeries count what proactive reclaim asked of the kernel and what
// it measurably got, per controller and cgroup. Only the loop's goroutine
// calls OnAction, so cgroups needs no lock.
type reclaimSeries struct {
	requested, reclaimed *prometheus.CounterVec
	efficiency           *prometheus.GaugeVec
	cgroups              map[string]bool // cgroup labels in use
}

// reclaimCgroupLimit bounds the cgroup label values of the reclaim series;
// cgroups beyond it are counted under cgroup="other".
const reclaimCgroupLimit = DefaultCgroupLimit

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
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "governor_build_info",
			Help: "A metric with a constant 1 labelled by the governor's version, the Go version it was built with and its VCS revision.",
		}, []string{"version", "goversion", "revision"}),
		state: &stateCollector{src: src, timeout: timeout, limit: DefaultCgroupLimit},
		reclaim: reclaimSeries{
			requested: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "governor_reclaim_requested_bytes_total",
				Help: "Bytes proactive reclaim asked the kernel for (memory.reclaim), by controller and cgroup.",
			}, []string{"controller", "cgroup"}),
			reclaimed: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "governor_reclaimed_bytes_total",
				Help: "Bytes proactive reclaim measurably freed (drop of memory.current across each write, or pages the kernel reports stolen if more), by controller and cgroup.",
			}, []string{"controller", "cgroup"}),
			efficiency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "governor_reclaim_efficiency_ratio",
				Help: "Pages reclaimed per page scanned (memory.stat pgsteal/pgscan) during the last measured memory.reclaim write, by controller and cgroup.",
			}, []string{"controller", "cgroup"}),
			cgroups: map[string]bool{},
		},
	}
	m.SetBuildInfo("unknown")
	m.reg.MustRegister(m.reclaim.requested, m.reclaim.reclaimed, m.reclaim.efficiency)
	m.reg.MustRegister(m.actions, m.errs, m.steps, m.stepErr, m.stepDur, m.seen, m.build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetBuildInfo sets governor_build_info{version,goversion,revision} 1:
// the daemon's version ("unknown" until set), the Go release it was built
// with and the VCS revision Go recorded ("" when built outside a
// checkout). Call before serving.
func (m *Metrics) SetBuildInfo(version string) {
	revision := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	m.build.Reset()
	m.build.WithLabelValues(version, runtime.Version(), revision).Set(1)
}

// SetSource replaces what scrapes read (call before serving).
func (m *Metrics) SetSource(src Source) { m.state.src = src }

// SetCgroupLimit bounds how many governed cgroups get per-cgroup series
// (info, pressure, run-queue latency, knob values) in one scrape; 0 exports
// every one. Call before serving. See before for which cgroups are kept.
func (m *Metrics) SetCgroupLimit(n int) { m.state.limit = max(n, 0) }

// Registry holds the hook-fed instruments and the Go and process
// collectors; Handler serves them with the state's series.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// OnAction is the loop's Config.OnAction hook.
func (m *Metrics) OnAction(a governor.Action) {
	m.actions.WithLabelValues(a.Controller, a.Kind).Inc()
	if a.Err != nil {
		m.errs.WithLabelValues(a.Controller, a.Kind).Inc()
	}
	if r := a.Reclaim; r != nil && a.Err == nil && !a.DryRun {
		m.reclaim.add(a.Controller, a.Cgroup.String(), r)
	}
}

func (s *reclaimSeries) add(controller, cg string, r *governor.ReclaimResult) {
	if !s.cgroups[cg] {
		if len(s.cgroups) >= reclaimCgroupLimit {
			cg = "other"
		}
		s.cgroups[cg] = true
	}
	s.requested.WithLabelValues(controller, cg).Add(float64(r.Requested))
	if !r.Measured {
		return
	}
	s.reclaimed.WithLabelValues(controller, cg).Add(float64(r.Reclaimed))
	if e := r.Efficiency(); e >= 0 {
		s.efficiency.WithLabelValues(controller, cg).Set(e)
	}
}

// AfterStep is the loop's Config.AfterStep hook.
func (m *Metrics) AfterStep(r governor.StepResult) {
	m.steps.Inc()
	m.stepErr.Add(float64(r.Errors))
	m.stepDur.Observe(r.Duration.Seconds())
	m.seen.Set(float64(r.Cgroups))
}

// Handler serves the registry and the loop's state in the Prometheus text
// format, gzipped when the client accepts it. The state's series are
// written straight into the response (see expo): through client_golang's
// const metrics, a scrape of 100 cgroups cost 15,600 allocations.
func (m *Metrics) Handler() http.Handler {
	return http.TimeoutHandler(http.HandlerFunc(m.serve), 10*time.Second, "metrics: scrape timed out\n")
}

func (m *Metrics) serve(w http.ResponseWriter, r *http.Request) {
	e := expoPool.Get().(*expo)
	defer expoPool.Put(e)
	e.reset()
	// A collector that fails leaves its series out; the rest is served.
	mfs, _ := m.reg.Gather()
	enc := expfmt.NewEncoder(&e.out, textFormat)
	for _, mf := range mfs {
		_ = enc.Encode(mf)
	}
	m.state.write(e)
	e.finish()

	w.Header().Set("Content-Type", string(textFormat))
	if !acceptsGzip(r) {
		_, _ = w.Write(e.out.Bytes())
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	gz := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(gz)
	gz.Reset(w)
	_, _ = gz.Write(e.out.Bytes())
	_ = gz.Close()
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

// The families the state collector writes. Label names are in sorted order
// (as the text format is usually written) and values are passed in it.
const (
	fUp famID = iota
	fGoverned
	fHostPressure
	fInfo
	fPressure
	fRunq
	fKnobOrig
	fKnob
	fOmitted
	fHandedBack
	fManaged
	fCtlActive
	fCtlDisabled
	fAccepting
	fAdmSince
	fHeadroomRatio
	fHeadroomBytes
	fHeadroomSeconds
	fHeadroomPerSecond
	fHeadroomCores
	fStalled
	fBPFRuns
	fBPFTime
	fAlerts
	nFamilies
)

var families = [nFamilies]family{
	fUp: {"governor_up", gaugeType,
		"1 when the control loop answered the scrape's status request in time.", nil},
	fGoverned: {"governor_cgroups_governed", gaugeType,
		"Cgroups that belong to a class of the policy.", nil},
	fPressure: {"governor_cgroup_pressure_avg10_ratio", gaugeType,
		"PSI 10 s average of a governed cgroup (0..1): share of time some/all tasks stalled on the resource.",
		[]string{"cgroup", "class", "kind", "resource"}},
	fHostPressure: {"governor_host_pressure_avg10_ratio", gaugeType,
		"PSI 10 s average of the host (0..1).", []string{"kind", "resource"}},
	fRunq: {"governor_cgroup_runq_latency_p99_seconds", gaugeType,
		"99th percentile run-queue latency of the cgroup's tasks over the last window (BPF).",
		[]string{"cgroup", "class"}},
	fInfo: {"governor_cgroup_info", gaugeType,
		"A governed cgroup: its class, whether it is protected, and how its limits are written (systemd or cgroupfs).",
		[]string{"cgroup", "class", "protected", "via"}},
	fKnob: {"governor_knob_value", gaugeType,
		"Current value of a knob the governor manages (bytes for memory.*, CPUs for cpu.max, the weight otherwise; +Inf is max).",
		[]string{"cgroup", "class", "controller", "knob"}},
	fKnobOrig: {"governor_knob_original_value", gaugeType,
		"Value the knob had before the governor changed it, restored on exit (units as governor_knob_value).",
		[]string{"cgroup", "class", "controller", "knob"}},
	fHandedBack: {"governor_knobs_handed_back", gaugeType,
		"Knobs someone else changed, which the governor has handed back and leaves alone.", nil},
	fManaged: {"governor_knobs_managed", gaugeType,
		"Knobs the governor holds changed now (restored on exit; cgroup.freeze while frozen), by controller, over every governed cgroup including those whose series the cgroup limit leaves out.",
		[]string{"controller"}},
	fOmitted: {"governor_metrics_cgroups_omitted", gaugeType,
		"Governed cgroups whose per-cgroup series this scrape left out (--metrics-cgroup-limit).", nil},
	fCtlActive: {"governor_controller_active", gaugeType,
		"1 while a controller's trigger is active (controllers whose conditions read a class or the host).",
		[]string{"controller", "kind", "target"}},
	fCtlDisabled: {"governor_controller_disabled", gaugeType,
		"1 when a controller of the policy cannot act on this host (missing cgroup controller or kernel feature).",
		[]string{"controller", "kind", "target"}},
	fAccepting: {"governor_admission_accepting", gaugeType,
		"1 while the node accepts more batch work, 0 while pressure says it should not.", []string{"origin"}},
	fAdmSince: {"governor_admission_since_timestamp_seconds", gaugeType,
		"When the admission verdict last changed (Unix time).", nil},
	// Headroom: one family per unit (Prometheus names carry the unit);
	// kind is "class" or "host", name the class ("" for the host).
	fHeadroomRatio: {"governor_admission_headroom_ratio", gaugeType,
		"Per admission condition on a pressure or ratio signal, distance from the current value to the threshold as a ratio (0.05 = 5 percentage points); negative when crossed.",
		[]string{"kind", "name", "signal"}},
	fHeadroomBytes: {"governor_admission_headroom_bytes", gaugeType,
		"Per admission condition on a memory signal, distance from the current value to the threshold in bytes; negative when crossed.",
		[]string{"kind", "name", "signal"}},
	fHeadroomSeconds: {"governor_admission_headroom_seconds", gaugeType,
		"Per admission condition on a latency signal, distance from the current value to the threshold in seconds; negative when crossed.",
		[]string{"kind", "name", "signal"}},
	fHeadroomPerSecond: {"governor_admission_headroom_per_second", gaugeType,
		"Per admission condition on an event-rate signal, distance from the current value to the threshold in events per second; negative when crossed.",
		[]string{"kind", "name", "signal"}},
	fHeadroomCores: {"governor_admission_headroom_cores", gaugeType,
		"Per admission condition on a CPU-usage signal, distance from the current value to the threshold in CPUs; negative when crossed.",
		[]string{"kind", "name", "signal"}},
	fStalled: {"governor_cgroup_pressure_stall_seconds_total", counterType,
		"PSI total of a governed cgroup: cumulative time some/all of its tasks stalled on the resource (rate() of it is the share of time stalled).",
		[]string{"cgroup", "class", "kind", "resource"}},
	fBPFRuns: {"governor_bpf_program_runs_total", counterType,
		"Times a BPF program ran (kernel statistics).", []string{"program", "tracepoint"}},
	fBPFTime: {"governor_bpf_program_run_seconds_total", counterType,
		"Total run time of a BPF program (zero unless BPF statistics are enabled).", []string{"program", "tracepoint"}},
	fAlerts: {"governor_bpf_fast_path_alerts_total", counterType,
		"Alerts of the BPF fast path: a watched cgroup crossed its in-kernel threshold and the loop was woken.", nil},
}

// stateCollector reads the loop's status on each scrape.
type stateCollector struct {
	src     Source
	timeout time.Duration
	limit   int // cgroups with per-cgroup series; 0: all
}

var psiSignals = [...]struct {
	sig            governor.Signal
	resource, kind string
}{
	{governor.CPUSomeAvg10, "cpu", "some"}, {governor.CPUFullAvg10, "cpu", "full"},
	{governor.MemorySomeAvg10, "memory", "some"}, {governor.MemoryFullAvg10, "memory", "full"},
	{governor.IOSomeAvg10, "io", "some"}, {governor.IOFullAvg10, "io", "full"},
}

// cgRecord is what a scrape keeps of one governed cgroup: the values of its
// per-cgroup series.
type cgRecord struct {
	ref       governor.Ref
	class     string
	protected bool
	has       uint8                        // bit i: sig[i] present
	sig       [len(psiSignals) + 1]float64 // psiSignals' avg10, then runq.p99
	knobs     []governor.KnobStatus        // as the status gave them (handed-back ones skipped when exported)
	stalled   governor.PSITotals
}

const runqIdx = len(psiSignals)

// exportedSignals are the per-cgroup signals a scrape reads (the rank's
// pressure is the PSI ones').
var exportedSignals = func() (out [len(psiSignals) + 1]governor.Signal) {
	for i, p := range psiSignals {
		out[i] = p.sig
	}
	out[runqIdx] = governor.RunqP99
	return
}()

// record keeps of cs what its series need. Only what cs does not reuse is
// kept (Loop.VisitStatus reuses cs and Signals).
func record(cs *governor.CgroupStatus) cgRecord {
	r := cgRecord{ref: cs.Ref, class: cs.Class, protected: cs.Protected, knobs: cs.Knobs, stalled: cs.Stalled}
	for i, p := range psiSignals {
		if v, ok := cs.Signals[p.sig.Name()]; ok {
			r.sig[i], r.has = v, r.has|1<<i
		}
	}
	if v, ok := cs.Signals[governor.RunqP99.Name()]; ok {
		r.sig[runqIdx], r.has = v, r.has|1<<runqIdx
	}
	return r
}

// selector keeps the records of the cgroups that get per-cgroup series as
// the loop hands them over one at a time: every one without a limit (0),
// else the first limit of them by governor.RankKey (knobs held changed,
// then the most recently acted on, then the highest pressure) — a scrape
// holds limit records, however many cgroups there are.
type selector struct {
	limit int
	top   *governor.Top[cgRecord]
	total int // cgroups seen
}

func (s *selector) add(cs *governor.CgroupStatus) {
	if s.top == nil {
		s.top = governor.NewTop[cgRecord](s.limit)
	}
	s.top.Offer(cs.Rank(), func() cgRecord { return record(cs) })
	s.total = s.top.Seen()
}

// kept returns the records kept, sorted by path.
func (s *selector) kept() []cgRecord {
	if s.top == nil {
		return nil
	}
	recs := s.top.Items()
	slices.SortFunc(recs, func(a, b cgRecord) int { return strings.Compare(a.ref.Path, b.ref.Path) })
	return recs
}

// status reads the loop's status (without its cgroups), the records of the
// cgroups to export, and counts over every governed cgroup: knobs handed
// back, knobs held changed per controller.
func (c *stateCollector) status(ctx context.Context) (st governor.Status, sel *selector, handedBack int, managed map[string]int, err error) {
	sel = &selector{limit: c.limit}
	managed = map[string]int{}
	add := func(cs *governor.CgroupStatus) {
		for _, ks := range cs.Knobs {
			if ks.HandedBack {
				handedBack++
			} else {
				managed[ks.Owner]++
			}
		}
		sel.add(cs)
	}
	if c.src.Visit != nil {
		st, err = c.src.Visit(ctx, add, exportedSignals[:]...)
		return
	}
	if st, err = c.src.Status(ctx); err != nil {
		return
	}
	for i := range st.Cgroups {
		add(&st.Cgroups[i])
	}
	st.Cgroups = nil
	return
}

// write adds the state's series to e.
func (c *stateCollector) write(e *expo) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if b := c.src.BPF; b != nil {
		for _, p := range b() {
			e.add(fBPFRuns, float64(p.RunCount), p.Name, p.Tracepoint)
			e.add(fBPFTime, p.RunTime.Seconds(), p.Name, p.Tracepoint)
		}
	}
	if a := c.src.Alerts; a != nil {
		e.add(fAlerts, float64(a()))
	}
	if c.src.Status == nil && c.src.Visit == nil {
		e.add(fUp, 0)
		return
	}
	st, sel, handedBack, managed, err := c.status(ctx)
	if err != nil {
		e.add(fUp, 0)
		return
	}
	e.add(fUp, 1)
	e.add(fGoverned, float64(sel.total))
	for _, p := range psiSignals {
		if v, ok := st.Host[p.sig.Name()]; ok {
			e.add(fHostPressure, v/100, p.kind, p.resource)
		}
	}
	kept := sel.kept()
	for i := range kept {
		r := &kept[i]
		path := r.ref.String()
		via := ""
		if c.src.Via != nil {
			via = c.src.Via(r.ref)
		}
		e.add(fInfo, 1, path, r.class, strconv.FormatBool(r.protected), via)
		for j, p := range psiSignals {
			if r.has&(1<<j) != 0 {
				e.add(fPressure, r.sig[j]/100, path, r.class, p.kind, p.resource)
			}
		}
		for res, name := range psiResources {
			for l, kind := range [2]string{"some", "full"} {
				if us, ok := r.stalled.Get(res, l); ok {
					e.add(fStalled, float64(us)/1e6, path, r.class, kind, name)
				}
			}
		}
		if r.has&(1<<runqIdx) != 0 {
			e.add(fRunq, r.sig[runqIdx], path, r.class)
		}
		for _, ks := range r.knobs {
			// The values the loop verified in force this tick (and the
			// originals it read): no knob is read from the scrape.
			if ks.HandedBack || ks.ID >= governor.NumKnobs {
				continue // handed back, or cgroup.freeze
			}
			e.add(fKnobOrig, unitValue(ks.ID, ks.Orig), path, r.class, ks.Owner, ks.Knob)
			e.add(fKnob, unitValue(ks.ID, ks.Held), path, r.class, ks.Owner, ks.Knob)
		}
	}
	e.add(fOmitted, float64(sel.total-len(kept)))
	e.add(fHandedBack, float64(handedBack))
	for owner, n := range managed {
		e.add(fManaged, float64(n), owner)
	}
	for _, ctl := range st.Controllers {
		e.add(fCtlActive, b2f(ctl.Active), ctl.Name, ctl.Kind, ctl.Target)
		e.add(fCtlDisabled, b2f(ctl.Disabled != ""), ctl.Name, ctl.Kind, ctl.Target)
	}
	if c.src.Admission != nil {
		if vd, err := c.src.Admission(ctx); err == nil {
			e.add(fAccepting, b2f(vd.Accepting), vd.Origin)
			if !vd.Since.IsZero() {
				e.add(fAdmSince, float64(vd.Since.UnixNano())/1e9)
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
				f, scale, ok := headroomFamily(ac.Unit)
				if !ok {
					continue
				}
				kind, name, _ := strings.Cut(ac.Subject, " ")
				e.add(f, h*scale, kind, name, ac.Signal)
			}
		}
	}
}

// psiResources are the PSI resources by index (as governor.PSISignal).
var psiResources = [3]string{"cpu", "memory", "io"}

// headroomFamily is the headroom family for a signal's unit (as
// governor.Unit.String gives it) and the factor to its base unit.
func headroomFamily(unit string) (famID, float64, bool) {
	switch unit {
	case governor.UnitPercent.String():
		return fHeadroomRatio, 0.01, true
	case governor.UnitBytes.String():
		return fHeadroomBytes, 1, true
	case governor.UnitSeconds.String():
		return fHeadroomSeconds, 1, true
	case governor.UnitPerSecond.String():
		return fHeadroomPerSecond, 1, true
	case governor.UnitCores.String():
		return fHeadroomCores, 1, true
	}
	return 0, 0, false
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
