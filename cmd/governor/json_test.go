package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/control"
)

// fixtureDaemon serves a fixed status, explanation and verdict on a control
// socket and returns its path.
func fixtureDaemon(t *testing.T, cgroups ...governor.CgroupStatus) string {
	t.Helper()
	at := time.Date(2026, 11, 25, 10, 42, 7, 0, time.UTC)
	vd := governor.AdmissionVerdict{Accepting: false, Since: at.Add(-12 * time.Minute), Reason: "host:memory.some.avg10=12.00% > 10.00% for 10s", Origin: "node.hcl:40",
		Conditions: []governor.AdmissionCondition{{Subject: "host", Signal: "memory.some.avg10", Unit: "percent", Op: ">", Value: 12, Threshold: 10, For: 10 * time.Second, Present: true, Holding: true, Headroom: -2}}}
	if cgroups == nil {
		cgroups = []governor.CgroupStatus{{
			Ref: governor.Ref{ID: 8812, Path: "batch.slice/job-17.scope"}, Class: "batch",
			Signals: map[string]float64{"cpu.some.avg10": 41, "runq.p99": 0.018},
			Knobs:   []governor.KnobStatus{{Knob: "cpu.weight", Value: "25", Original: "100", Owner: "batch-yields-cpu", Since: at.Add(-3 * time.Second)}},
			Last:    &governor.Action{Time: at.Add(-3 * time.Second), Controller: "batch-yields-cpu", Cgroup: governor.Ref{ID: 8812, Path: "batch.slice/job-17.scope"}, Kind: "write", Knob: "cpu.weight", Old: "50", New: "25", Reason: "web:cpu.some.avg10=23.40% > 10.00% for 5s"},
		}, {
			Ref: governor.Ref{ID: 77, Path: "system.slice/web.service"}, Class: "web", Protected: true,
			Signals: map[string]float64{"cpu.some.avg10": 23.4, "memory.some.avg10": 0.3},
		}}
	}
	st := governor.Status{
		Time: at, LastStep: governor.StepResult{Time: at.Add(-time.Second), Duration: 1200 * time.Microsecond, Cgroups: 87, Actions: 1},
		Host:        map[string]float64{"cpu.some.avg10": 23.4, "memory.some.avg10": 0.3, "io.some.avg10": 1.1},
		Cgroups:     cgroups,
		Controllers: []governor.ControllerStatus{{Name: "batch-yields-cpu", Kind: "suppress", Target: "batch", Active: true, Because: "web:cpu.some.avg10=23.40% > 10.00% for 5s"}},
	}
	sock := filepath.Join(t.TempDir(), "control.sock")
	srv, err := control.Listen(control.Options{Path: sock}, control.Backend{
		Status:    func(context.Context) (governor.Status, error) { return st, nil },
		Admission: func(context.Context) (governor.AdmissionVerdict, error) { return vd, nil },
		Explain: func(_ context.Context, p string) ([]string, error) {
			return []string{"cgroup " + p + " (id 8812), class \"batch\"", "suppress \"batch-yields-cpu\": ACTIVE: web:cpu.some.avg10=23.40% > 10.00% for 5s"}, nil
		},
		Via: func(governor.Ref) string { return "systemd" },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx)
	return sock
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkKeys fails on an object key that is not snake_case, but for the
// keys of the signal maps (signal names like cpu.some.avg10).
func checkKeys(t *testing.T, where string, v interface{}) {
	t.Helper()
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			if !snakeKey.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", where, k)
			}
			if k == "signals" || k == "host" {
				continue
			}
			checkKeys(t, where+"."+k, e)
		}
	case []interface{}:
		for _, e := range x {
			checkKeys(t, where+"[]", e)
		}
	}
}

// The --json output of status, admission and explain: one style (snake_case
// keys, durations in seconds, > as itself), pinned by golden files as the
// schema docs/OPERATIONS.md documents.
func TestJSONOutputGolden(t *testing.T) {
	sock := fixtureDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"status", []string{"status", "--json", "--socket", sock}, 0},
		{"admission", []string{"admission", "--json", "--socket", sock}, 1},
		{"explain", []string{"explain", "--json", "--socket", sock, "batch.slice/job-17.scope"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(tc.args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut.String())
			}
			text := out.String()
			golden(t, filepath.Join("json", tc.name+".json"), text)
			if strings.Contains(text, `\u003e`) || strings.Contains(text, `\u003c`) {
				t.Errorf("HTML-escaped characters:\n%s", text)
			}
			var v interface{}
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				t.Fatal(err)
			}
			checkKeys(t, tc.name, v)
		})
	}
	// Durations are seconds: 1.2 ms of step, 10 s of condition.
	var out, errOut bytes.Buffer
	dispatch([]string{"status", "--json", "--socket", sock}, &out, &errOut)
	var st struct {
		LastStep struct {
			Duration float64 `json:"duration_seconds"`
		} `json:"last_step"`
		Admission struct {
			Conditions []struct {
				For float64 `json:"for_seconds"`
			} `json:"conditions"`
		} `json:"admission"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastStep.Duration != 0.0012 || len(st.Admission.Conditions) != 1 || st.Admission.Conditions[0].For != 10 {
		t.Errorf("durations: %+v\n%s", st, out.String())
	}
}
