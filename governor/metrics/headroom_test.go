package metrics

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// Headroom goes to one family per unit, in base units (percent as a 0..1
// ratio), with the subject split into kind and name; the tighter of two
// thresholds on one signal is reported.
func TestAdmissionHeadroomUnits(t *testing.T) {
	vd := governor.AdmissionVerdict{Accepting: true, Origin: "a.hcl:1", Conditions: []governor.AdmissionCondition{
		{Subject: "host", Signal: "memory.some.avg10", Unit: governor.UnitPercent.String(), Headroom: 7.5},
		{Subject: "class web", Signal: "cpu.some.avg10", Unit: governor.UnitPercent.String(), Headroom: 20},
		{Subject: "class web", Signal: "cpu.some.avg10", Unit: governor.UnitPercent.String(), Headroom: -2},
		{Subject: "class batch", Signal: "memory.current", Unit: governor.UnitBytes.String(), Headroom: 512 << 20},
		{Subject: "class web", Signal: "runq.p99", Unit: governor.UnitSeconds.String(), Headroom: 0.004},
		{Subject: "host", Signal: "memory.events.oom_kill", Unit: governor.UnitPerSecond.String(), Headroom: 1.5},
		{Subject: "class batch", Signal: "cpu.usage", Unit: governor.UnitCores.String(), Headroom: -0.25},
	}}
	m := New(Source{
		Status:    func(context.Context) (governor.Status, error) { return governor.Status{}, nil },
		Admission: func(context.Context) (governor.AdmissionVerdict, error) { return vd, nil },
	}, time.Second)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`governor_admission_headroom_ratio{kind="host",name="",signal="memory.some.avg10"} 0.075`,
		`governor_admission_headroom_ratio{kind="class",name="web",signal="cpu.some.avg10"} -0.02`,
		`governor_admission_headroom_bytes{kind="class",name="batch",signal="memory.current"} 5.36870912e+08`,
		`governor_admission_headroom_seconds{kind="class",name="web",signal="runq.p99"} 0.004`,
		`governor_admission_headroom_per_second{kind="host",name="",signal="memory.events.oom_kill"} 1.5`,
		`governor_admission_headroom_cores{kind="class",name="batch",signal="cpu.usage"} -0.25`,
		`governor_build_info{goversion="`,
		`version="unknown"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, `signal="cpu.some.avg10"} 0.2`) || strings.Contains(text, "subject=") || strings.Contains(text, "governor_admission_headroom{") {
		t.Errorf("old or loose headroom series:\n%s", text)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
	promtoolCheck(t, rec.Body.Bytes())
}
