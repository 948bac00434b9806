package cgroup

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/governor-dev/governor/governor"
)

const psiBoth = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=789\n"

func TestParsePressure(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Pressure
		wantErr bool
	}{
		{"both", psiBoth, Pressure{
			Some:    PressureLine{1.5, 0.25, 0, 123456},
			Full:    PressureLine{0.1, 0, 0, 789},
			HasFull: true,
		}, false},
		{"some only (old cpu.pressure)", "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
			Pressure{Some: PressureLine{Total: 5}}, false},
		{"no trailing newline", "some avg10=100.00 avg60=0.00 avg300=0.00 total=0",
			Pressure{Some: PressureLine{Avg10: 100}}, false},
		{"empty", "", Pressure{}, true},
		{"full only", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"bad kind", "most avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"missing total", "some avg10=0.00 avg60=0.00 avg300=0.00\n", Pressure{}, true},
		{"no equals", "some avg10 avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"bad float", "some avg10=x avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"negative", "some avg10=-1 avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"NaN", "some avg10=NaN avg60=0.00 avg300=0.00 total=0\n", Pressure{}, true},
		{"bad total", "some avg10=0 avg60=0.00 avg300=0.00 total=-3\n", Pressure{}, true},
		{"total overflow", "some avg10=0 avg60=0.00 avg300=0.00 total=99999999999999999999999\n", Pressure{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePressure([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

const memStat = `anon 1048576
file 2097152
kernel 4096
kernel_stack 0
shmem 512
file_dirty 8
pgscan 10
pgsteal 9
pgmajfault 3
workingset_refault_anon 1
workingset_refault_file 2
some_future_key 77
`

func TestParseMemoryStat(t *testing.T) {
	got, err := ParseMemoryStat([]byte(memStat))
	if err != nil {
		t.Fatal(err)
	}
	want := MemoryStat{Anon: 1 << 20, File: 2 << 20, Kernel: 4096, Shmem: 512, FileDirty: 8,
		Pgscan: 10, Pgsteal: 9, Pgmajfault: 3, WorkingsetRefaultAnon: 1, WorkingsetRefaultFile: 2}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"anon\n", "anon 1 2\n", "anon -1\n", "anon x\n", "anon 1.5\n"} {
		if _, err := ParseMemoryStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, err := ParseMemoryStat(nil); err != nil || got != (MemoryStat{}) {
		t.Errorf("empty: %+v %v", got, err)
	}
}

func TestParseMemoryEvents(t *testing.T) {
	got, err := ParseMemoryEvents([]byte("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (MemoryEvents{1, 2, 3, 4, 5, 6}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ParseMemoryEvents([]byte("high two\n")); err == nil {
		t.Error("no error for a bad value")
	}
}

func TestParseCPUStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    CPUStat
		wantErr bool
	}{
		{"no controller", "usage_usec 100\nuser_usec 60\nsystem_usec 40\n",
			CPUStat{UsageUsec: 100, UserUsec: 60, SystemUsec: 40}, false},
		{"with cpu controller",
			"usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 10\nnr_throttled 4\nthrottled_usec 5000\nnr_bursts 0\nburst_usec 0\n",
			CPUStat{100, 60, 40, 10, 4, 5000, 0, 0, true}, false},
		{"no usage", "user_usec 1\n", CPUStat{}, true},
		{"garbage", "usage_usec\n", CPUStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCPUStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCPUMax(t *testing.T) {
	tests := []struct {
		in      string
		want    CPUMax
		mill    int64
		wantErr bool
	}{
		{"max 100000\n", CPUMax{governor.Unlimited, 100000}, governor.Unlimited, false},
		{"50000 100000\n", CPUMax{50000, 100000}, 500000, false},
		{"150000 100000", CPUMax{150000, 100000}, 1500000, false},
		{"max", CPUMax{governor.Unlimited, 100000}, governor.Unlimited, false},
		{"1000 1000000", CPUMax{1000, 1000000}, 1000, false},
		{"", CPUMax{}, 0, true},
		{"max 0", CPUMax{}, 0, true},
		{"0 100000", CPUMax{}, 0, true},
		{"-5 100000", CPUMax{}, 0, true},
		{"50000 100000 7", CPUMax{}, 0, true},
		{"fifty 100000", CPUMax{}, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseCPUMax([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err == nil && got.Millionths() != tt.mill {
			t.Errorf("%q: millionths %d, want %d", tt.in, got.Millionths(), tt.mill)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"max\n", governor.Unlimited, false},
		{"0\n", 0, false},
		{"1073741824\n", 1 << 30, false},
		{"100", 100, false},
		{"-1", -1, false},
		{"", 0, true},
		{"\n", 0, true},
		{"12 34", 0, true},
		{"12k", 0, true},
		{"9223372036854775808", 0, true},
		{"maximum", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseValue([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseIOStat(t *testing.T) {
	in := "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n" +
		"259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.vrate=100\n"
	got, err := ParseIOStat([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []IOStat{
		{Major: 8, Minor: 0, RBytes: 4096, WBytes: 8192, RIOs: 1, WIOs: 2},
		{Major: 259, Minor: 0, RBytes: 1, WBytes: 2, RIOs: 3, WIOs: 4, DBytes: 5, DIOs: 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Reuse of the destination slice.
	got2, err := ParseIOStat([]byte(in), got[:0])
	if err != nil || &got2[0] != &got[0] {
		t.Errorf("slice not reused: %v", err)
	}
	if got, err := ParseIOStat(nil, nil); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"8 rbytes=1\n", "8:x rbytes=1\n", "8:0 rbytes\n", "8:0 rbytes=-1\n", "99999999999:0 rbytes=1\n"} {
		if _, err := ParseIOStat([]byte(bad), nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseIOWeight(t *testing.T) {
	got, err := ParseIOWeight([]byte("default 100\n8:0 200\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := IOWeight{Default: 100, Devices: []IODeviceWeight{{8, 0, 200}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "8:0 200\n", "default\n", "default 0\n", "default 10001\n", "default x\n", "sda 100\ndefault 100\n"} {
		if _, err := ParseIOWeight([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseEvents(t *testing.T) {
	got, err := ParseEvents([]byte("populated 1\nfrozen 0\n"))
	if err != nil || got != (Events{Populated: true}) {
		t.Errorf("got %+v, %v", got, err)
	}
	got, err = ParseEvents([]byte("populated 0\nfrozen 1\n"))
	if err != nil || got != (Events{Frozen: true}) {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, bad := range []string{"populated 2\n", "frozen\n", "populated yes\n"} {
		if _, err := ParseEvents([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Parsers must never panic, whatever the input.
func TestParsersNoPanic(t *testing.T) {
	inputs := []string{"", "\n", " ", "=", "some", "some =", "some avg10=", ":", "8:", ":0 x=1",
		"\x00\x00", strings.Repeat("a ", 1000), "default", "max max", "some avg10=1e400 avg60=0 avg300=0 total=0"}
	for _, in := range inputs {
		b := []byte(in)
		ParsePressure(b)
		ParseMemoryStat(b)
		ParseMemoryEvents(b)
		ParseCPUStat(b)
		ParseCPUMax(b)
		ParseValue(b)
		ParseIOStat(b, nil)
		ParseIOWeight(b)
		ParseEvents(b)
	}
}

func FuzzParsePressure(f *testing.F) {
	f.Add([]byte(psiBoth))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePressure(b)
		if err == nil && (p.Some.Avg10 < 0 || p.Some.Avg10 > 100) {
			t.Fatalf("accepted out-of-range average: %+v", p)
		}
	})
}

func FuzzParseIOStat(f *testing.F) {
	f.Add([]byte("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseIOStat(b, nil) })
}

func FuzzParseKeyed(f *testing.F) {
	f.Add([]byte(memStat))
	f.Add([]byte("usage_usec 1\nnr_throttled 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseMemoryStat(b)
		ParseCPUStat(b)
		ParseEvents(b)
		ParseMemoryEvents(b)
		ParseCPUMax(b)
		ParseValue(b)
		ParseIOWeight(b)
	})
}

func BenchmarkParsePressure(b *testing.B) {
	in := []byte(psiBoth)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParsePressure(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMemoryStat(b *testing.B) {
	// A realistic full-size memory.stat.
	var sb strings.Builder
	for _, k := range []string{"anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables",
		"percpu", "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
		"file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
		"active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
		"slab_unreclaimable", "slab", "workingset_refault_anon", "workingset_refault_file",
		"workingset_activate_anon", "workingset_activate_file", "pgscan", "pgsteal", "pgfault",
		"pgmajfault", "pgrefill", "pgactivate", "pgdeactivate", "pglazyfree", "thp_fault_alloc"} {
		sb.WriteString(k + " 123456789\n")
	}
	in := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseMemoryStat(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseIOStat(b *testing.B) {
	in := []byte("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n")
	dst := make([]IOStat, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = ParseIOStat(in, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
