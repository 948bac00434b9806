package cgroup

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/governor-dev/governor/governor"
)

// Fuzz targets for every parser of kernel files. Each asserts more than "no
// panic": an error always wraps ErrSyntax; a successful parse yields values
// in the kernel's ranges; formatting the result the way the kernel does and
// parsing it again gives the same result; and lines with keys the parser
// does not know change nothing. Crashers go to testdata/fuzz/<Target>/ and
// run as regression tests with plain `go test`. `make fuzz` runs each target
// for FUZZTIME, `make fuzz-ci` for a few seconds.

// unknownKeyed is a line no keyed parser knows: appending it must not change
// the result.
const unknownKeyed = "\nzz_future_key 42\n"

func wantSyntax(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrSyntax) {
		t.Fatalf("%s: error %v does not wrap ErrSyntax", what, err)
	}
}

func ffmt(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func formatPressure(p Pressure) string {
	line := func(kind string, l PressureLine) string {
		return fmt.Sprintf("%s avg10=%s avg60=%s avg300=%s total=%d\n", kind, ffmt(l.Avg10), ffmt(l.Avg60), ffmt(l.Avg300), l.Total)
	}
	s := line("some", p.Some)
	if p.HasFull {
		s += line("full", p.Full)
	}
	return s
}

func FuzzPressureRoundTrip(f *testing.F) {
	f.Add([]byte(psiBoth))
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Add([]byte("some avg10=100.00 avg60=99.99 avg300=1e1 total=18446744073709551615\nfull avg10=0 avg60=0 avg300=0 total=1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePressure(b)
		wantSyntax(t, "pressure", err)
		if err != nil {
			return
		}
		for _, l := range []PressureLine{p.Some, p.Full} {
			for _, v := range []float64{l.Avg10, l.Avg60, l.Avg300} {
				if !(v >= 0 && v <= 100) {
					t.Fatalf("average %v out of 0..100 in %+v", v, p)
				}
			}
		}
		if !p.HasFull && p.Full != (PressureLine{}) {
			t.Fatalf("full values without a full line: %+v", p)
		}
		again, err := ParsePressure([]byte(formatPressure(p)))
		if err != nil || again != p {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", p, formatPressure(p), again, err)
		}
	})
}

func formatMemoryStat(s MemoryStat) string {
	return fmt.Sprintf("anon %d\nfile %d\nkernel %d\nshmem %d\nsock %d\nfile_dirty %d\nfile_writeback %d\nslab %d\nswapcached %d\npgscan %d\npgsteal %d\npgmajfault %d\nworkingset_refault_anon %d\nworkingset_refault_file %d\n",
		s.Anon, s.File, s.Kernel, s.Shmem, s.Sock, s.FileDirty, s.FileWriteback, s.Slab, s.Swapcached,
		s.Pgscan, s.Pgsteal, s.Pgmajfault, s.WorkingsetRefaultAnon, s.WorkingsetRefaultFile)
}

func FuzzMemoryStat(f *testing.F) {
	f.Add([]byte(memStat))
	f.Add([]byte("anon 0\n\n\tfile\t18446744073709551615\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseMemoryStat(b)
		wantSyntax(t, "memory.stat", err)
		if err != nil {
			return
		}
		again, err := ParseMemoryStat([]byte(formatMemoryStat(s)))
		if err != nil || again != s {
			t.Fatalf("round trip: %+v -> %+v, %v", s, again, err)
		}
		more, err := ParseMemoryStat(append(append([]byte(nil), b...), unknownKeyed...))
		if err != nil || more != s {
			t.Fatalf("an unknown key changed the result: %+v -> %+v, %v", s, more, err)
		}
	})
}

func FuzzMemoryEvents(f *testing.F) {
	f.Add([]byte("low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"))
	f.Add([]byte("oom_kill 18446744073709551615"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseMemoryEvents(b)
		wantSyntax(t, "memory.events", err)
		if err != nil {
			return
		}
		s := fmt.Sprintf("low %d\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill %d\n", e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill)
		again, err := ParseMemoryEvents([]byte(s))
		if err != nil || again != e {
			t.Fatalf("round trip: %+v -> %+v, %v", e, again, err)
		}
		more, err := ParseMemoryEvents(append(append([]byte(nil), b...), unknownKeyed...))
		if err != nil || more != e {
			t.Fatalf("an unknown key changed the result: %+v -> %+v, %v", e, more, err)
		}
	})
}

func FuzzCPUStat(f *testing.F) {
	f.Add([]byte("usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 300\nnr_bursts 0\nburst_usec 0\n"))
	f.Add([]byte("usage_usec 1\n"))
	f.Add([]byte("user_usec 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseCPUStat(b)
		wantSyntax(t, "cpu.stat", err)
		if err != nil {
			return
		}
		out := fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\nnr_periods %d\nnr_bursts %d\nburst_usec %d\n",
			s.UsageUsec, s.UserUsec, s.SystemUsec, s.NrPeriods, s.NrBursts, s.BurstUsec)
		if s.HasThrottling {
			out += fmt.Sprintf("nr_throttled %d\nthrottled_usec %d\n", s.NrThrottled, s.ThrottledUsec)
		} else if s.NrThrottled != 0 || s.ThrottledUsec != 0 {
			t.Fatalf("throttling values without HasThrottling: %+v", s)
		}
		again, err := ParseCPUStat([]byte(out))
		if err != nil || again != s {
			t.Fatalf("round trip: %+v -> %+v, %v", s, again, err)
		}
		more, err := ParseCPUStat(append(append([]byte(nil), b...), unknownKeyed...))
		if err != nil || more != s {
			t.Fatalf("an unknown key changed the result: %+v -> %+v, %v", s, more, err)
		}
	})
}

func FuzzCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000", "50000 100000\n", "max", "1000", "9223372036854775807 1", "1000 1000000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseCPUMax(b)
		wantSyntax(t, "cpu.max", err)
		if err != nil {
			return
		}
		if m.Quota <= 0 || m.Period == 0 {
			t.Fatalf("accepted quota %d period %d", m.Quota, m.Period)
		}
		q := "max"
		if m.Quota != governor.Unlimited {
			q = strconv.FormatInt(m.Quota, 10)
		}
		again, err := ParseCPUMax([]byte(q + " " + strconv.FormatUint(m.Period, 10) + "\n"))
		if err != nil || again != m {
			t.Fatalf("round trip: %+v -> %+v, %v", m, again, err)
		}
		// Within the kernel's bounds (period 1 ms..1 s, quota >= 1 ms,
		// quota/period below what a u64 of microseconds can hold) the
		// knob value is positive: a write never sees a negative limit.
		if m.Quota != governor.Unlimited && m.Period >= 1000 && m.Period <= 1000000 && m.Quota >= 1000 && m.Quota < 1<<44 {
			if v := m.Millionths(); v <= 0 || v == governor.Unlimited {
				t.Fatalf("Millionths of %+v = %d", m, v)
			}
		}
		if m.Quota == governor.Unlimited && m.Millionths() != governor.Unlimited {
			t.Fatalf("max quota gave %d", m.Millionths())
		}
	})
}

func FuzzIOStatRoundTrip(f *testing.F) {
	f.Add([]byte("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n"))
	f.Add([]byte("253:1 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0 cost.vrate=100 cost.usage=0\n"))
	f.Add([]byte("4294967295:4294967295\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseIOStat(b, nil)
		wantSyntax(t, "io.stat", err)
		if err != nil {
			return
		}
		lines := 0
		for _, l := range strings.Split(string(b), "\n") {
			if !isBlank([]byte(l)) {
				lines++
			}
		}
		if len(got) != lines {
			t.Fatalf("%d devices from %d lines", len(got), lines)
		}
		var sb strings.Builder
		for _, d := range got {
			fmt.Fprintf(&sb, "%d:%d rbytes=%d wbytes=%d rios=%d wios=%d dbytes=%d dios=%d\n", d.Major, d.Minor, d.RBytes, d.WBytes, d.RIOs, d.WIOs, d.DBytes, d.DIOs)
		}
		// Appending to a non-empty slice keeps what was there.
		pre := []IOStat{{Major: 1, Minor: 2, RBytes: 3}}
		again, err := ParseIOStat([]byte(sb.String()), pre)
		if err != nil || len(again) != len(got)+1 || again[0] != pre[0] || (len(got) > 0 && !reflect.DeepEqual(again[1:], got)) {
			t.Fatalf("round trip: %+v -> %+v, %v", got, again, err)
		}
	})
}

func FuzzIOWeight(f *testing.F) {
	f.Add([]byte("default 100\n8:0 200\n"))
	f.Add([]byte("default 10000"))
	f.Add([]byte("8:16 1\ndefault 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseIOWeight(b)
		wantSyntax(t, "io.weight", err)
		if err != nil {
			return
		}
		if w.Default < 1 || w.Default > 10000 {
			t.Fatalf("default weight %d", w.Default)
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "default %d\n", w.Default)
		for _, d := range w.Devices {
			if d.Weight < 1 || d.Weight > 10000 {
				t.Fatalf("device weight %d", d.Weight)
			}
			fmt.Fprintf(&sb, "%d:%d %d\n", d.Major, d.Minor, d.Weight)
		}
		again, err := ParseIOWeight([]byte(sb.String()))
		if err != nil || !reflect.DeepEqual(again, w) {
			t.Fatalf("round trip: %+v -> %+v, %v", w, again, err)
		}
	})
}

func FuzzEvents(f *testing.F) {
	f.Add([]byte("populated 1\nfrozen 0\n"))
	f.Add([]byte("populated 0\nfrozen 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvents(b)
		wantSyntax(t, "cgroup.events", err)
		if err != nil {
			return
		}
		b01 := func(v bool) int {
			if v {
				return 1
			}
			return 0
		}
		again, err := ParseEvents([]byte(fmt.Sprintf("populated %d\nfrozen %d\n", b01(e.Populated), b01(e.Frozen))))
		if err != nil || again != e {
			t.Fatalf("round trip: %+v -> %+v, %v", e, again, err)
		}
		more, err := ParseEvents(append(append([]byte(nil), b...), "\nzz_future_key 1\n"...))
		if err != nil || more != e {
			t.Fatalf("an unknown key changed the result: %+v -> %+v, %v", e, more, err)
		}
	})
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{"max\n", "0", "1073741824\n", "-1", "9223372036854775807", "-9223372036854775808", " 5 \x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseValue(b)
		wantSyntax(t, "value", err)
		if err != nil {
			return
		}
		s := "max"
		if v != governor.Unlimited {
			s = strconv.FormatInt(v, 10)
		} else if tv := strings.Trim(string(b), " \t\r\n\x00"); tv != "max" && tv != strconv.FormatInt(v, 10) {
			t.Fatalf("%q parsed as Unlimited", b)
		}
		again, err := ParseValue([]byte(s + "\n"))
		if err != nil || again != v {
			t.Fatalf("round trip: %d -> %q -> %d, %v", v, s, again, err)
		}
	})
}
