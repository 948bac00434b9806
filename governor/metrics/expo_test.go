package metrics

import (
	"compress/gzip"
	"context"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/governor-dev/governor/governor"
)

func TestAppendValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 0.4: "0.4", 1234: "1234", 1.5e-05: "1.5e-05", 1e6: "1e+06",
		math.Inf(1): "+Inf", math.Inf(-1): "-Inf", math.NaN(): "NaN",
	} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
}

// Label values are escaped and made UTF-8, and the result parses.
func TestExpoEscaping(t *testing.T) {
	var e expo
	e.add(fInfo, 1, "odd\\path\"with\nnewline", "c\xff\xfe", "false", "cgroupfs")
	e.add(fUp, 1)
	e.finish()
	text := e.out.String()
	for _, want := range []string{
		`governor_cgroup_info{cgroup="odd\\path\"with\nnewline",class="c` + "\uFFFD" + `",protected="false",via="cgroupfs"} 1`,
		"# TYPE governor_up gauge\ngovernor_up 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	lp := mfs["governor_cgroup_info"].GetMetric()[0].GetLabel()
	if lp[0].GetValue() != "odd\\path\"with\nnewline" {
		t.Errorf("cgroup label parses as %q", lp[0].GetValue())
	}
}

// A client that accepts gzip gets the same exposition, gzipped.
func TestScrapeGzip(t *testing.T) {
	all := cgs("a @5", "b +knob")
	m := New(Source{Status: func(context.Context) (governor.Status, error) {
		return governor.Status{Cgroups: all}, nil
	}}, time.Second)
	get := func(enc string) (string, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		m.Handler().ServeHTTP(rec, req)
		if rec.Header().Get("Content-Encoding") != "gzip" {
			return rec.Body.String(), ""
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), "gzip"
	}
	plain, e1 := get("")
	zipped, e2 := get("deflate, gzip;q=0.8")
	refused, e3 := get("gzip;q=0, identity")
	if e1 != "" || e2 != "gzip" || e3 != "" {
		t.Errorf("encodings %q %q %q, want none, gzip, none", e1, e2, e3)
	}
	// Process and Go metrics move between scrapes: compare the state's.
	state := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "governor_cgroup") || strings.HasPrefix(l, "governor_knob") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if state(plain) == "" || state(plain) != state(zipped) || state(plain) != state(refused) {
		t.Errorf("plain and gzipped scrapes differ:\n%s\n---\n%s", state(plain), state(zipped))
	}
	promtoolCheck(t, []byte(zipped))
}
