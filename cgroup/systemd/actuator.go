// Package systemd is a governor.Actuator for hosts run by systemd. systemd
// owns the cgroups it creates for units and rewrites their attributes from
// the unit's configuration on daemon-reload, so for those cgroups limits go
// through systemd's D-Bus API as runtime unit properties (SetUnitProperties
// with runtime=true, which daemon-reload keeps); freezing and killing use
// FreezeUnit/ThawUnit and KillUnit. Everything else — cgroups that are not
// units, cgroups inside a subtree delegated to someone (Delegate=yes),
// hosts without systemd or without a reachable bus — is written directly
// in cgroupfs by the wrapped actuator, as is memory.reclaim (stateless)
// and every read.
//
// A cgroup is a unit's when its last path element ends in .service, .scope
// or .slice and systemd reports exactly that cgroup as the unit's
// ControlGroup; the answer is cached per cgroup id.
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
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
)

// Where an operation goes, as reported by Via.
const (
	ViaSystemd  = "systemd"
	ViaCgroupfs = "cgroupfs"
)

// DefaultCallTimeout bounds each D-Bus call when the context has no earlier
// deadline.
const DefaultCallTimeout = 5 * time.Second

// settleTimeout bounds the wait for systemd to apply a property to
// cgroupfs after SetUnitProperties returned.
const settleTimeout = 2 * time.Second

// redialEvery spaces attempts to reach systemd after a failure.
const redialEvery = 30 * time.Second

// Options configure an Actuator.
type Options struct {
	Logger hclog.Logger
	// Dial connects to systemd; nil means Dial (this package's). It is not
	// called at all when Booted is false.
	Dial func(ctx context.Context) (Bus, error)
	// Booted says whether systemd runs this host; nil means Booted().
	Booted func() bool
	// RunDir is systemd's runtime directory, where its runtime drop-ins
	// live (system.control/, transient/); "" means /run/systemd.
	RunDir string
}

// Actuator implements governor.Actuator: systemd's D-Bus API for unit
// cgroups, the wrapped cgroupfs actuator for everything else.
type Actuator struct {
	fs   governor.Actuator
	root string
	log  hclog.Logger
	dial func(ctx context.Context) (Bus, error)
	sd   bool // systemd runs this host
	run  string

	mu       sync.Mutex
	bus      Bus
	nextDial time.Time
	routes   map[governor.CgroupID]route
	noProp   map[governor.Knob]bool // systemd here does not know the property
	// idleBase: per unit, its CPUWeight property as last read while not
	// idle, which cpu.idle 0 gives back (idle.go); idleSet: units the
	// governor set CPUWeight=idle on.
	idleBase map[string]uint64
	idleSet  map[string]bool
	version  int // systemd's, once asked (knowsIdle)
	noFreeze bool
	warned   map[string]bool
	// removed counts runtime drop-ins deleted by restores of unset
	// properties: Close has systemd reload once so its view matches.
	removed int
}

type route struct {
	path string
	unit string // "" → cgroupfs
}

// New wraps fs (normally cgroup.NewActuator(root, log)), the actuator for
// the cgroup2 hierarchy mounted at root. It does no I/O.
func New(root string, fs governor.Actuator, opts Options) *Actuator {
	a := &Actuator{fs: fs, root: root, log: opts.Logger, dial: opts.Dial,
		routes: make(map[governor.CgroupID]route), noProp: make(map[governor.Knob]bool), warned: make(map[string]bool),
		idleBase: make(map[string]uint64), idleSet: make(map[string]bool)}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	if a.dial == nil {
		a.dial = Dial
	}
	booted := opts.Booted
	if booted == nil {
		booted = Booted
	}
	a.sd = booted()
	a.run = opts.RunDir
	if a.run == "" {
		a.run = "/run/systemd"
	}
	return a
}

// NewDefault is New with the cgroupfs actuator for root.
func NewDefault(root string, log hclog.Logger) *Actuator {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return New(root, cgroup.NewActuator(root, log), Options{Logger: log})
}

var _ governor.Actuator = (*Actuator)(nil)

// Close drops the D-Bus connection. If restores removed runtime drop-ins,
// systemd reloads first so that its units list no drop-in that is gone
// (systemctl show would say NeedDaemonReload=yes otherwise).
func (a *Actuator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.removed > 0 && a.bus != nil {
		if r, ok := a.bus.(Reloader); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := r.Reload(ctx); err != nil {
				a.log.Warn("systemd daemon-reload after removing runtime drop-ins failed; systemctl shows NeedDaemonReload=yes for those units until the next one", "error", err)
			} else {
				a.log.Info("systemd reloaded: runtime drop-ins of properties that were unset before are gone", "drop_ins", a.removed)
			}
			cancel()
		}
		a.removed = 0
	}
	if a.bus != nil {
		a.bus.Close()
		a.bus = nil
	}
	return nil
}

func (a *Actuator) warnOnce(key, msg string, args ...interface{}) {
	a.mu.Lock()
	seen := a.warned[key]
	a.warned[key] = true
	a.mu.Unlock()
	if !seen {
		a.log.Warn(msg, args...)
	}
}

// unitType maps a cgroup's last path element to a unit name and its D-Bus
// interface suffix; ok is false for names that cannot be units.
func unitType(p string) (unit, typ string, ok bool) {
	name := p[strings.LastIndexByte(p, '/')+1:]
	for suf, t := range map[string]string{".service": "Service", ".scope": "Scope", ".slice": "Slice"} {
		if strings.HasSuffix(name, suf) && len(name) > len(suf) {
			return name, t, true
		}
	}
	return "", "", false
}

func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultCallTimeout)
}

// getBus returns a connection, dialling if needed (at most every
// redialEvery after a failure); nil when systemd cannot be reached.
func (a *Actuator) getBus(ctx context.Context) Bus {
	if !a.sd {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bus != nil {
		return a.bus
	}
	if time.Now().Before(a.nextDial) {
		return nil
	}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	b, err := a.dial(cctx)
	if err != nil {
		a.nextDial = time.Now().Add(redialEvery)
		a.log.Warn("cannot reach systemd over D-Bus; writing cgroupfs directly for now (systemd may undo those writes on daemon-reload)", "error", err)
		return nil
	}
	a.log.Info("connected to systemd: limits of unit cgroups go through its D-Bus API")
	a.bus = b
	return b
}

// dropBus forgets a connection after a transport error.
func (a *Actuator) dropBus(b Bus, err error) {
	if _, ok := dbusErr(err); ok || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return // systemd answered (or was slow): the connection is fine
	}
	a.mu.Lock()
	if a.bus == b {
		a.bus.Close()
		a.bus = nil
	}
	a.mu.Unlock()
}

// route decides, once per cgroup, whether it is a systemd unit's.
func (a *Actuator) route(ctx context.Context, ref governor.Ref) route {
	a.mu.Lock()
	r, ok := a.routes[ref.ID]
	a.mu.Unlock()
	if ok && r.path == ref.Path {
		return r
	}
	r = route{path: ref.Path}
	unit, typ, isUnit := unitType(ref.Path)
	if !isUnit {
		return a.remember(ref, r)
	}
	b := a.getBus(ctx)
	if b == nil {
		return r // not cached: try again once systemd is reachable
	}
	cctx, cancel := callCtx(ctx)
	cg, err := b.ControlGroup(cctx, unit, typ)
	cancel()
	if err != nil {
		a.dropBus(b, err)
		a.warnOnce("route:"+ref.Path, "cannot ask systemd about unit; writing cgroupfs directly", "unit", unit, "error", err)
		return r
	}
	if cg == "/"+ref.Path {
		r.unit = unit
		a.log.Debug("cgroup belongs to a systemd unit: its limits go through systemd", "cgroup", ref.String(), "unit", unit)
	} else {
		a.log.Debug("cgroup is not a systemd unit's (delegated subtree or foreign): writing cgroupfs", "cgroup", ref.String(), "unit", unit, "unit_cgroup", cg)
	}
	return a.remember(ref, r)
}

func (a *Actuator) remember(ref governor.Ref, r route) route {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.routes) > 65536 {
		a.routes = make(map[governor.CgroupID]route)
	}
	a.routes[ref.ID] = r
	return r
}

// Via tells whether limits of the cgroup go through systemd or cgroupfs.
func (a *Actuator) Via(ref governor.Ref) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if a.route(ctx, ref).unit != "" {
		return ViaSystemd
	}
	return ViaCgroupfs
}

// property maps a knob value to its systemd unit property.
func property(k governor.Knob, v int64) (sddbus.Property, bool) {
	u := uint64(v)
	if v == governor.Unlimited {
		u = math.MaxUint64
	}
	var name string
	switch k {
	case governor.MemoryHigh:
		name = "MemoryHigh"
	case governor.MemoryMax:
		name = "MemoryMax"
	case governor.MemoryLow:
		name = "MemoryLow"
	case governor.MemoryMin:
		name = "MemoryMin"
	case governor.CPUWeight:
		name = "CPUWeight"
	case governor.CPUMax:
		// cpu.max values are millionths of a CPU: microseconds of quota
		// per second, which is what CPUQuotaPerSecUSec holds.
		name = "CPUQuotaPerSecUSec"
	case governor.IOWeight:
		name = "IOWeight"
	default:
		return sddbus.Property{}, false // cpu.idle: CPUWeight=idle, see idle.go
	}
	return sddbus.Property{Name: name, Value: godbus.MakeVariant(u)}, true
}

func validate(k governor.Knob, v int64) error {
	switch k {
	case governor.MemoryHigh, governor.MemoryMax, governor.MemoryLow, governor.MemoryMin:
		if v < 0 {
			return fmt.Errorf("negative value %d", v)
		}
	case governor.CPUWeight, governor.IOWeight:
		if v < 1 || v > 10000 {
			return fmt.Errorf("weight %d out of range 1..10000", v)
		}
	case governor.CPUMax:
		if v <= 0 {
			return fmt.Errorf("quota %d must be positive", v)
		}
	}
	return nil
}

// Markers in a Setting's Raw (what a restore gets back) for unit knobs
// whose value did not come from a runtime property, so that a restore
// leaves systemd's state as it was instead of adding a property:
//   - RawUnset: the knob's file was missing because no unit on the path asked
//     systemd for its controller (cpu, io); Value is the kernel's default.
//     Restore resets the property to "not set", which turns the controller
//     off again where nothing else needs it.
//   - a value followed by RawNoDropIn: the unit had no runtime drop-in for
//     the property (the value is the unit file's or the default). Restore
//     sets the value back, then removes the drop-in systemd wrote for it.
const (
	RawUnset    = "unset"
	RawNoDropIn = " (no runtime property)"
)

// Read implements governor.Actuator: always cgroupfs. For a unit's knob,
// Raw carries RawUnset or RawNoDropIn when its value does not come from a
// runtime property (see those); a Write then asks systemd for the property,
// which also enables a controller that was off.
func (a *Actuator) Read(ctx context.Context, ref governor.Ref, k governor.Knob) (governor.Setting, error) {
	s, err := a.fs.Read(ctx, ref, k)
	if err != nil && !errors.Is(err, governor.ErrUnsupported) {
		return s, err
	}
	if k == governor.CPUIdle && a.sd {
		if err != nil {
			// No file: the cpu controller is off here. Where systemd
			// turns it on for CPUWeight=idle, a unit reads as the
			// kernel's default and its unset CPUWeight.
			if a.EnablesController(idlePseudo) && a.route(ctx, ref).unit != "" {
				return a.markIdle(ctx, ref, governor.Setting{Value: 0, Raw: "0"}), nil
			}
			return s, err
		}
		return a.markIdle(ctx, ref, s), nil
	}
	if _, ok := property(k, 0); !ok || !a.sd {
		return s, err
	}
	if err != nil {
		def, ok := unsetDefault(k)
		if !ok || !a.EnablesController(k.Controller()) || a.route(ctx, ref).unit == "" {
			return s, err
		}
		return governor.Setting{Value: def, Raw: RawUnset}, nil
	}
	r := a.route(ctx, ref)
	if r.unit == "" {
		return s, nil
	}
	if _, name := resetProperty(k); !a.hasDropIn(r.unit, name) {
		s.Raw += RawNoDropIn
	}
	return s, nil
}

// unsetDefault is what the kernel applies for a cpu or io knob while the
// controller is off (and right after it is turned on).
func unsetDefault(k governor.Knob) (int64, bool) {
	switch k {
	case governor.CPUWeight, governor.IOWeight:
		return 100, true
	case governor.CPUMax:
		return governor.Unlimited, true
	}
	return 0, false
}

// EnablesController implements governor.ControllerEnabler: on a systemd
// host, a unit property for cpu or io (CPUWeight=, CPUQuota=, IOWeight=)
// makes systemd enable that controller from the root down to the unit, if
// the kernel has it.
//
// Asked for "cpu.idle" (not a controller), it reports whether systemd
// enables cpu for a unit's cpu.idle too: it does for CPUWeight=idle, which
// systemd 252 and later know (idle.go).
func (a *Actuator) EnablesController(ctl string) bool {
	if ctl == idlePseudo {
		return a.EnablesController("cpu") && a.knowsIdle()
	}
	if !a.sd || (ctl != "cpu" && ctl != "io") {
		return false
	}
	b, err := os.ReadFile(filepath.Join(a.root, "cgroup.controllers"))
	if err != nil {
		return false
	}
	for _, c := range strings.Fields(string(b)) {
		if c == ctl {
			return true
		}
	}
	return false
}

var _ governor.ControllerEnabler = (*Actuator)(nil)

// Write implements governor.Actuator.
func (a *Actuator) Write(ctx context.Context, ref governor.Ref, k governor.Knob, v int64) error {
	if k == governor.CPUIdle {
		return a.setIdle(ctx, ref, v, func() error { return a.fs.Write(ctx, ref, k, v) })
	}
	if k == governor.CPUMax {
		v = wholePercentQuota(v)
	}
	return a.set(ctx, ref, k, v, func() error { return a.fs.Write(ctx, ref, k, v) })
}

// wholePercentQuota rounds a cpu.max quota (millionths of a CPU) to whole
// percent of a CPU. systemd keeps CPUQuota= in its runtime drop-in as a
// percentage — systemd 247 in whole percent — and writes that back on
// daemon-reload: a quota it cannot represent would read back changed
// (84.4 % written, 84 % after a reload), the loop would take it for
// someone else's change, hand it back and never restore it. Rounded, what
// systemd re-applies is what the governor wrote. Only the governor's own
// writes are rounded; a restore puts back the original exactly.
func wholePercentQuota(v int64) int64 {
	const pct = 10000 // 1 % of a CPU per second, in µs
	if v == governor.Unlimited || v <= 0 {
		return v
	}
	return max(pct, (v+pct/2)/pct*pct)
}

// Restore implements governor.Actuator: for a unit, SetUnitProperties with
// the original value (s.Value, parsed from the cgroupfs content). An
// original that was unset (empty Raw, see Read) is reset instead: the
// property goes back to "not set", so systemd turns the controller off
// again where no other unit needs it, and the runtime drop-in systemd wrote
// for it is removed, leaving systemd's state as it was before.
func (a *Actuator) Restore(ctx context.Context, ref governor.Ref, k governor.Knob, s governor.Setting) error {
	if k == governor.CPUIdle {
		return a.restoreIdle(ctx, ref, s)
	}
	if s.Raw == RawUnset {
		if _, ok := unsetDefault(k); ok {
			return a.reset(ctx, ref, k, s)
		}
		s.Raw = k.FormatValue(s.Value)
	}
	raw, noDropIn := strings.CutSuffix(s.Raw, RawNoDropIn)
	s.Raw = raw
	if err := a.set(ctx, ref, k, s.Value, func() error { return a.fs.Restore(ctx, ref, k, s) }); err != nil {
		return err
	}
	if noDropIn {
		if r := a.route(ctx, ref); r.unit != "" {
			_, name := resetProperty(k)
			v := fmt.Sprint(s.Value)
			if s.Value == governor.Unlimited {
				v = "infinity"
			}
			a.removeDropIn(r.unit, name, v)
		}
	}
	return nil
}

// resetProperty is the D-Bus property that clears a knob's unit setting
// (UINT64_MAX is systemd's "not set" for weights and "no quota" for
// CPUQuotaPerSecUSec) and the name of the drop-in systemd writes for it.
func resetProperty(k governor.Knob) (sddbus.Property, string) {
	p, _ := property(k, governor.Unlimited)
	name := p.Name
	if k == governor.CPUMax {
		name = "CPUQuota"
	}
	return p, name
}

func (a *Actuator) reset(ctx context.Context, ref governor.Ref, k governor.Knob, s governor.Setting) error {
	r := a.route(ctx, ref)
	b := a.getBus(ctx)
	if r.unit == "" || b == nil {
		// Not a unit (or systemd gone): the kernel default is the best
		// restore there is.
		return a.fs.Restore(ctx, ref, k, governor.Setting{Value: s.Value, Raw: k.FormatValue(s.Value)})
	}
	prop, name := resetProperty(k)
	cctx, cancel := callCtx(ctx)
	err := b.SetUnitProperties(cctx, r.unit, prop)
	cancel()
	if err != nil {
		a.dropBus(b, err)
		return a.mapErr(fmt.Sprintf("systemd SetUnitProperties %s %s= (reset)", r.unit, name), err)
	}
	a.removeDropIn(r.unit, name, "")
	return nil
}

// dropInDirs are the runtime directories where systemd keeps properties set
// at runtime: system.control for units with files, transient for
// transient units (systemd-run).
var dropInDirs = []string{"system.control", "transient"}

// hasDropIn reports whether a runtime drop-in for property name of unit
// exists.
func (a *Actuator) hasDropIn(unit, name string) bool {
	for _, dir := range dropInDirs {
		if _, err := os.Stat(filepath.Join(a.run, dir, unit+".d", "50-"+name+".conf")); err == nil {
			return true
		}
	}
	return false
}

// removeDropIn deletes the runtime drop-in systemd wrote for property name
// of unit, but only when it says exactly what the governor just set
// ("Name=value", value as systemd writes it: bytes or a weight in decimal,
// "infinity", "" for a reset), and the unit's drop-in directory if
// that leaves it empty. Close has systemd reload afterwards.
func (a *Actuator) removeDropIn(unit, name, value string) {
	for _, dir := range dropInDirs {
		d := filepath.Join(a.run, dir, unit+".d")
		f := filepath.Join(d, "50-"+name+".conf")
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if !onlySetting(string(b), name, value) {
			a.log.Warn("runtime drop-in holds more than the restored property; leaving it", "file", f)
			continue
		}
		if err := os.Remove(f); err != nil {
			a.log.Warn("cannot remove runtime drop-in of a restored property", "file", f, "error", err)
			continue
		}
		os.Remove(d) // only succeeds when empty
		a.mu.Lock()
		a.removed++
		a.mu.Unlock()
		a.log.Debug("removed runtime drop-in of a property the unit did not have before", "unit", unit, "file", f)
	}
}

// onlySetting reports whether a drop-in's only setting is "name=value".
// CPUQuota's value is not compared (systemd writes it as a percentage).
func onlySetting(content, name, value string) bool {
	found := false
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[':
		case strings.HasPrefix(line, name+"="):
			v := strings.TrimPrefix(line, name+"=")
			if v != value && name != "CPUQuota" {
				return false
			}
			found = true
		default:
			return false
		}
	}
	return found
}

func (a *Actuator) set(ctx context.Context, ref governor.Ref, k governor.Knob, v int64, direct func() error) error {
	r := a.route(ctx, ref)
	prop, ok := property(k, v)
	a.mu.Lock()
	skip := a.noProp[k]
	a.mu.Unlock()
	if r.unit == "" || !ok || skip {
		return direct()
	}
	if err := validate(k, v); err != nil {
		return fmt.Errorf("set %s of unit %s: %w", k, r.unit, err)
	}
	pre, err := a.fs.Read(ctx, ref, k)
	if err != nil {
		// The controller is off for this unit (see Read): systemd turns
		// it on with the property; until then the kernel default holds.
		def, ok := unsetDefault(k)
		if !errors.Is(err, governor.ErrUnsupported) || !ok || !a.EnablesController(k.Controller()) {
			return err
		}
		pre = governor.Setting{Value: def}
	}
	b := a.getBus(ctx)
	if b == nil {
		a.warnOnce("nobus:"+ref.Path, "systemd unreachable: writing a unit's cgroup directly; systemd may undo it on daemon-reload", "cgroup", ref.String(), "unit", r.unit)
		return direct()
	}
	cctx, cancel := callCtx(ctx)
	err = b.SetUnitProperties(cctx, r.unit, prop)
	cancel()
	if err != nil {
		if unsupported(err) {
			a.mu.Lock()
			a.noProp[k] = true
			a.mu.Unlock()
			a.log.Warn("this systemd does not know the unit property; writing cgroupfs directly", "property", prop.Name, "knob", k.String(), "error", err)
			return direct()
		}
		a.dropBus(b, err)
		return a.mapErr(fmt.Sprintf("systemd SetUnitProperties %s %s=%s", r.unit, prop.Name, k.FormatValue(v)), err)
	}
	return a.settle(ctx, ref, k, pre.Value, v, r.unit)
}

func (a *Actuator) mapErr(op string, err error) error {
	if de, ok := dbusErr(err); ok && (de.Name == "org.freedesktop.systemd1.NoSuchUnit" || de.Name == "org.freedesktop.DBus.Error.UnknownObject") {
		return fmt.Errorf("%s: %w: %w", op, governor.ErrGone, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", op, governor.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// same reports whether the kernel shows want for a knob once it has applied
// it: memory limits are rounded down to pages and cpu.max to whole
// microseconds of quota per period (at least 1 ms).
func same(k governor.Knob, got, want int64) bool {
	if got == want {
		return true
	}
	if got == governor.Unlimited || want == governor.Unlimited {
		return false
	}
	switch k {
	case governor.MemoryHigh, governor.MemoryMax, governor.MemoryLow, governor.MemoryMin:
		page := int64(os.Getpagesize())
		return got/page == want/page
	case governor.CPUMax:
		d := got - want
		if d < 0 {
			d = -d
		}
		return d <= 10000 || d <= want/100
	}
	return false
}

// settle waits until cgroupfs shows what systemd was asked to set:
// SetUnitProperties returns before systemd has necessarily written the
// cgroup, and the loop reads the knob back right after a write. A timeout is
// governor.ErrTimeout (the loop then checks on its next tick which value
// holds).
func (a *Actuator) settle(ctx context.Context, ref governor.Ref, k governor.Knob, pre, want int64, unit string) error {
	if same(k, pre, want) {
		return nil
	}
	limit := settleTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = time.Until(dl)
	}
	end := time.Now().Add(limit)
	wait := time.Millisecond
	for {
		s, err := a.fs.Read(ctx, ref, k)
		if errors.Is(err, governor.ErrUnsupported) {
			if k == governor.CPUIdle && want == 0 {
				// A reset CPUWeight= can leave no unit that needs cpu
				// there: systemd turns it off, and no file is 0.
				return nil
			}
			// systemd has not turned the controller on yet.
			s, err = governor.Setting{Value: pre, Raw: "(no " + k.String() + " yet)"}, nil
		}
		if err != nil {
			return err
		}
		if s.Value != pre || same(k, s.Value, want) {
			return nil
		}
		if time.Now().Add(wait).After(end) {
			return fmt.Errorf("systemd accepted %s for unit %s but %s still reads %s: %w", k.FormatValue(want), unit, k, s.Raw, governor.ErrTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for systemd to apply %s to unit %s: %w: %w", k, unit, governor.ErrTimeout, ctx.Err())
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// FreezeState implements governor.FreezeReader: systemd's FreezeUnit
// writes cgroup.freeze too, so the file tells either way.
func (a *Actuator) FreezeState(ctx context.Context, ref governor.Ref) (bool, error) {
	fr, ok := a.fs.(governor.FreezeReader)
	if !ok {
		return false, governor.ErrUnsupported
	}
	return fr.FreezeState(ctx, ref)
}

// Reclaim implements governor.Actuator: memory.reclaim is stateless and
// always written in cgroupfs.
func (a *Actuator) Reclaim(ctx context.Context, ref governor.Ref, bytes int64) error {
	return a.fs.Reclaim(ctx, ref, bytes)
}

// ReadMemory implements governor.MemoryReader through the cgroupfs
// actuator (reads never go through systemd).
func (a *Actuator) ReadMemory(ctx context.Context, ref governor.Ref) (governor.MemoryState, error) {
	mr, ok := a.fs.(governor.MemoryReader)
	if !ok {
		return governor.MemoryState{}, fmt.Errorf("read memory of %s: %w", ref.String(), governor.ErrUnsupported)
	}
	return mr.ReadMemory(ctx, ref)
}

// Freeze implements governor.Actuator: FreezeUnit/ThawUnit for units (then
// it waits for cgroup.events to confirm), cgroup.freeze otherwise.
func (a *Actuator) Freeze(ctx context.Context, ref governor.Ref, frozen bool) error {
	r := a.route(ctx, ref)
	a.mu.Lock()
	skip := a.noFreeze
	a.mu.Unlock()
	if r.unit == "" || skip {
		return a.fs.Freeze(ctx, ref, frozen)
	}
	b := a.getBus(ctx)
	if b == nil {
		return a.fs.Freeze(ctx, ref, frozen)
	}
	cctx, cancel := callCtx(ctx)
	var err error
	op := "FreezeUnit"
	if frozen {
		err = b.FreezeUnit(cctx, r.unit)
	} else {
		op = "ThawUnit"
		err = b.ThawUnit(cctx, r.unit)
	}
	cancel()
	if err != nil {
		if unsupported(err) {
			a.mu.Lock()
			a.noFreeze = true
			a.mu.Unlock()
			a.log.Warn("this systemd cannot freeze units; writing cgroup.freeze directly", "error", err)
			return a.fs.Freeze(ctx, ref, frozen)
		}
		if _, answered := dbusErr(err); answered && !frozen {
			// systemd refuses to thaw a unit it does not consider frozen
			// or active (e.g. one just killed): thawing must not get
			// stuck on that, so write cgroup.freeze itself.
			a.log.Debug("systemd did not thaw the unit; writing cgroup.freeze", "unit", r.unit, "error", err)
			return a.fs.Freeze(ctx, ref, false)
		}
		a.dropBus(b, err)
		return a.mapErr("systemd "+op+" "+r.unit, err)
	}
	return a.waitFrozen(ctx, ref, frozen, r.unit)
}

// waitFrozen polls cgroup.events until "frozen" matches.
func (a *Actuator) waitFrozen(ctx context.Context, ref governor.Ref, frozen bool, unit string) error {
	dir, err := cgroup.Resolve(a.root, ref.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("freeze unit %s: %w", unit, governor.ErrGone)
		}
		return err
	}
	limit := cgroup.DefaultFreezeTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = time.Until(dl)
	}
	end := time.Now().Add(limit)
	wait := time.Millisecond
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
				return fmt.Errorf("freeze unit %s: %w", unit, governor.ErrGone)
			}
			return err
		}
		ev, err := cgroup.ParseEvents(b)
		if err != nil {
			return fmt.Errorf("freeze unit %s: %w", unit, err)
		}
		if ev.Frozen == frozen {
			return nil
		}
		if time.Now().Add(wait).After(end) {
			return fmt.Errorf("systemd froze/thawed unit %s but cgroup.events does not show frozen=%v: %w", unit, frozen, governor.ErrTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("freeze unit %s: %w: %w", unit, governor.ErrTimeout, ctx.Err())
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// Kill implements governor.Actuator: KillUnit(unit, "all", SIGKILL) for
// units, cgroup.kill otherwise.
func (a *Actuator) Kill(ctx context.Context, ref governor.Ref) error {
	r := a.route(ctx, ref)
	if r.unit == "" {
		return a.fs.Kill(ctx, ref)
	}
	b := a.getBus(ctx)
	if b == nil {
		return a.fs.Kill(ctx, ref)
	}
	cctx, cancel := callCtx(ctx)
	err := b.KillUnit(cctx, r.unit, int32(syscall.SIGKILL))
	cancel()
	if err != nil {
		a.dropBus(b, err)
		return a.mapErr("systemd KillUnit "+r.unit, err)
	}
	return nil
}
