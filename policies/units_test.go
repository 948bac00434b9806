package policies

import (
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"512B", 512, ""},
		{"1K", 1024, ""},
		{"1KiB", 1024, ""},
		{"512MiB", 512 << 20, ""},
		{"512 MiB", 512 << 20, ""},
		{"2G", 2 << 30, ""},
		{"2GiB", 2 << 30, ""},
		{"1.5GiB", 3 << 29, ""},
		{"1T", 1 << 40, ""},
		{"1P", 1 << 50, ""},
		{"100MB", 100_000_000, ""},
		{"1kB", 1000, ""},
		{"1GB", 1_000_000_000, ""},
		{"0.5KiB", 512, ""},
		{"9223372036854775806", 9223372036854775806, ""},
		{"", 0, "does not start with a number"},
		{"MiB", 0, "does not start with a number"},
		{"-1MiB", 0, "negative"},
		{"1.5", 0, "whole number of bytes"},
		{"5m", 0, "unknown size unit"},
		{"5mb", 0, "unknown size unit"},
		{"1e3", 0, "unknown size unit"},
		{"0x10", 0, "unknown size unit"},
		{"1..5G", 0, "does not start with a number"},
		{"inf", 0, "does not start with a number"},
		{"9999999P", 0, "too large"},
		{"9223372036854775807", 0, "too large"},
		{"8E", 0, "unknown size unit"},
	} {
		got, err := parseSize(tc.in)
		checkParse(t, "parseSize", tc.in, got, tc.want, err, tc.err)
	}
}

func checkParse[T comparable](t *testing.T, fn, in string, got, want T, err error, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s(%q) = %v, %v; want error containing %q", fn, in, got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("%s(%q) = %v, %v; want %v", fn, in, got, err, want)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"0s", 0, ""},
		{"30s", 30 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"5us", 5 * time.Microsecond, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"1h", time.Hour, ""},
		{"5", 0, "has no unit"},
		{"2.5", 0, "has no unit"},
		{"-5s", 0, "negative"},
		{"5 s", 0, "not a duration"},
		{"5sec", 0, "not a duration"},
		{"1d", 0, "not a duration"},
		{"", 0, "not a duration"},
	} {
		got, err := parseDuration(tc.in)
		checkParse(t, "parseDuration", tc.in, got, tc.want, err, tc.err)
	}
}

func TestParsePercent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{"0%", 0, ""},
		{"0.5%", 0.5, ""},
		{"10%", 10, ""},
		{"150%", 150, ""},
		{" 5 %", 5, ""},
		{"5", 0, "not a percentage"},
		{"%", 0, "does not start with a number"},
		{"-5%", 0, "negative"},
		{"5ms%", 0, "not a percentage"},
		{"0.5", 0, "not a percentage"},
	} {
		got, err := parsePercent(tc.in)
		checkParse(t, "parsePercent", tc.in, got, tc.want, err, tc.err)
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{"3/s", 3, ""},
		{"0.5/s", 0.5, ""},
		{"30/min", 0.5, ""},
		{"7200/h", 2, ""},
		{"3 / s", 3, ""},
		{"3", 0, "not a rate"},
		{"3/d", 0, "not a rate"},
		{"3MiB/s", 0, "not a rate"},
		{"-1/s", 0, "negative"},
	} {
		got, err := parseRate(tc.in)
		checkParse(t, "parseRate", tc.in, got, tc.want, err, tc.err)
	}
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{"50MiB/s", 50 << 20, ""},
		{"1G/min", float64(1<<30) / 60, ""},
		{"50/s", 0, "not a byte rate"},
		{"50MiB", 0, "not a byte rate"},
		{"50XB/s", 0, "unknown size unit"},
	} {
		got, err := parseByteRate(tc.in)
		checkParse(t, "parseByteRate", tc.in, got, tc.want, err, tc.err)
	}
}

func TestParseCores(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1", 1_000_000, ""},
		{"0.2", 200_000, ""},
		{"2.5", 2_500_000, ""},
		{"0.001", 1000, ""},
		{"0.0001", 0, "smallest quota"},
		{"0", 0, "smallest quota"},
		{"2cpu", 0, "plain number"},
		{"-1", 0, "negative"},
		{"2000000", 0, "too large"},
	} {
		got, err := parseCores(tc.in)
		checkParse(t, "parseCores", tc.in, got, tc.want, err, tc.err)
	}
}

func TestClassify(t *testing.T) {
	for in, want := range map[string]kind{
		"max":     kindMax,
		"5%":      kindPercent,
		"12":      kindNumber,
		"0.5":     kindNumber,
		"5ms":     kindDuration,
		"5m":      kindDuration,
		"5M":      kindSize,
		"512MiB":  kindSize,
		"3/s":     kindRate,
		"50MiB/s": kindByteRate,
		"banana":  kindUnknown,
		"-5%":     kindUnknown,
	} {
		if got := classify(in); got != want {
			t.Errorf("classify(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestKnobValue(t *testing.T) {
	for _, tc := range []struct {
		knob governor.Knob
		in   string
		want int64
		err  string
	}{
		{governor.MemoryHigh, "512MiB", 512 << 20, ""},
		{governor.MemoryHigh, "max", governor.Unlimited, ""},
		{governor.MemoryLow, "0", 0, ""},
		{governor.MemoryMax, "5%", 0, "unknown size unit"},
		{governor.CPUWeight, "1", 1, ""},
		{governor.CPUWeight, "10000", 10000, ""},
		{governor.CPUWeight, "0", 0, "out of range"},
		{governor.CPUWeight, "10001", 0, "out of range"},
		{governor.CPUWeight, "1.5", 0, "not a whole number"},
		{governor.CPUWeight, "max", 0, `has no "max"`},
		{governor.IOWeight, "100", 100, ""},
		{governor.CPUMax, "0.2", 200_000, ""},
		{governor.CPUMax, "4", 4_000_000, ""},
		{governor.CPUMax, "max", governor.Unlimited, ""},
		{governor.CPUMax, "0.01", 10_000, ""},
		{governor.CPUMax, "0.005", 0, "out of range for cpu.max, which takes a number of CPUs from 0.01 up"},
		{governor.CPUMax, "200ms", 0, "plain number"},
		{governor.CPUIdle, "0", 0, ""},
		{governor.CPUIdle, "1", 1, ""},
		{governor.CPUIdle, "2", 0, "out of range"},
	} {
		got, err := knobValue(tc.knob, tc.in)
		checkParse(t, "knobValue("+tc.knob.String()+")", tc.in, got, tc.want, err, tc.err)
	}
}

func TestParseStep(t *testing.T) {
	for _, tc := range []struct {
		knob governor.Knob
		in   string
		down bool
		want governor.Step
		err  string
	}{
		{governor.CPUWeight, "50%", true, governor.Step{Percent: 50}, ""},
		{governor.CPUWeight, "200%", false, governor.Step{Percent: 200}, ""},
		{governor.CPUWeight, "100%", true, governor.Step{}, "below 100%"},
		{governor.CPUWeight, "0%", false, governor.Step{}, "above 0%"},
		{governor.CPUWeight, "20", true, governor.Step{Amount: 20}, ""},
		{governor.CPUWeight, "0", true, governor.Step{}, "from 1 to 9999"},
		{governor.CPUWeight, "2.5", true, governor.Step{}, "not a whole number"},
		{governor.MemoryHigh, "64MiB", true, governor.Step{Amount: 64 << 20}, ""},
		{governor.MemoryHigh, "0", true, governor.Step{}, "never move"},
		{governor.MemoryHigh, "max", true, governor.Step{}, `cannot be "max"`},
		{governor.CPUMax, "0.5", true, governor.Step{Amount: 500_000}, ""},
		{governor.CPUMax, "25%", true, governor.Step{Percent: 25}, ""},
		{governor.CPUIdle, "1", false, governor.Step{Amount: 1}, ""},
		{governor.CPUIdle, "2", false, governor.Step{}, "use step = 1"},
		{governor.CPUIdle, "50%", false, governor.Step{}, "use step = 1"},
	} {
		got, err := parseStep(tc.knob, tc.in, tc.down)
		checkParse(t, "parseStep("+tc.knob.String()+")", tc.in, got, tc.want, err, tc.err)
	}
}

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		sig  governor.Signal
		in   string
		want float64
		err  string
	}{
		{governor.CPUSomeAvg10, "10%", 10, ""},
		{governor.CPUSomeAvg10, "0.5%", 0.5, ""},
		{governor.CPUSomeAvg10, "100%", 100, ""},
		{governor.CPUSomeAvg10, "101%", 0, "never exceed 100%"},
		{governor.RunqDelay, "250%", 250, ""}, // not PSI: may exceed 100%
		{governor.CPUSomeAvg10, "10", 0, `has no unit; cpu.some.avg10 is measured in percent: write "10%"`},
		{governor.CPUSomeAvg10, "5ms", 0, `"5ms" is a duration, but cpu.some.avg10 is measured in percent`},
		{governor.MemoryFullAvg10, "512MiB", 0, "is a size, but memory.full.avg10 is measured in percent"},
		{governor.CPUSomeAvg10, "-5%", 0, "must not be negative"},
		{governor.CPUSomeAvg10, "lots", 0, "not a valid value for cpu.some.avg10"},
		{governor.MemoryCurrent, "2GiB", 2 << 30, ""},
		{governor.MemoryCurrent, "1048576", 1 << 20, ""},
		{governor.MemoryCurrent, "5%", 0, "is a percentage, but memory.current is measured in bytes"},
		{governor.MemoryCurrent, "5MiB/s", 0, "is a byte rate, but memory.current is measured in bytes"},
		{governor.IOReadBytes, "50MiB/s", 50 << 20, ""},
		{governor.IOReadBytes, "50MiB", 50 << 20, ""},
		{governor.IOReadBytes, "3/s", 0, "is a rate, but io.read_bytes"},
		{governor.RunqP99, "5ms", 0.005, ""},
		{governor.RunqP99, "1.5s", 1.5, ""},
		{governor.RunqP99, "5", 0, `has no unit; runq.p99 is a latency: write e.g. "5ms"`},
		{governor.RunqP99, "5%", 0, "is a percentage, but runq.p99 is measured in seconds"},
		{governor.OOMKills, "3/s", 3, ""},
		{governor.OOMKills, "6/min", 0.1, ""},
		{governor.OOMKills, "2", 2, ""},
		{governor.OOMKills, "2ms", 0, "is a duration, but oom.kills is measured in per second"},
		{governor.CPUUsage, "1.5", 1.5, ""},
		{governor.CPUUsage, "150%", 0, "is a percentage, but cpu.usage is measured in cores"},
	} {
		got, err := parseThreshold(tc.sig, tc.in)
		checkParse(t, "parseThreshold("+tc.sig.String()+")", tc.in, got, tc.want, err, tc.err)
	}
}

func TestEveryUnitHasAThresholdParser(t *testing.T) {
	for i := governor.Signal(0); i < governor.NumSignals; i++ {
		if _, err := parseThreshold(i, "0"); err != nil && strings.Contains(err.Error(), "unknown unit") {
			t.Errorf("signal %s: %v", i, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"batch", "web", "interactive"}
	for in, want := range map[string]string{
		"bacth":       ` Did you mean "batch"?`,
		"interactve":  ` Did you mean "interactive"?`,
		"db":          "",
		"kubernetes":  "",
		"web":         ` Did you mean "web"?`,
		"":            "",
		"batchbatch1": "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
