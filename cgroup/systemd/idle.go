package systemd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/governor-dev/governor/governor"
)

// cpu.idle of a unit's cgroup goes through systemd's CPUWeight=.
//
// systemd 252 and later know the special weight "idle" (0 on D-Bus) and
// write cpu.idle themselves every time they apply a unit's cgroup settings
// (start, set-property, daemon-reload): 1 for CPUWeight=idle, 0 otherwise.
// A cpu.idle written in cgroupfs is therefore undone by the next
// daemon-reload (seen on Debian 12's systemd 252; 257 happens to leave it).
// So for a unit the governor sets CPUWeight=idle as a runtime property, and
// for cpu.idle 0 gives CPUWeight= back the value it had.
//
// The value it had is read when cpu.idle is read as 0 and kept in the
// Setting's Raw (which the state file keeps across a crash), after the
// file's content: "0 (CPUWeight=unset)", "0 (CPUWeight=200)",
// "1 (CPUWeight=idle)"; RawNoDropIn may follow. A restore sets that
// property back (unset: reset) and removes the runtime drop-in if the unit
// had none before.
//
// A systemd that refuses the value (before 252: "out of range") gets
// cpu.idle written in cgroupfs, as before, said once in the log.

// cpuWeightIdle is systemd's CGROUP_WEIGHT_IDLE, the D-Bus value of
// CPUWeight=idle; math.MaxUint64 is CGROUP_WEIGHT_INVALID, "not set".
const cpuWeightIdle = 0

const idleMarkPrefix = " (CPUWeight="

// weightText is a CPUWeight property value as the mark and systemd's
// drop-ins spell it.
func weightText(w uint64) string {
	switch w {
	case math.MaxUint64:
		return "unset"
	case cpuWeightIdle:
		return "idle"
	}
	return strconv.FormatUint(w, 10)
}

// parseWeightText is the inverse of weightText.
func parseWeightText(s string) (uint64, bool) {
	switch s {
	case "unset":
		return math.MaxUint64, true
	case "idle":
		return cpuWeightIdle, true
	}
	w, err := strconv.ParseUint(s, 10, 64)
	if err != nil || w < 1 || w > 10000 {
		return 0, false
	}
	return w, true
}

// dropInValue is how systemd writes a CPUWeight value in its drop-in:
// as weightText, but "not set" is empty.
func dropInValue(w uint64) string {
	if w == math.MaxUint64 {
		return ""
	}
	return weightText(w)
}

// cutIdleMark splits a cpu.idle Raw into the file's content, the CPUWeight
// the mark records (ok false without a mark) and whether RawNoDropIn
// followed.
func cutIdleMark(raw string) (content string, w uint64, ok, noDropIn bool) {
	raw, noDropIn = strings.CutSuffix(raw, RawNoDropIn)
	i := strings.Index(raw, idleMarkPrefix)
	if i < 0 || !strings.HasSuffix(raw, ")") {
		return raw, 0, false, noDropIn
	}
	w, ok = parseWeightText(raw[i+len(idleMarkPrefix) : len(raw)-1])
	if !ok {
		return raw[:i], 0, false, noDropIn
	}
	return raw[:i], w, true, noDropIn
}

// idleByProperty reports whether cpu.idle of a unit goes through
// CPUWeight= here: systemd is reachable and has not refused the value.
func (a *Actuator) idleByProperty(ctx context.Context, ref governor.Ref) (route, Bus, bool) {
	r := a.route(ctx, ref)
	a.mu.Lock()
	skip := a.noProp[governor.CPUIdle]
	a.mu.Unlock()
	if r.unit == "" || skip {
		return r, nil, false
	}
	b := a.getBus(ctx)
	if b == nil {
		return r, nil, false
	}
	if _, ok := b.(PropertyReader); !ok {
		return r, nil, false
	}
	return r, b, true
}

// PropertyReader reads a unit property (Bus implementations have it; a
// Bus without it keeps cpu.idle in cgroupfs).
type PropertyReader interface {
	UnitProperty(ctx context.Context, unit, unitType, name string) (interface{}, error)
}

// cpuWeightProp reads a unit's CPUWeight property.
func (a *Actuator) cpuWeightProp(ctx context.Context, b Bus, unit string) (uint64, error) {
	_, typ, _ := unitType(unit)
	cctx, cancel := callCtx(ctx)
	v, err := b.(PropertyReader).UnitProperty(cctx, unit, typ, "CPUWeight")
	cancel()
	if err != nil {
		a.dropBus(b, err)
		return 0, err
	}
	w, ok := v.(uint64)
	if !ok {
		return 0, fmt.Errorf("unit %s: CPUWeight is %T, not uint64", unit, v)
	}
	return w, nil
}

// markIdle adds the CPUWeight mark to a unit's cpu.idle Setting read from
// cgroupfs. Without systemd's answer the Setting stays plain (a restore
// then writes cgroupfs).
func (a *Actuator) markIdle(ctx context.Context, ref governor.Ref, s governor.Setting) governor.Setting {
	r, b, ok := a.idleByProperty(ctx, ref)
	if !ok {
		return s
	}
	a.mu.Lock()
	mine := a.idleSet[r.unit]
	a.mu.Unlock()
	if s.Value == 1 && mine {
		// Idle by the governor's own property (checked every tick while
		// it holds the knob): no need to ask.
		s.Raw += idleMarkPrefix + "idle)"
		return s
	}
	w, err := a.cpuWeightProp(ctx, b, r.unit)
	if err != nil {
		a.warnOnce("cpuweight:"+r.unit, "cannot read the unit's CPUWeight; a restore of its cpu.idle writes cgroupfs", "unit", r.unit, "error", err)
		return s
	}
	// A cpu.idle of 0 under CPUWeight=idle (or 1 without it) was written
	// in cgroupfs by someone: the property is not what holds it.
	if (s.Value == 1) != (w == cpuWeightIdle) {
		return s
	}
	if w != cpuWeightIdle {
		a.mu.Lock()
		a.idleBase[r.unit] = w
		a.mu.Unlock()
	}
	s.Raw += idleMarkPrefix + weightText(w) + ")"
	if !a.hasDropIn(r.unit, "CPUWeight") {
		s.Raw += RawNoDropIn
	}
	return s
}

// idleRefused reports whether systemd refused CPUWeight=idle as a value it
// does not know (before 252: "Value specified in CPUWeight is out of
// range").
func idleRefused(err error) bool {
	de, ok := dbusErr(err)
	if !ok || de.Name != "org.freedesktop.DBus.Error.InvalidArgs" {
		return false
	}
	for _, b := range de.Body {
		if s, ok := b.(string); ok && containsFold(s, "out of range") {
			return true
		}
	}
	return false
}

// setIdle writes cpu.idle v of a unit through CPUWeight=: idle for 1; for
// 0 the weight the unit had before the governor's first cpu.idle write
// (not set, if that was not seen). Everything else, and a systemd that
// refuses idle, writes cgroupfs (direct).
func (a *Actuator) setIdle(ctx context.Context, ref governor.Ref, v int64, direct func() error) error {
	if v != 0 && v != 1 {
		return fmt.Errorf("cpu.idle %d: only 0 or 1", v)
	}
	r, b, ok := a.idleByProperty(ctx, ref)
	if !ok {
		return direct()
	}
	pre, err := a.readIdle(ctx, ref)
	if err != nil {
		return err
	}
	want := uint64(cpuWeightIdle)
	if v == 0 {
		cur, err := a.cpuWeightProp(ctx, b, r.unit)
		if err != nil {
			return a.mapErr("systemd: read CPUWeight of "+r.unit, err)
		}
		if cur != cpuWeightIdle {
			// Not idle by the property: a cpu.idle of 1 there was written
			// in cgroupfs, and is undone the same way.
			return direct()
		}
		a.mu.Lock()
		base, known := a.idleBase[r.unit]
		a.mu.Unlock()
		want = math.MaxUint64
		if known {
			want = base
		}
	}
	return a.setWeightProp(ctx, ref, r.unit, b, want, pre.Value, v, direct)
}

// setWeightProp sets CPUWeight=w and waits for cpu.idle to read v.
func (a *Actuator) setWeightProp(ctx context.Context, ref governor.Ref, unit string, b Bus, w uint64, pre, v int64, direct func() error) error {
	prop := sddbus.Property{Name: "CPUWeight", Value: godbus.MakeVariant(w)}
	cctx, cancel := callCtx(ctx)
	err := b.SetUnitProperties(cctx, unit, prop)
	cancel()
	if err != nil {
		if idleRefused(err) || unsupported(err) {
			a.mu.Lock()
			a.noProp[governor.CPUIdle] = true
			a.mu.Unlock()
			a.log.Warn("this systemd does not know CPUWeight=idle (systemd 252+): writing cpu.idle in cgroupfs, where a daemon-reload of a systemd that manages cpu.idle would undo it", "unit", unit, "error", err)
			return direct()
		}
		a.dropBus(b, err)
		return a.mapErr(fmt.Sprintf("systemd SetUnitProperties %s CPUWeight=%s", unit, weightText(w)), err)
	}
	a.mu.Lock()
	a.idleSet[unit] = w == cpuWeightIdle
	a.mu.Unlock()
	return a.settle(ctx, ref, governor.CPUIdle, pre, v, unit)
}

// restoreIdle puts a unit's cpu.idle back through the CPUWeight= its
// Setting's mark recorded; a Setting without a mark is written in cgroupfs.
func (a *Actuator) restoreIdle(ctx context.Context, ref governor.Ref, s governor.Setting) error {
	content, w, marked, noDropIn := cutIdleMark(s.Raw)
	plain := governor.Setting{Value: s.Value, Raw: content}
	direct := func() error { return a.fs.Restore(ctx, ref, governor.CPUIdle, plain) }
	if !marked || (s.Value == 1) != (w == cpuWeightIdle) {
		return direct()
	}
	r, b, ok := a.idleByProperty(ctx, ref)
	if !ok {
		return direct()
	}
	pre, err := a.readIdle(ctx, ref)
	if err != nil {
		return err
	}
	if err := a.setWeightProp(ctx, ref, r.unit, b, w, pre.Value, s.Value, direct); err != nil {
		return err
	}
	if noDropIn {
		a.removeDropIn(r.unit, "CPUWeight", dropInValue(w))
	}
	return nil
}

// readIdle reads cpu.idle from cgroupfs; while the cpu controller is off
// for the cgroup (no file) and systemd turns it on with CPUWeight=idle,
// that is the kernel's default, 0.
func (a *Actuator) readIdle(ctx context.Context, ref governor.Ref) (governor.Setting, error) {
	s, err := a.fs.Read(ctx, ref, governor.CPUIdle)
	if errors.Is(err, governor.ErrUnsupported) && a.EnablesController(idlePseudo) {
		return governor.Setting{Value: 0, Raw: "0"}, nil
	}
	return s, err
}

// idlePseudo is what EnablesController is asked for cpu.idle: whether
// systemd enables cpu for CPUWeight=idle (systemd 252+).
const idlePseudo = "cpu.idle"

// Versioner reports systemd's version (Bus implementations have it).
type Versioner interface {
	SystemdVersion(ctx context.Context) (int, error)
}

// firstIdleVersion is the first systemd that knows CPUWeight=idle and
// writes cpu.idle.
const firstIdleVersion = 252

// knowsIdle reports whether this systemd takes CPUWeight=idle: its version
// (asked once), and no refusal since.
func (a *Actuator) knowsIdle() bool {
	a.mu.Lock()
	refused, ver := a.noProp[governor.CPUIdle], a.version
	a.mu.Unlock()
	if refused {
		return false
	}
	if ver == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b := a.getBus(ctx)
		v, ok := b.(Versioner)
		if b == nil || !ok {
			return false
		}
		n, err := v.SystemdVersion(ctx)
		if err != nil {
			a.warnOnce("version", "cannot ask systemd for its version; cpu.idle needs the cpu controller enabled when the governor starts", "error", err)
			return false
		}
		a.mu.Lock()
		a.version, ver = n, n
		a.mu.Unlock()
	}
	return ver >= firstIdleVersion
}

// parseSystemdVersion reads the leading number of systemd's Version
// property ("252.39-1~deb12u2", "257.13-1~deb13u1", "v255").
func parseSystemdVersion(s string) (int, error) {
	s = strings.TrimPrefix(strings.Trim(strings.TrimSpace(s), `"`), "v")
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("systemd version %q: no leading number", s)
	}
	return n, nil
}
