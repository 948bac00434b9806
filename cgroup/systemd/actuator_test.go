package systemd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
)

// fakeFS is the cgroupfs side: knob values in memory.
type fakeFS struct {
	mu     sync.Mutex
	vals   map[string]int64
	absent map[string]bool // knob files missing (controller off)
	calls  []string
	frozen map[string]bool
}

func newFakeFS() *fakeFS {
	return &fakeFS{vals: map[string]int64{}, frozen: map[string]bool{}, absent: map[string]bool{}}
}

func (f *fakeFS) key(ref governor.Ref, k governor.Knob) string { return ref.Path + " " + k.String() }

func (f *fakeFS) get(ref governor.Ref, k governor.Knob) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vals[f.key(ref, k)]; ok {
		return v
	}
	return governor.Unlimited
}

func (f *fakeFS) put(ref governor.Ref, k governor.Knob, v int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals[f.key(ref, k)] = v
}

func (f *fakeFS) log(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeFS) Read(_ context.Context, ref governor.Ref, k governor.Knob) (governor.Setting, error) {
	f.mu.Lock()
	off := f.absent[f.key(ref, k)]
	f.mu.Unlock()
	if off {
		return governor.Setting{}, fmt.Errorf("read %s: %w", f.key(ref, k), governor.ErrUnsupported)
	}
	v := f.get(ref, k)
	raw := fmt.Sprint(v)
	if v == governor.Unlimited {
		raw = "max"
	}
	return governor.Setting{Value: v, Raw: raw}, nil
}

func (f *fakeFS) Write(_ context.Context, ref governor.Ref, k governor.Knob, v int64) error {
	f.put(ref, k, v)
	f.log(fmt.Sprintf("fs write %s %s=%d", ref.Path, k, v))
	return nil
}

func (f *fakeFS) Restore(_ context.Context, ref governor.Ref, k governor.Knob, s governor.Setting) error {
	f.put(ref, k, s.Value)
	f.log(fmt.Sprintf("fs restore %s %s=%s", ref.Path, k, s.Raw))
	return nil
}

func (f *fakeFS) Reclaim(_ context.Context, ref governor.Ref, n int64) error {
	f.log(fmt.Sprintf("fs reclaim %s %d", ref.Path, n))
	return nil
}

func (f *fakeFS) Freeze(_ context.Context, ref governor.Ref, on bool) error {
	f.log(fmt.Sprintf("fs freeze %s %v", ref.Path, on))
	return nil
}

func (f *fakeFS) Kill(_ context.Context, ref governor.Ref) error {
	f.log("fs kill " + ref.Path)
	return nil
}

// fakeBus plays systemd: units with cgroups, and properties applied to the
// fake cgroupfs after a delay (as systemd's realize queue does).
type fakeBus struct {
	mu      sync.Mutex
	units   map[string]string // unit -> ControlGroup
	fs      *fakeFS
	delay   time.Duration
	never   bool  // accept properties but never apply them
	setErr  error // returned by SetUnitProperties
	thawErr error // returned by ThawUnit
	calls   []string
	closed  bool
	applied sync.WaitGroup
	// run, if set, is systemd's runtime directory: properties are written
	// as drop-ins there, and a reset weight turns its controller off.
	run     string
	reloads int
	// props: unit properties set ("unit Name"); CPUWeight reads unset
	// (MaxUint64) until set. noIdle: refuse CPUWeight=idle as systemd
	// before 252 does.
	props  map[string]uint64
	noIdle bool
	// version: systemd's, for SystemdVersion (0: 252).
	version int
}

func (b *fakeBus) SystemdVersion(context.Context) (int, error) {
	b.log("SystemdVersion")
	if b.version == 0 {
		return 252, nil
	}
	return b.version, nil
}

func (b *fakeBus) UnitProperty(_ context.Context, unit, typ, name string) (interface{}, error) {
	b.log("UnitProperty " + unit + " " + name)
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.props[unit+" "+name]; ok {
		return v, nil
	}
	if name == "CPUWeight" {
		return uint64(math.MaxUint64), nil
	}
	return nil, godbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty", Body: []interface{}{"no " + name}}
}

func (b *fakeBus) Reload(context.Context) error {
	b.log("Reload")
	b.mu.Lock()
	b.reloads++
	b.mu.Unlock()
	return nil
}

func (b *fakeBus) log(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
}

func (b *fakeBus) ControlGroup(_ context.Context, unit, typ string) (string, error) {
	b.log("ControlGroup " + unit + " " + typ)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.units[unit], nil
}

var knobOf = map[string]governor.Knob{
	"MemoryHigh": governor.MemoryHigh, "MemoryMax": governor.MemoryMax, "MemoryLow": governor.MemoryLow,
	"MemoryMin": governor.MemoryMin, "CPUWeight": governor.CPUWeight, "CPUQuotaPerSecUSec": governor.CPUMax,
	"IOWeight": governor.IOWeight,
}

func (b *fakeBus) SetUnitProperties(_ context.Context, unit string, props ...sddbus.Property) error {
	for _, p := range props {
		b.log(fmt.Sprintf("SetUnitProperties %s %s=%v", unit, p.Name, p.Value.Value()))
	}
	if b.setErr != nil {
		return b.setErr
	}
	b.mu.Lock()
	cg, ok := b.units[unit]
	b.mu.Unlock()
	if !ok {
		return godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []interface{}{"Unit " + unit + " not loaded."}}
	}
	if b.never {
		return nil
	}
	ref := governor.Ref{Path: strings.TrimPrefix(cg, "/")}
	for _, p := range props {
		k := knobOf[p.Name]
		u := p.Value.Value().(uint64)
		v := int64(u)
		if u == math.MaxUint64 {
			v = governor.Unlimited
		}
		if p.Name == "CPUWeight" {
			if u == 0 && b.noIdle {
				return godbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []interface{}{"Value specified in CPUWeight is out of range"}}
			}
			b.mu.Lock()
			if b.props == nil {
				b.props = map[string]uint64{}
			}
			b.props[unit+" CPUWeight"] = u
			b.mu.Unlock()
			// systemd 252+ writes cpu.idle from CPUWeight= (and, for
			// idle, leaves cpu.weight alone).
			idle := int64(0)
			if u == 0 {
				idle = 1
			}
			// With a runtime directory, a reset weight turns cpu off
			// (no file) where nothing else needs it, as for the others.
			off := u == math.MaxUint64 && b.run != ""
			b.applied.Add(1)
			time.AfterFunc(b.delay, func() {
				b.fs.mu.Lock()
				b.fs.absent[b.fs.key(ref, governor.CPUIdle)] = off
				b.fs.mu.Unlock()
				b.fs.put(ref, governor.CPUIdle, idle)
				b.applied.Done()
			})
			if u == 0 {
				if b.run != "" {
					d := filepath.Join(b.run, "system.control", unit+".d")
					os.MkdirAll(d, 0o755)
					os.WriteFile(filepath.Join(d, "50-CPUWeight.conf"), []byte("[Slice]\nCPUWeight=idle\n"), 0o644)
				}
				continue
			}
		}
		if b.run != "" {
			name, val := p.Name, fmt.Sprint(u)
			if name == "CPUQuotaPerSecUSec" {
				name = "CPUQuota"
			}
			if u == math.MaxUint64 {
				val = ""
			}
			d := filepath.Join(b.run, "system.control", unit+".d")
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, "50-"+name+".conf"), []byte("# This is a drop-in unit file extension, created via \"systemctl set-property\"\n# or an equivalent operation. Do not edit.\n[Slice]\n"+name+"="+val+"\n"), 0o644)
			off := u == math.MaxUint64 && k != governor.MemoryHigh
			b.applied.Add(1)
			time.AfterFunc(b.delay, func() {
				b.fs.mu.Lock()
				b.fs.absent[b.fs.key(ref, k)] = off
				b.fs.mu.Unlock()
				if !off {
					b.fs.put(ref, k, v)
				}
				b.applied.Done()
			})
			continue
		}
		b.applied.Add(1)
		time.AfterFunc(b.delay, func() { b.fs.put(ref, k, v); b.applied.Done() })
	}
	return nil
}

func (b *fakeBus) FreezeUnit(_ context.Context, unit string) error {
	b.log("FreezeUnit " + unit)
	return nil
}

func (b *fakeBus) ThawUnit(_ context.Context, unit string) error {
	b.log("ThawUnit " + unit)
	return b.thawErr
}

func (b *fakeBus) KillUnit(_ context.Context, unit string, sig int32) error {
	b.log(fmt.Sprintf("KillUnit %s %d", unit, sig))
	return nil
}

func (b *fakeBus) Close() { b.closed = true }

func (b *fakeBus) callLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.calls, "\n")
}

var (
	web    = governor.Ref{ID: 10, Path: "system.slice/web.service"}
	job    = governor.Ref{ID: 11, Path: "batch.slice/job1"}
	inner  = governor.Ref{ID: 12, Path: "system.slice/ci.service/payload.scope"}
	batchS = governor.Ref{ID: 13, Path: "batch.slice"}
)

func setup(t *testing.T) (*Actuator, *fakeBus, *fakeFS, *int) {
	t.Helper()
	fs := newFakeFS()
	bus := &fakeBus{fs: fs, delay: 20 * time.Millisecond, units: map[string]string{
		"web.service": "/system.slice/web.service",
		"ci.service":  "/system.slice/ci.service", // Delegate=yes: payload.scope below is not a unit
		"batch.slice": "/batch.slice",
	}}
	dials := 0
	a := New(t.TempDir(), fs, Options{
		Booted: func() bool { return true },
		Dial:   func(context.Context) (Bus, error) { dials++; return bus, nil },
	})
	t.Cleanup(func() { bus.applied.Wait() })
	return a, bus, fs, &dials
}

func TestRouting(t *testing.T) {
	a, bus, _, dials := setup(t)
	for _, tc := range []struct {
		ref  governor.Ref
		want string
	}{
		{web, ViaSystemd},
		{batchS, ViaSystemd},
		{job, ViaCgroupfs},   // not a unit name: no D-Bus call at all
		{inner, ViaCgroupfs}, // looks like a unit, systemd does not know it there
		{governor.Ref{ID: 14, Path: "system.slice/other.service"}, ViaCgroupfs}, // no such unit
		{governor.Ref{ID: 15, Path: ""}, ViaCgroupfs},
	} {
		if got := a.Via(tc.ref); got != tc.want {
			t.Errorf("Via(%s) = %s, want %s", tc.ref, got, tc.want)
		}
	}
	a.Via(web) // cached
	log := bus.callLog()
	if strings.Count(log, "ControlGroup web.service") != 1 || strings.Contains(log, "job1") {
		t.Errorf("routing calls:\n%s", log)
	}
	if !strings.Contains(log, "ControlGroup payload.scope Scope") || !strings.Contains(log, "ControlGroup batch.slice Slice") {
		t.Errorf("unit types:\n%s", log)
	}
	if *dials != 1 {
		t.Errorf("dialled %d times", *dials)
	}
}

func TestNoSystemdNeverDials(t *testing.T) {
	fs := newFakeFS()
	a := New(t.TempDir(), fs, Options{
		Booted: func() bool { return false },
		Dial:   func(context.Context) (Bus, error) { t.Fatal("dialled on a host without systemd"); return nil, nil },
	})
	if err := a.Write(context.Background(), web, governor.MemoryHigh, 1<<30); err != nil {
		t.Fatal(err)
	}
	if a.Via(web) != ViaCgroupfs || fs.calls[0] != "fs write system.slice/web.service memory.high=1073741824" {
		t.Errorf("calls %v", fs.calls)
	}
}

func TestDialFailureFallsBackAndRetriesLater(t *testing.T) {
	fs := newFakeFS()
	dials := 0
	a := New(t.TempDir(), fs, Options{
		Booted: func() bool { return true },
		Dial:   func(context.Context) (Bus, error) { dials++; return nil, errors.New("no socket") },
	})
	for i := 0; i < 3; i++ {
		if err := a.Write(context.Background(), web, governor.CPUWeight, 50); err != nil {
			t.Fatal(err)
		}
	}
	if dials != 1 || len(fs.calls) != 3 || a.Via(web) != ViaCgroupfs {
		t.Errorf("dials %d, calls %v", dials, fs.calls)
	}
}

func TestWriteGoesThroughSystemdAndWaitsForIt(t *testing.T) {
	a, bus, fs, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fs.put(web, governor.CPUWeight, 100)
	fs.put(web, governor.CPUMax, governor.Unlimited)
	fs.put(web, governor.IOWeight, 100)
	fs.put(web, governor.MemoryLow, 0)
	for _, w := range []struct {
		k    governor.Knob
		v    int64
		prop string
		// want is what cgroupfs shows after the write (v when 0).
		want int64
	}{
		{governor.MemoryHigh, 512 << 20, "MemoryHigh=536870912", 0},
		{governor.MemoryLow, 64 << 20, "MemoryLow=67108864", 0},
		{governor.CPUWeight, 25, "CPUWeight=25", 0},
		{governor.CPUMax, 1_500_000, "CPUQuotaPerSecUSec=1500000", 0},
		// A quota systemd 247 cannot keep in its drop-in (84.4 %) is
		// asked for in whole percent, as a daemon-reload re-applies it.
		{governor.CPUMax, 844_000, "CPUQuotaPerSecUSec=840000", 840_000},
		{governor.CPUMax, 4_000, "CPUQuotaPerSecUSec=10000", 10_000},
		{governor.IOWeight, 40, "IOWeight=40", 0},
	} {
		if err := a.Write(ctx, web, w.k, w.v); err != nil {
			t.Fatalf("write %s: %v", w.k, err)
		}
		want := w.v
		if w.want != 0 {
			want = w.want
		}
		// Write returns only once cgroupfs shows the value.
		if got := fs.get(web, w.k); got != want {
			t.Errorf("%s: cgroupfs shows %d right after Write, want %d", w.k, got, want)
		}
		if !strings.Contains(bus.callLog(), "SetUnitProperties web.service "+w.prop) {
			t.Errorf("no %s in\n%s", w.prop, bus.callLog())
		}
	}
	// "max" is UINT64_MAX (infinity) for systemd.
	if err := a.Restore(ctx, web, governor.MemoryHigh, governor.Setting{Value: governor.Unlimited, Raw: "max"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bus.callLog(), fmt.Sprintf("MemoryHigh=%d", uint64(math.MaxUint64))) || fs.get(web, governor.MemoryHigh) != governor.Unlimited {
		t.Errorf("restore to max:\n%s", bus.callLog())
	}
	for _, c := range fs.calls {
		if strings.Contains(c, "web.service") {
			t.Errorf("a unit's cgroup was written directly: %s", c)
		}
	}
	// cpu.idle goes through CPUWeight=idle (idle.go); memory.reclaim is
	// always cgroupfs.
	fs.put(web, governor.CPUIdle, 0)
	if err := a.Write(ctx, web, governor.CPUIdle, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bus.callLog(), "SetUnitProperties web.service CPUWeight=0") || fs.get(web, governor.CPUIdle) != 1 {
		t.Errorf("cpu.idle 1 not through CPUWeight=idle:\n%s", bus.callLog())
	}
	if err := a.Reclaim(ctx, web, 4096); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.calls, "\n"); got != "fs reclaim system.slice/web.service 4096" {
		t.Errorf("direct calls:\n%s", got)
	}
}

// systemd 252+ writes cpu.idle from CPUWeight= whenever it applies a unit's
// settings, daemon-reload included, so a unit's cpu.idle goes through
// CPUWeight=idle, and back to the CPUWeight= it had: not set (reset, its
// drop-in removed), or a weight from the unit file.
func TestCPUIdleThroughCPUWeight(t *testing.T) {
	root, run := t.TempDir(), t.TempDir()
	fs := newFakeFS()
	bus := &fakeBus{fs: fs, delay: 5 * time.Millisecond, run: run, units: map[string]string{"batch.slice": "/batch.slice", "web.service": "/system.slice/web.service"}}
	dial := func(context.Context) (Bus, error) { return bus, nil }
	a := New(root, fs, Options{Booted: func() bool { return true }, Dial: dial, RunDir: run})
	t.Cleanup(func() { bus.applied.Wait() })
	ctx := context.Background()
	fs.put(batchS, governor.CPUIdle, 0)
	fs.put(batchS, governor.CPUWeight, 100)

	orig, err := a.Read(ctx, batchS, governor.CPUIdle)
	if err != nil || orig.Value != 0 || orig.Raw != "0 (CPUWeight=unset)"+RawNoDropIn {
		t.Fatalf("Read = %+v, %v; want 0 marked unset, no drop-in", orig, err)
	}
	if err := a.Write(ctx, batchS, governor.CPUIdle, 1); err != nil {
		t.Fatal(err)
	}
	if fs.get(batchS, governor.CPUIdle) != 1 || !strings.HasSuffix(bus.callLog(), "SetUnitProperties batch.slice CPUWeight=0") {
		t.Fatalf("cpu.idle %d after Write 1:\n%s", fs.get(batchS, governor.CPUIdle), bus.callLog())
	}
	for _, c := range fs.calls {
		t.Errorf("a unit's cpu.idle written directly: %s", c)
	}
	// While the governor holds it, the per-tick read asks systemd nothing.
	n := strings.Count(bus.callLog(), "UnitProperty")
	if s, err := a.Read(ctx, batchS, governor.CPUIdle); err != nil || s.Value != 1 || s.Raw != "1 (CPUWeight=idle)" {
		t.Errorf("Read while idle = %+v, %v", s, err)
	}
	if strings.Count(bus.callLog(), "UnitProperty") != n {
		t.Errorf("read of the governor's own idle asked systemd:\n%s", bus.callLog())
	}
	dropin := filepath.Join(run, "system.control", "batch.slice.d")
	if _, err := os.Stat(filepath.Join(dropin, "50-CPUWeight.conf")); err != nil {
		t.Fatalf("fake systemd wrote no drop-in: %v", err)
	}
	// A new process (after SIGKILL) restores from the Setting alone.
	a2 := New(root, fs, Options{Booted: func() bool { return true }, Dial: dial, RunDir: run})
	if err := a2.Restore(ctx, batchS, governor.CPUIdle, orig); err != nil {
		t.Fatal(err)
	}
	if fs.get(batchS, governor.CPUIdle) != 0 || !strings.HasSuffix(bus.callLog(), fmt.Sprintf("SetUnitProperties batch.slice CPUWeight=%d", uint64(math.MaxUint64))) {
		t.Errorf("restore must reset CPUWeight (cpu.idle %d):\n%s", fs.get(batchS, governor.CPUIdle), bus.callLog())
	}
	if _, err := os.Stat(dropin); !os.IsNotExist(err) {
		t.Errorf("drop-in left behind: %v", err)
	}
	a2.Close()
	if bus.reloads != 1 {
		t.Errorf("want one daemon-reload at Close, got %d", bus.reloads)
	}

	// A weight from the unit file: idle and back gives it back, from the
	// live process (Write 0) and from the Setting (Restore).
	bus.props["web.service CPUWeight"] = 200
	fs.put(web, governor.CPUIdle, 0)
	orig, _ = a.Read(ctx, web, governor.CPUIdle)
	if orig.Raw != "0 (CPUWeight=200)"+RawNoDropIn {
		t.Fatalf("Read = %+v", orig)
	}
	a.Write(ctx, web, governor.CPUIdle, 1)
	if err := a.Write(ctx, web, governor.CPUIdle, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bus.callLog(), "SetUnitProperties web.service CPUWeight=200") || fs.get(web, governor.CPUIdle) != 0 {
		t.Errorf("cpu.idle 0 must give CPUWeight=200 back:\n%s", bus.callLog())
	}
	a.Write(ctx, web, governor.CPUIdle, 1)
	if err := a.Restore(ctx, web, governor.CPUIdle, orig); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bus.callLog(), "SetUnitProperties web.service CPUWeight=200") {
		t.Errorf("restore:\n%s", bus.callLog())
	}
	if _, err := os.Stat(filepath.Join(run, "system.control", "web.service.d", "50-CPUWeight.conf")); !os.IsNotExist(err) {
		t.Errorf("drop-in the governor caused left behind: %v", err)
	}
	// A cgroup that is not a unit: cgroupfs, as is a Setting without mark.
	fs.calls = nil
	if err := a.Write(ctx, job, governor.CPUIdle, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(ctx, web, governor.CPUIdle, governor.Setting{Value: 0, Raw: "0"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.calls, "\n"); got != "fs write batch.slice/job1 cpu.idle=1\nfs restore system.slice/web.service cpu.idle=0" {
		t.Errorf("direct calls:\n%s", got)
	}
}

// systemd before 252 refuses CPUWeight=idle ("out of range"): cpu.idle is
// written in cgroupfs, and systemd is not asked again.
func TestCPUIdleOldSystemd(t *testing.T) {
	a, bus, fs, _ := setup(t)
	bus.noIdle = true
	ctx := context.Background()
	fs.put(batchS, governor.CPUIdle, 0)
	for range 2 {
		if err := a.Write(ctx, batchS, governor.CPUIdle, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(bus.callLog(), "SetUnitProperties"); got != 1 {
		t.Errorf("asked systemd %d times:\n%s", got, bus.callLog())
	}
	if got := strings.Join(fs.calls, "\n"); got != "fs write batch.slice cpu.idle=1\nfs write batch.slice cpu.idle=1" {
		t.Errorf("direct calls:\n%s", got)
	}
	if s, _ := a.Read(ctx, batchS, governor.CPUIdle); s.Raw != "1" {
		t.Errorf("Read marks a cgroupfs cpu.idle: %+v", s)
	}
}

func TestIdleMark(t *testing.T) {
	for _, tc := range []struct {
		raw, content string
		w            uint64
		ok, noDropIn bool
	}{
		{"0", "0", 0, false, false},
		{"0 (CPUWeight=unset)", "0", math.MaxUint64, true, false},
		{"0 (CPUWeight=250)" + RawNoDropIn, "0", 250, true, true},
		{"1 (CPUWeight=idle)", "1", 0, true, false},
		{"0 (CPUWeight=20000)", "0", 0, false, false},
		{"0 (CPUWeight=x", "0 (CPUWeight=x", 0, false, false},
		{"0" + RawNoDropIn, "0", 0, false, true},
	} {
		c, w, ok, nd := cutIdleMark(tc.raw)
		if c != tc.content || w != tc.w || ok != tc.ok || nd != tc.noDropIn {
			t.Errorf("cutIdleMark(%q) = %q %d %v %v", tc.raw, c, w, ok, nd)
		}
	}
}

func TestNonUnitWritesCgroupfs(t *testing.T) {
	a, bus, fs, _ := setup(t)
	ctx := context.Background()
	if err := a.Write(ctx, job, governor.CPUWeight, 10); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(ctx, inner, governor.MemoryHigh, governor.Setting{Value: governor.Unlimited, Raw: "max"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Freeze(ctx, job, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Kill(ctx, inner); err != nil {
		t.Fatal(err)
	}
	want := "fs write batch.slice/job1 cpu.weight=10\nfs restore system.slice/ci.service/payload.scope memory.high=max\nfs freeze batch.slice/job1 true\nfs kill system.slice/ci.service/payload.scope"
	if got := strings.Join(fs.calls, "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(bus.callLog(), "SetUnitProperties") {
		t.Errorf("D-Bus used for a non-unit:\n%s", bus.callLog())
	}
}

func TestSettleTimeoutIsErrTimeout(t *testing.T) {
	a, bus, fs, _ := setup(t)
	bus.never = true
	fs.put(web, governor.CPUWeight, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := a.Write(ctx, web, governor.CPUWeight, 50)
	if !errors.Is(err, governor.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	// Rounding: a memory value within the same page needs no wait.
	fs.put(web, governor.MemoryHigh, 1<<30)
	if err := a.Write(context.Background(), web, governor.MemoryHigh, 1<<30+100); err != nil {
		t.Fatalf("same page: %v", err)
	}
}

func TestUnknownPropertyFallsBackToCgroupfs(t *testing.T) {
	a, bus, fs, _ := setup(t)
	bus.setErr = godbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []interface{}{"Cannot set property MemoryMin, or unknown property."}}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := a.Write(ctx, web, governor.MemoryMin, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(bus.callLog(), "SetUnitProperties"); n != 1 {
		t.Errorf("asked systemd %d times after it said it does not know the property", n)
	}
	if len(fs.calls) != 2 {
		t.Errorf("fs calls %v", fs.calls)
	}
}

func TestErrorsMap(t *testing.T) {
	a, bus, fs, _ := setup(t)
	fs.put(web, governor.CPUWeight, 100)
	bus.setErr = godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []interface{}{"gone"}}
	if err := a.Write(context.Background(), web, governor.CPUWeight, 50); !errors.Is(err, governor.ErrGone) {
		t.Errorf("NoSuchUnit: %v", err)
	}
	bus.setErr = errors.New("connection reset")
	if err := a.Write(context.Background(), web, governor.CPUWeight, 50); err == nil || errors.Is(err, governor.ErrGone) {
		t.Errorf("transport error: %v", err)
	}
	if !bus.closed {
		t.Error("a transport error should drop the connection")
	}
	if err := a.Write(context.Background(), web, governor.CPUWeight, 0); err == nil {
		t.Error("weight 0 accepted")
	}
}

func TestFreezeAndKillUnit(t *testing.T) {
	fs := newFakeFS()
	root := t.TempDir()
	dir := filepath.Join(root, web.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "cgroup.events")
	os.WriteFile(events, []byte("populated 1\nfrozen 0\n"), 0o644)
	bus := &fakeBus{fs: fs, units: map[string]string{"web.service": "/system.slice/web.service"}}
	a := New(root, fs, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }})
	// systemd finishes freezing a little later.
	time.AfterFunc(30*time.Millisecond, func() { os.WriteFile(events, []byte("populated 1\nfrozen 1\n"), 0o644) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.Freeze(ctx, web, true); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(events, []byte("populated 1\nfrozen 0\n"), 0o644)
	if err := a.Freeze(ctx, web, false); err != nil {
		t.Fatal(err)
	}
	if err := a.Kill(ctx, web); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ControlGroup web.service Service\nFreezeUnit web.service\nThawUnit web.service\nKillUnit web.service %d", int(syscall.SIGKILL))
	if got := bus.callLog(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if len(fs.calls) != 0 {
		t.Errorf("cgroupfs used for a unit: %v", fs.calls)
	}
	// A freeze systemd never completes times out.
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := a.Freeze(short, web, true); !errors.Is(err, governor.ErrTimeout) {
		t.Errorf("stuck freeze: %v", err)
	}
}

// The wrapper over the real cgroupfs actuator, on a fixture tree.
func TestWrapsCgroupfsActuator(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "batch.slice", "job1")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "cpu.weight"), []byte("100\n"), 0o644)
	a := New(root, cgroup.NewActuator(root, nil), Options{Booted: func() bool { return false }})
	ref := governor.Ref{ID: 1, Path: "batch.slice/job1"}
	if err := a.Write(context.Background(), ref, governor.CPUWeight, 7); err != nil {
		t.Fatal(err)
	}
	s, err := a.Read(context.Background(), ref, governor.CPUWeight)
	if err != nil || s.Value != 7 {
		t.Fatalf("read back %+v %v", s, err)
	}
}

func TestThawRefusedBySystemdFallsBackToCgroupfs(t *testing.T) {
	a, bus, fs, _ := setup(t)
	bus.thawErr = godbus.Error{Name: "org.freedesktop.systemd1.UnitInactive", Body: []interface{}{"Unit vmt is not active."}}
	if err := a.Freeze(context.Background(), web, false); err != nil {
		t.Fatal(err)
	}
	if len(fs.calls) != 1 || fs.calls[0] != "fs freeze system.slice/web.service false" {
		t.Errorf("calls %v", fs.calls)
	}
}

// Reclaim measures through the cgroupfs actuator, also for units; a
// wrapped actuator without ReadMemory says it is unsupported.
func TestReadMemoryDelegates(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "batch.slice")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "memory.current"), []byte("8388608\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "memory.stat"), []byte("anon 4194304\nfile 4194304\n"), 0o644)
	swaps := filepath.Join(t.TempDir(), "swaps")
	os.WriteFile(swaps, []byte("Filename Type Size Used Priority\n"), 0o644)
	fs := cgroup.NewActuator(root, nil)
	fs.ProcSwaps = swaps
	a := New(root, fs, Options{Booted: func() bool { return false }})
	m, err := a.ReadMemory(context.Background(), governor.Ref{ID: 1, Path: "batch.slice"})
	if err != nil || m.Current != 8<<20 || m.Anon != 4<<20 || m.Swap() != 0 {
		t.Fatalf("ReadMemory = %+v, %v", m, err)
	}
	_, bus, _, _ := setup(t)
	b := New(root, &fakeFS{}, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }})
	if _, err := b.ReadMemory(context.Background(), web); !errors.Is(err, governor.ErrUnsupported) {
		t.Fatalf("without a memory reader: %v", err)
	}
}

// A stock systemd host: nobody asked for the cpu controller, so batch.slice
// has no cpu.weight. Read reports the kernel default as unset, a Write asks
// systemd for the property (which enables the controller), and restoring
// the unset original resets the property and removes the drop-in systemd
// wrote, with one daemon-reload at Close: systemd's state as before.
func TestUnsetPropertyIsResetNotWrittenBack(t *testing.T) {
	root, run := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644)
	fs := newFakeFS()
	bus := &fakeBus{fs: fs, delay: 5 * time.Millisecond, run: run, units: map[string]string{"batch.slice": "/batch.slice", "web.service": "/system.slice/web.service"}}
	a := New(root, fs, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }, RunDir: run})
	t.Cleanup(func() { bus.applied.Wait() })
	ctx := context.Background()
	fs.absent[fs.key(batchS, governor.CPUWeight)] = true
	fs.absent[fs.key(job, governor.CPUWeight)] = true

	if !a.EnablesController("cpu") || a.EnablesController("memory") || a.EnablesController("hugetlb") {
		t.Errorf("EnablesController: cpu %v memory %v hugetlb %v", a.EnablesController("cpu"), a.EnablesController("memory"), a.EnablesController("hugetlb"))
	}
	s, err := a.Read(ctx, batchS, governor.CPUWeight)
	if err != nil || s.Value != 100 || s.Raw != RawUnset {
		t.Fatalf("Read of a unit's absent cpu.weight = %+v, %v; want 100 unset", s, err)
	}
	// Not a unit: nobody can enable the controller for it.
	if _, err := a.Read(ctx, job, governor.CPUWeight); !errors.Is(err, governor.ErrUnsupported) {
		t.Errorf("Read of a non-unit's absent cpu.weight: %v", err)
	}
	if err := a.Write(ctx, batchS, governor.CPUWeight, 50); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Read(ctx, batchS, governor.CPUWeight); got.Value != 50 {
		t.Errorf("after Write: %+v", got)
	}
	dropin := filepath.Join(run, "system.control", "batch.slice.d")
	if _, err := os.Stat(filepath.Join(dropin, "50-CPUWeight.conf")); err != nil {
		t.Fatalf("fake systemd wrote no drop-in: %v", err)
	}
	if err := a.Restore(ctx, batchS, governor.CPUWeight, s); err != nil {
		t.Fatal(err)
	}
	log := bus.callLog()
	if !strings.Contains(log, fmt.Sprintf("SetUnitProperties batch.slice CPUWeight=%d", uint64(math.MaxUint64))) || strings.Contains(log, "CPUWeight=100") {
		t.Errorf("restore of an unset property must reset it, not write the default:\n%s", log)
	}
	if _, err := os.Stat(dropin); !os.IsNotExist(err) {
		t.Errorf("drop-in directory left behind: %v", err)
	}
	if _, err := a.Read(ctx, batchS, governor.CPUWeight); err != nil {
		// Read reports the unset default again once the controller is off.
		t.Errorf("read after reset: %v", err)
	}
	a.Close()
	if bus.reloads != 1 {
		t.Errorf("want one daemon-reload at Close after removing drop-ins, got %d", bus.reloads)
	}

	// An original set at runtime (its drop-in exists: the operator's
	// systemctl set-property) is written back and its drop-in left.
	fs.put(web, governor.CPUWeight, 200)
	wd := filepath.Join(run, "system.control", "web.service.d")
	os.MkdirAll(wd, 0o755)
	os.WriteFile(filepath.Join(wd, "50-CPUWeight.conf"), []byte("[Service]\nCPUWeight=200\n"), 0o644)
	a2 := New(root, fs, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }, RunDir: run})
	orig, _ := a2.Read(ctx, web, governor.CPUWeight)
	if orig.Raw != "200" {
		t.Errorf("runtime property read as %+v", orig)
	}
	a2.Write(ctx, web, governor.CPUWeight, 100)
	if err := a2.Restore(ctx, web, governor.CPUWeight, orig); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bus.callLog(), "SetUnitProperties web.service CPUWeight=200") {
		t.Errorf("set original not written back:\n%s", bus.callLog())
	}
	if _, err := os.Stat(filepath.Join(wd, "50-CPUWeight.conf")); err != nil {
		t.Errorf("drop-in of a runtime property removed: %v", err)
	}
	a2.Close()
	if bus.reloads != 1 {
		t.Errorf("reloaded without removing anything: %d", bus.reloads)
	}

	// A value from the unit file or the default (no drop-in): written
	// back, then the drop-in systemd wrote for it goes, and Close reloads.
	fs.put(web, governor.MemoryLow, 0)
	a3 := New(root, fs, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }, RunDir: run})
	orig, _ = a3.Read(ctx, web, governor.MemoryLow)
	if orig.Raw != "0"+RawNoDropIn {
		t.Errorf("unit-file value read as %+v", orig)
	}
	a3.Write(ctx, web, governor.MemoryLow, 64<<20)
	if err := a3.Restore(ctx, web, governor.MemoryLow, orig); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bus.callLog(), "SetUnitProperties web.service MemoryLow=0") || fs.get(web, governor.MemoryLow) != 0 {
		t.Errorf("memory.low not written back:\n%s", bus.callLog())
	}
	if _, err := os.Stat(filepath.Join(wd, "50-MemoryLow.conf")); !os.IsNotExist(err) {
		t.Errorf("drop-in the governor caused left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wd, "50-CPUWeight.conf")); err != nil {
		t.Errorf("the operator's drop-in went too: %v", err)
	}
	a3.Close()
	if bus.reloads != 2 {
		t.Errorf("want a reload after removing the drop-in, got %d in all", bus.reloads)
	}
}

func TestOnlySetting(t *testing.T) {
	hdr := "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n# or an equivalent operation. Do not edit.\n[Slice]\n"
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{hdr + "CPUWeight=\n", true},
		{hdr + "CPUWeight=50\n", false},
		{hdr + "CPUWeight=\nIOWeight=20\n", false},
		{hdr, false},
	} {
		if got := onlySetting(tc.in, "CPUWeight", ""); got != tc.want {
			t.Errorf("onlySetting(%q) = %v", tc.in, got)
		}
	}
}

// A stock desktop before the first login: nobody enabled cpu, so
// batch.slice has no cpu.idle. systemd 252+ enables cpu for
// CPUWeight=idle, so the knob reads as 0 with an unset CPUWeight, the
// write goes through, and the restore resets CPUWeight (cpu off again,
// no drop-in). systemd 251 does not know idle: the knob stays impossible.
func TestCPUIdleControllerOff(t *testing.T) {
	for _, ver := range []int{252, 251} {
		root, run := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644)
		fs := newFakeFS()
		bus := &fakeBus{fs: fs, delay: 5 * time.Millisecond, run: run, version: ver, units: map[string]string{"batch.slice": "/batch.slice"}}
		a := New(root, fs, Options{Booted: func() bool { return true }, Dial: func(context.Context) (Bus, error) { return bus, nil }, RunDir: run})
		ctx := context.Background()
		fs.absent[fs.key(batchS, governor.CPUIdle)] = true
		fs.absent[fs.key(job, governor.CPUIdle)] = true

		if got := a.EnablesController("cpu.idle"); got != (ver >= 252) {
			t.Errorf("systemd %d: EnablesController(cpu.idle) = %v", ver, got)
		}
		orig, err := a.Read(ctx, batchS, governor.CPUIdle)
		if ver < 252 {
			if !errors.Is(err, governor.ErrUnsupported) {
				t.Errorf("systemd %d: Read of an absent cpu.idle = %+v, %v; want unsupported", ver, orig, err)
			}
			bus.applied.Wait()
			continue
		}
		if err != nil || orig.Value != 0 || orig.Raw != "0 (CPUWeight=unset)"+RawNoDropIn {
			t.Fatalf("Read = %+v, %v", orig, err)
		}
		// Not a unit: nobody enables cpu for it.
		if _, err := a.Read(ctx, job, governor.CPUIdle); !errors.Is(err, governor.ErrUnsupported) {
			t.Errorf("non-unit read: %v", err)
		}
		if err := a.Write(ctx, batchS, governor.CPUIdle, 1); err != nil {
			t.Fatal(err)
		}
		if s, err := a.Read(ctx, batchS, governor.CPUIdle); err != nil || s.Value != 1 {
			t.Fatalf("after Write: %+v, %v", s, err)
		}
		if err := a.Restore(ctx, batchS, governor.CPUIdle, orig); err != nil {
			t.Fatalf("restore: %v", err)
		}
		bus.applied.Wait()
		if _, err := fs.Read(ctx, batchS, governor.CPUIdle); !errors.Is(err, governor.ErrUnsupported) {
			t.Errorf("cpu not off again after the reset: %v", err)
		}
		if _, err := os.Stat(filepath.Join(run, "system.control", "batch.slice.d")); !os.IsNotExist(err) {
			t.Errorf("drop-in left behind: %v", err)
		}
		if n := strings.Count(bus.callLog(), "SystemdVersion"); n != 1 {
			t.Errorf("asked for the version %d times", n)
		}
	}
}

func TestParseSystemdVersion(t *testing.T) {
	for in, want := range map[string]int{`"252.39-1~deb12u2"`: 252, "257.13-1~deb13u1": 257, "v255": 255, "247": 247, "": 0, "abc": 0} {
		got, err := parseSystemdVersion(in)
		if got != want || (err != nil) != (want == 0) {
			t.Errorf("parseSystemdVersion(%q) = %d, %v", in, got, err)
		}
	}
}
