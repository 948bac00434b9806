package metrics

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// policy squeezes batch's cpu.weight and cpu.max while web is under CPU
// pressure.
func policy() *governor.Policy {
	return govtest.Squeeze(20*time.Millisecond,
		governor.SuppressKnob{Knob: governor.CPUWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Cooldown: time.Hour}},
		governor.SuppressKnob{Knob: governor.CPUMax, Step: governor.Step{Percent: 25}, Limits: governor.Limits{Min: 500_000, Cooldown: time.Hour}})
}

// A real scrape over HTTP of a running loop (fake source and actuator),
// checked by promtool when it is installed (make deps-test installs it).
func TestScrapeRunningLoop(t *testing.T) {
	src := &govtest.Source{}
	src.Host.Set(governor.MemorySomeAvg10, 12.5)
	src.Host.Set(governor.CPUSomeAvg10, 3)
	web := governor.Sample{Ref: governor.Ref{ID: 2, Path: "system.slice/web.service"}, Populated: true}
	web.Set(governor.CPUSomeAvg10, 40)
	web.Set(governor.CPUFullAvg10, 5)
	web.Set(governor.RunqP99, 0.012)
	job := governor.Sample{Ref: governor.Ref{ID: 3, Path: "batch.slice/job1"}, Populated: true}
	job.Set(governor.MemorySomeAvg10, 0.5)
	job.Stalled.Set(1, 0, 2_500_000) // memory some total=2500000 µs
	job.Stalled.Set(2, 1, 125)
	src.Cgs = []governor.Sample{web, job}
	act := govtest.NewActuator()

	m := New(Source{}, time.Second)
	m.SetBuildInfo("v1.2.3-test")
	loop, err := governor.New(governor.Config{
		Policy: policy(), Sources: []governor.Source{src}, Actuator: act,
		Caps:      governor.Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true, "io": true}},
		NumCPU:    2,
		AfterStep: m.AfterStep, OnAction: m.OnAction,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSource(Source{
		Status: loop.Status, Visit: loop.VisitStatus, Admission: loop.Admission, Via: act.Via,
		BPF: func() []ProgStats {
			return []ProgStats{{Name: "btf_sched_switch", Tracepoint: "sched/sched_switch", RunCount: 1234, RunTime: 150 * time.Microsecond}}
		},
		Alerts: func() uint64 { return 17 },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	addr, err := Serve(ctx, "127.0.0.1:0", m.Handler(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/metrics"
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		// Wait until both knobs have been squeezed once.
		if bytes.Contains(body, []byte(`governor_actions_total{controller="squeeze",kind="write"} 2`)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	text := string(body)
	for _, want := range []string{
		"governor_up 1",
		"governor_cgroups_governed 2",
		"governor_cgroups_seen 2",
		`governor_host_pressure_avg10_ratio{kind="some",resource="memory"} 0.125`,
		`governor_cgroup_pressure_avg10_ratio{cgroup="system.slice/web.service",class="web",kind="some",resource="cpu"} 0.4`,
		`governor_cgroup_runq_latency_p99_seconds{cgroup="system.slice/web.service",class="web"} 0.012`,
		`governor_cgroup_info{cgroup="batch.slice/job1",class="batch",protected="false",via="cgroupfs"} 1`,
		`governor_knob_value{cgroup="batch.slice/job1",class="batch",controller="squeeze",knob="cpu.weight"} 50`,
		`governor_knob_original_value{cgroup="batch.slice/job1",class="batch",controller="squeeze",knob="cpu.weight"} 100`,
		`governor_knob_original_value{cgroup="batch.slice/job1",class="batch",controller="squeeze",knob="cpu.max"} +Inf`,
		`governor_knob_value{cgroup="batch.slice/job1",class="batch",controller="squeeze",knob="cpu.max"} 1.5`,
		`governor_controller_active{controller="squeeze",kind="suppress",target="batch"} 1`,
		`governor_actions_total{controller="squeeze",kind="write"} 2`,
		"governor_loop_step_duration_seconds_bucket",
		`governor_admission_accepting{origin="built-in"} 1`,
		`governor_admission_headroom_ratio{kind="host",name="",signal="memory.some.avg10"} -0.025`,
		`governor_admission_headroom_ratio{kind="class",name="web",signal="cpu.some.avg10"} -0.2`,
		`governor_cgroup_pressure_stall_seconds_total{cgroup="batch.slice/job1",class="batch",kind="some",resource="memory"} 2.5`,
		`governor_cgroup_pressure_stall_seconds_total{cgroup="batch.slice/job1",class="batch",kind="full",resource="io"} 0.000125`,
		`governor_build_info{goversion="` + runtime.Version() + `",revision="`,
		`",version="v1.2.3-test"} 1`,
		`governor_bpf_program_runs_total{program="btf_sched_switch",tracepoint="sched/sched_switch"} 1234`,
		"governor_bpf_fast_path_alerts_total 17",
		"governor_admission_since_timestamp_seconds",
		`governor_knobs_managed{controller="squeeze"} 2`,
		"governor_metrics_cgroups_omitted 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, `governor_cgroup_pressure_stall_seconds_total{cgroup="system.slice/web.service"`) {
		t.Error("stall totals exported for a cgroup whose totals were not read")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deps-test installs it); scrape content checked above")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else if len(bytes.TrimSpace(out)) > 0 {
		t.Logf("promtool: %s", out)
	}
}

func TestScrapeWithoutLoopReportsDown(t *testing.T) {
	m := New(Source{Status: func(ctx context.Context) (governor.Status, error) {
		<-ctx.Done()
		return governor.Status{}, ctx.Err()
	}}, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "m.sock")
	if _, err := Serve(ctx, "unix:"+sock, m.Handler(), hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		return dialUnix(ctx, sock)
	}}}
	resp, err := c.Get("http://governor/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "governor_up 0") {
		t.Errorf("no governor_up 0 in\n%s", body)
	}
}

// TestUnitValue: knob values (as KnobStatus holds them, in the knob's
// units) are exported in base units. The raw file contents they come from
// are parsed by the actuator (cgroup's parser tests).
func TestUnitValue(t *testing.T) {
	for _, tc := range []struct {
		k    governor.Knob
		v    int64
		want float64
	}{
		{governor.MemoryHigh, 1 << 30, 1 << 30},
		{governor.CPUMax, 500_000, 0.5},
		{governor.IOWeight, 100, 100},
		{governor.CPUWeight, 77, 77},
		{governor.MemoryMax, governor.Unlimited, math.Inf(1)},
	} {
		if got := unitValue(tc.k, tc.v); got != tc.want {
			t.Errorf("unitValue(%s, %d) = %v; want %v", tc.k, tc.v, got, tc.want)
		}
	}
}

type netConn = net.Conn

func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}
