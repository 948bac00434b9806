package metrics

import (
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/governor-dev/governor/governor"
)

func TestReclaimSeries(t *testing.T) {
	m := New(Source{}, 0)
	job := governor.Ref{ID: 9, Path: "batch.slice"}
	act := func(r *governor.ReclaimResult, dry bool) {
		m.OnAction(governor.Action{Controller: "batch-proactive", Cgroup: job, Kind: "reclaim", Knob: "memory.reclaim", DryRun: dry, Reclaim: r})
	}
	act(&governor.ReclaimResult{Requested: 4 << 20, Reclaimed: 4 << 20, Scanned: 2048, Stolen: 1024, Measured: true}, false)
	act(&governor.ReclaimResult{Requested: 8 << 20, Reclaimed: 1 << 20, Scanned: 4096, Stolen: 256, Measured: true}, false)
	act(&governor.ReclaimResult{Requested: 2 << 20}, false)                  // unmeasured: requested only
	act(&governor.ReclaimResult{Requested: 100 << 20, Measured: true}, true) // dry-run: nothing asked of the kernel

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`governor_reclaim_requested_bytes_total{cgroup="batch.slice",controller="batch-proactive"} 1.4680064e+07`,
		`governor_reclaimed_bytes_total{cgroup="batch.slice",controller="batch-proactive"} 5.24288e+06`,
		`governor_reclaim_efficiency_ratio{cgroup="batch.slice",controller="batch-proactive"} 0.0625`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

func TestReclaimSeriesBounded(t *testing.T) {
	m := New(Source{}, 0)
	for i := range reclaimCgroupLimit + 50 {
		m.OnAction(governor.Action{Controller: "rc", Cgroup: governor.Ref{ID: governor.CgroupID(i + 1), Path: "batch.slice/job" + strconv.Itoa(i)}, Kind: "reclaim",
			Reclaim: &governor.ReclaimResult{Requested: 4096, Reclaimed: 4096, Measured: true}})
	}
	if n := len(m.reclaim.cgroups); n > reclaimCgroupLimit+1 {
		t.Fatalf("%d cgroup labels, limit %d", n, reclaimCgroupLimit)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), `governor_reclaimed_bytes_total{cgroup="other",controller="rc"} 204800`) {
		t.Errorf("the 50 cgroups over the limit are not counted under other")
	}
}
