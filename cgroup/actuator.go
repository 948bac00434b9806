package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// DefaultWriteTimeout bounds an Actuator write when neither the Actuator's
// WriteTimeout nor an earlier context deadline says otherwise.
const DefaultWriteTimeout = 2 * time.Second

// DefaultFreezeTimeout bounds the wait for cgroup.events to confirm a freeze
// or thaw.
const DefaultFreezeTimeout = 5 * time.Second

// Actuator implements governor.Actuator with direct cgroupfs writes beneath
// a root. Every path is resolved beneath the root without following
// symlinks, and every write runs on its own goroutine bounded by the
// context deadline or WriteTimeout, whichever is earlier: a write that does
// not finish in time yields governor.ErrTimeout while the goroutine finishes
// (and closes its file) whenever the kernel returns. While such a write is
// still in flight, further writes to the same file fail at once with
// ErrTimeout, so stuck writes cannot pile up goroutines or descriptors.
//
// The Actuator refuses to change the root cgroup.
type Actuator struct {
	// WriteTimeout bounds each write; zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// FreezeTimeout bounds Freeze's wait for cgroup.events; zero means
	// DefaultFreezeTimeout.
	FreezeTimeout time.Duration
	// ProcSwaps is the host's list of swap devices read by ReadMemory;
	// empty means DefaultProcSwaps.
	ProcSwaps string
	// ZswapEnabled is the kernel's zswap switch read by Reclaim; empty
	// means DefaultZswapEnabled.
	ZswapEnabled string

	root string
	log  hclog.Logger
	// open opens name inside the cgroup rel; tests replace it to simulate
	// EAGAIN, blocking writes and vanishing cgroups.
	open func(rel, name string, flags int) (file, error)

	mu       sync.Mutex
	inflight map[string]bool
	// swappiness: whether memory.reclaim takes swappiness= (probed).
	swappiness atomic.Int32
}

// file is what the Actuator needs from an open cgroupfs file.
type file interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Close() error
}

// NewActuator returns an Actuator for the hierarchy at root. log may be nil.
// It does no I/O.
func NewActuator(root string, log hclog.Logger) *Actuator {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a := &Actuator{root: root, log: log, inflight: make(map[string]bool)}
	a.open = a.openFile
	return a
}

var _ governor.Actuator = (*Actuator)(nil)

// fdFile is a raw descriptor: plain syscalls, no netpoller.
type fdFile int

func (f fdFile) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (f fdFile) Write(b []byte) (int, error) {
	for {
		n, err := unix.Write(int(f), b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (f fdFile) Close() error { return unix.Close(int(f)) }

func (a *Actuator) openFile(rel, name string, flags int) (file, error) {
	p := name
	if rel != "" {
		p = rel + "/" + name
	}
	fd, err := openBeneath(a.root, p, flags)
	if err != nil {
		return nil, err
	}
	return fdFile(fd), nil
}

func (a *Actuator) path(cg governor.Ref, name string) string {
	return filepath.Join(a.root, cg.Path, name)
}

// mapErr turns a syscall error on cgroup file name into the governor error
// kinds, naming the full path: ENOENT/ENODEV on a removed cgroup →
// ErrGone; ENOENT while the cgroup still exists → ErrUnsupported (the
// controller is not enabled there or the kernel lacks the file).
func (a *Actuator) mapErr(op string, cg governor.Ref, name string, err error) error {
	if err == nil || errors.Is(err, ErrBadPath) || errors.Is(err, governor.ErrTimeout) {
		return err
	}
	p := a.path(cg, name)
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("%s %s: %w", op, p, err)
	}
	switch errno {
	case unix.ENODEV:
		return fmt.Errorf("%s %s: %w: %w", op, p, governor.ErrGone, errno)
	case unix.ENOENT:
		if _, rerr := Resolve(a.root, cg.Path); rerr == nil {
			return fmt.Errorf("%s %s: %w: %w", op, p, governor.ErrUnsupported, errno)
		}
		return fmt.Errorf("%s %s: %w: %w", op, p, governor.ErrGone, errno)
	case unix.EACCES:
		if uid, ok := a.owner(cg, name); ok && int(uid) != os.Geteuid() {
			return fmt.Errorf("%s %s: %w (the file belongs to uid %d: a subtree delegated to that user, which takes CAP_DAC_OVERRIDE to write and the shipped unit does not grant; govern the unit that delegates it instead, e.g. its user@.service through systemd)", op, p, errno, uid)
		}
	}
	return fmt.Errorf("%s %s: %w", op, p, errno)
}

// owner returns the uid that owns a cgroup's file.
func (a *Actuator) owner(cg governor.Ref, name string) (uint32, bool) {
	dir, err := Resolve(a.root, cg.Path)
	if err != nil {
		return 0, false
	}
	var st unix.Stat_t
	if unix.Lstat(filepath.Join(dir, name), &st) != nil {
		return 0, false
	}
	return st.Uid, true
}

// deadline is the earlier of ctx's deadline and now+d.
func deadline(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			return left
		}
	}
	return d
}

func (a *Actuator) writeTimeout() time.Duration {
	if a.WriteTimeout > 0 {
		return a.WriteTimeout
	}
	return DefaultWriteTimeout
}

// bounded runs do on its own goroutine and waits for it at most until the
// write deadline. key serialises operations on one file: while an earlier
// one is still running, bounded fails at once.
func (a *Actuator) bounded(ctx context.Context, cg governor.Ref, name string, do func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write %s: not started: %w", a.path(cg, name), err)
	}
	key := cg.Path + "\x00" + name
	a.mu.Lock()
	if a.inflight[key] {
		a.mu.Unlock()
		return fmt.Errorf("write %s: %w: %w", a.path(cg, name), governor.ErrTimeout, governor.ErrInProgress)
	}
	a.inflight[key] = true
	a.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		err := do()
		a.mu.Lock()
		delete(a.inflight, key)
		a.mu.Unlock()
		done <- err
	}()
	t := time.NewTimer(deadline(ctx, a.writeTimeout()))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	case <-ctx.Done():
	}
	a.log.Warn("cgroup write did not finish in time; it continues in the background", "path", a.path(cg, name))
	return fmt.Errorf("write %s: %w", a.path(cg, name), governor.ErrTimeout)
}

// writeFile writes data to the cgroup's file name on a bounded goroutine.
// nonblock opens with O_NONBLOCK (memory.high/max: newer kernels then skip
// synchronous reclaim). EAGAIN is returned as is (wrapped) for the caller
// to judge.
func (a *Actuator) writeFile(ctx context.Context, cg governor.Ref, name, data string, nonblock bool) error {
	if err := checkRel(cg.Path); err != nil {
		return err
	}
	// O_TRUNC is harmless on cgroupfs and keeps fixture files exact.
	flags := unix.O_WRONLY | unix.O_TRUNC
	if nonblock {
		flags |= unix.O_NONBLOCK
	}
	err := a.bounded(ctx, cg, name, func() error {
		f, err := a.open(cg.Path, name, flags)
		if err != nil {
			return err
		}
		_, werr := f.Write([]byte(data))
		cerr := f.Close()
		if werr != nil {
			return werr
		}
		return cerr
	})
	return a.mapErr("write", cg, name, err)
}

// readFile reads a cgroup file, trimmed.
func (a *Actuator) readFile(cg governor.Ref, name string) (string, error) {
	f, err := a.open(cg.Path, name, unix.O_RDONLY)
	if err != nil {
		return "", a.mapErr("read", cg, name, err)
	}
	defer f.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := f.Read(tmp)
		if err != nil {
			return "", a.mapErr("read", cg, name, err)
		}
		if n == 0 {
			break
		}
		buf = append(buf, tmp[:n]...)
		if len(buf) > 1<<20 {
			return "", fmt.Errorf("read %s: file too large", a.path(cg, name))
		}
	}
	return strings.TrimSpace(string(buf)), nil
}

var errRoot = errors.New("refusing to change the root cgroup")

func (a *Actuator) checkTarget(cg governor.Ref) error {
	if cg.Path == "" {
		return errRoot
	}
	return checkRel(cg.Path)
}

// Read implements governor.Actuator. Setting.Raw is the file's trimmed
// content; Value is in the knob's unit (see governor.Knob), with "max" as
// governor.Unlimited. For io.weight the value is the default weight.
func (a *Actuator) Read(ctx context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	if k >= governor.NumKnobs {
		return governor.Setting{}, fmt.Errorf("unknown knob %v", k)
	}
	if err := checkRel(cg.Path); err != nil {
		return governor.Setting{}, err
	}
	raw, err := a.readFile(cg, k.String())
	if err != nil {
		return governor.Setting{}, err
	}
	s := governor.Setting{Raw: raw}
	switch k {
	case governor.CPUMax:
		m, err := ParseCPUMax([]byte(raw))
		if err != nil {
			return s, fmt.Errorf("read %s: %w", a.path(cg, k.String()), err)
		}
		s.Value = m.Millionths()
	case governor.IOWeight:
		w, err := ParseIOWeight([]byte(raw))
		if err != nil {
			return s, fmt.Errorf("read %s: %w", a.path(cg, k.String()), err)
		}
		s.Value = w.Default
	default:
		v, err := ParseValue([]byte(raw))
		if err != nil {
			return s, fmt.Errorf("read %s: %w", a.path(cg, k.String()), err)
		}
		s.Value = v
	}
	return s, nil
}

// Write implements governor.Actuator. Memory knobs take bytes or
// governor.Unlimited ("max"); memory.high and memory.max are written with
// O_NONBLOCK. cpu.max takes millionths of a CPU, converted to a quota for
// the period currently in the file (kept), and raised to the kernel's 1 ms
// minimum quota if smaller. cpu.weight and io.weight take 1..10000,
// cpu.idle 0 or 1.
func (a *Actuator) Write(ctx context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	if err := a.checkTarget(cg); err != nil {
		return err
	}
	name := k.String()
	switch k {
	case governor.MemoryHigh, governor.MemoryMax, governor.MemoryLow, governor.MemoryMin:
		if v < 0 {
			return fmt.Errorf("write %s: negative value %d", a.path(cg, name), v)
		}
		data := "max"
		if v != governor.Unlimited {
			data = strconv.FormatInt(v, 10)
		}
		nonblock := k == governor.MemoryHigh || k == governor.MemoryMax
		return a.writeFile(ctx, cg, name, data, nonblock)
	case governor.CPUWeight:
		if v < 1 || v > 10000 {
			return fmt.Errorf("write %s: weight %d out of range 1..10000", a.path(cg, name), v)
		}
		w := uint64(v)
		return a.update(ctx, cg, name, &cgroup2.Resources{CPU: &cgroup2.CPU{Weight: &w}})
	case governor.CPUMax:
		cur, err := a.readFile(cg, name)
		if err != nil {
			return err
		}
		m, err := ParseCPUMax([]byte(cur))
		if err != nil {
			return fmt.Errorf("write %s: current value: %w", a.path(cg, name), err)
		}
		period := m.Period
		var quota *int64
		if v != governor.Unlimited {
			if v <= 0 {
				return fmt.Errorf("write %s: quota %d must be positive", a.path(cg, name), v)
			}
			q := int64(float64(v)*float64(period)/1e6 + 0.5)
			if q < 1000 {
				q = 1000 // kernel minimum: 1 ms
			}
			quota = &q
		}
		return a.update(ctx, cg, name, &cgroup2.Resources{CPU: &cgroup2.CPU{Max: cgroup2.NewCPUMax(quota, &period)}})
	case governor.CPUIdle:
		if v != 0 && v != 1 {
			return fmt.Errorf("write %s: value %d must be 0 or 1", a.path(cg, name), v)
		}
		return a.writeFile(ctx, cg, name, strconv.FormatInt(v, 10), false)
	case governor.IOWeight:
		if v < 1 || v > 10000 {
			return fmt.Errorf("write %s: weight %d out of range 1..10000", a.path(cg, name), v)
		}
		return a.writeFile(ctx, cg, name, "default "+strconv.FormatInt(v, 10), false)
	}
	return fmt.Errorf("unknown knob %v", k)
}

// update writes through containerd's cgroup2 manager, which covers
// cpu.weight and cpu.max cleanly. The cgroup is resolved beneath the root
// first (no symlinks) and the file must exist: containerd would create a
// missing file on a non-cgroupfs tree, and the absence means the controller
// is not enabled.
func (a *Actuator) update(ctx context.Context, cg governor.Ref, name string, res *cgroup2.Resources) error {
	fd, err := openBeneath(a.root, cg.Path+"/"+name, unix.O_PATH)
	if err != nil {
		return a.mapErr("write", cg, name, err)
	}
	unix.Close(fd)
	m, err := cgroup2.Load("/"+cg.Path, cgroup2.WithMountpoint(a.root))
	if err != nil {
		return fmt.Errorf("write %s: %w", a.path(cg, name), err)
	}
	err = a.bounded(ctx, cg, name, func() error { return m.Update(res) })
	return a.mapErr("write", cg, name, err)
}

// Restore implements governor.Actuator: it writes s.Raw back verbatim; for
// io.weight only its "default N" line.
func (a *Actuator) Restore(ctx context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	if err := a.checkTarget(cg); err != nil {
		return err
	}
	if k >= governor.NumKnobs {
		return fmt.Errorf("unknown knob %v", k)
	}
	data := strings.TrimSpace(s.Raw)
	if k == governor.IOWeight {
		def := ""
		for _, line := range strings.Split(data, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "default" {
				def = "default " + f[1]
			}
		}
		if def == "" {
			return fmt.Errorf("restore %s: no default line in %q", a.path(cg, k.String()), s.Raw)
		}
		data = def
	}
	if data == "" {
		return fmt.Errorf("restore %s: empty value", a.path(cg, k.String()))
	}
	nonblock := k == governor.MemoryHigh || k == governor.MemoryMax
	return a.writeFile(ctx, cg, k.String(), data, nonblock)
}

// Reclaim implements governor.Actuator by writing the byte count to
// memory.reclaim, asking for page cache only where swap is slow and the
// kernel supports it (reclaimmode.go). EAGAIN (the kernel reclaimed less
// than asked) is success.
// Reclaim runs in the writing thread and can take long: it is bounded like
// every write, and a timeout leaves it running in the kernel.
func (a *Actuator) Reclaim(ctx context.Context, cg governor.Ref, bytes int64) error {
	if err := a.checkTarget(cg); err != nil {
		return err
	}
	if bytes <= 0 {
		return fmt.Errorf("reclaim %s: byte count %d must be positive", a.path(cg, "memory.reclaim"), bytes)
	}
	err := a.reclaimWrite(ctx, cg, bytes)
	if errors.Is(err, unix.EAGAIN) {
		return nil
	}
	return err
}

// Freeze implements governor.Actuator: it writes cgroup.freeze and polls
// cgroup.events until "frozen" matches, bounded by the context deadline or
// FreezeTimeout (→ governor.ErrTimeout).
func (a *Actuator) Freeze(ctx context.Context, cg governor.Ref, frozen bool) error {
	if err := a.checkTarget(cg); err != nil {
		return err
	}
	v := "0"
	if frozen {
		v = "1"
	}
	if err := a.writeFile(ctx, cg, "cgroup.freeze", v, false); err != nil {
		return err
	}
	limit := a.FreezeTimeout
	if limit <= 0 {
		limit = DefaultFreezeTimeout
	}
	end := time.Now().Add(deadline(ctx, limit))
	wait := time.Millisecond
	for {
		raw, err := a.readFile(cg, "cgroup.events")
		if err != nil {
			return err
		}
		ev, err := ParseEvents([]byte(raw))
		if err != nil {
			return fmt.Errorf("read %s: %w", a.path(cg, "cgroup.events"), err)
		}
		if ev.Frozen == frozen {
			return nil
		}
		if time.Now().Add(wait).After(end) {
			return fmt.Errorf("freeze %s=%s: %w waiting for cgroup.events frozen %s", a.path(cg, "cgroup.freeze"), v, governor.ErrTimeout, v)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("freeze %s=%s: %w: %w", a.path(cg, "cgroup.freeze"), v, governor.ErrTimeout, ctx.Err())
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// FreezeState implements governor.FreezeReader: whether cgroup.freeze
// holds 1 (the freeze asked for, by anyone; cgroup.events shows when it
// has taken effect).
func (a *Actuator) FreezeState(ctx context.Context, cg governor.Ref) (bool, error) {
	if err := checkRel(cg.Path); err != nil {
		return false, err
	}
	raw, err := a.readFile(cg, "cgroup.freeze")
	if err != nil {
		return false, err
	}
	switch raw {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("read %s: unexpected content %q", a.path(cg, "cgroup.freeze"), raw)
}

var _ governor.FreezeReader = (*Actuator)(nil)

// Kill implements governor.Actuator by writing 1 to cgroup.kill (Linux
// 5.14+); without that file it returns governor.ErrUnsupported.
func (a *Actuator) Kill(ctx context.Context, cg governor.Ref) error {
	if err := a.checkTarget(cg); err != nil {
		return err
	}
	return a.writeFile(ctx, cg, "cgroup.kill", "1", false)
}
