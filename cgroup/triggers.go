package cgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// psiWindowGranule is the window granularity that needs no
// CAP_SYS_RESOURCE: windows that are a multiple of it are accepted from
// any opener (Linux 6.5+, and what hosts without the capability allow).
const psiWindowGranule = 2 * time.Second

// Triggers implements governor.Notifier with PSI triggers: each Add arms a
// trigger on a pressure file and a dedicated goroutine waits for them with
// epoll (kernfs and procfs pressure files do not work with Go's netpoller).
// When a trigger fires, its Ref is sent on Wake(); when a cgroup is
// removed, its triggers report an error, are closed and forgotten, and the
// Ref is still sent once so the loop notices.
//
// Wake is a hint: sends never block, and a wake is dropped when the channel
// is full, since a Step is then pending anyway.
type Triggers struct {
	log  hclog.Logger
	epfd int
	evfd int // eventfd that wakes epoll for shutdown
	wake chan governor.Ref
	done chan struct{}

	mu       sync.Mutex
	byKey    map[uint64]*trigger
	nextKey  uint64
	closed   bool
	warnOnce sync.Once
}

type trigger struct {
	fd   int
	ref  governor.Ref
	path string
}

// NewTriggers creates the epoll instance and starts the waiting goroutine.
// log may be nil.
func NewTriggers(log hclog.Logger) (*Triggers, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setKey(&ev, 0) // key 0 is the shutdown eventfd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	t := &Triggers{
		log:     log,
		epfd:    epfd,
		evfd:    evfd,
		wake:    make(chan governor.Ref, 64),
		done:    make(chan struct{}),
		byKey:   make(map[uint64]*trigger),
		nextKey: 1,
	}
	go t.loop()
	return t, nil
}

var _ governor.Notifier = (*Triggers)(nil)

// Epoll data carries a unique key rather than the fd, so a late event for a
// closed fd whose number got reused cannot be mistaken for the new one.
func setKey(ev *unix.EpollEvent, k uint64) {
	ev.Fd = int32(uint32(k))
	ev.Pad = int32(uint32(k >> 32))
}

func getKey(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Wake implements governor.Notifier. The channel is never closed.
func (t *Triggers) Wake() <-chan governor.Ref { return t.wake }

// Add arms a PSI trigger on the pressure file path (a cgroup's
// "<res>.pressure", best built with Resolve, or "/proc/pressure/<res>") for
// the "some" line, or "full" when full is set: the kernel signals when
// tasks were stalled for stall within any window. ref is what Wake
// delivers (id 0 for the host).
//
// Windows that are not a multiple of 2 s need CAP_SYS_RESOURCE; when the
// kernel refuses such a window with EINVAL, Add retries with the nearest
// multiple of 2 s (at least 2 s), scales stall by the same factor, logs
// that once, and returns the window in effect.
func (t *Triggers) Add(ref governor.Ref, path string, full bool, stall, window time.Duration) (time.Duration, error) {
	if stall <= 0 || window <= 0 || stall > window {
		return 0, fmt.Errorf("psi trigger %s: need 0 < stall (%v) <= window (%v)", path, stall, window)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	line := "some"
	if full {
		line = "full"
	}
	nul := strings.HasPrefix(path, "/proc/")
	eff := window
	err = writeTrigger(fd, line, stall, window, nul)
	if errors.Is(err, unix.EINVAL) && window%psiWindowGranule != 0 {
		eff = ((window + psiWindowGranule/2) / psiWindowGranule) * psiWindowGranule
		if eff < psiWindowGranule {
			eff = psiWindowGranule
		}
		effStall := time.Duration(float64(stall) * float64(eff) / float64(window))
		if err = writeTrigger(fd, line, effStall, eff, nul); err == nil {
			t.warnOnce.Do(func() {
				t.log.Warn("PSI trigger windows that are not a multiple of 2s need CAP_SYS_RESOURCE; using the nearest 2s multiple",
					"file", path, "window", window, "effective_window", eff)
			})
			t.log.Debug("PSI trigger window adjusted", "file", path, "window", window, "effective_window", eff, "stall", effStall)
		}
	}
	if err != nil {
		unix.Close(fd)
		return 0, fmt.Errorf("psi trigger %s %q: %w", path, trigLine(line, stall, window), err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		unix.Close(fd)
		return 0, errors.New("psi triggers closed")
	}
	key := t.nextKey
	t.nextKey++
	ev := unix.EpollEvent{Events: unix.EPOLLPRI}
	setKey(&ev, key)
	if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return 0, fmt.Errorf("epoll_ctl %s: %w", path, err)
	}
	t.byKey[key] = &trigger{fd: fd, ref: ref, path: path}
	return eff, nil
}

func trigLine(line string, stall, window time.Duration) string {
	return fmt.Sprintf("%s %d %d", line, stall.Microseconds(), window.Microseconds())
}

func writeTrigger(fd int, line string, stall, window time.Duration, nul bool) error {
	s := trigLine(line, stall, window)
	if nul {
		s += "\x00"
	}
	for {
		_, err := unix.Write(fd, []byte(s))
		if err != unix.EINTR {
			return err
		}
	}
}

// Remove disarms and closes every trigger of the cgroup id.
func (t *Triggers) Remove(id governor.CgroupID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, tr := range t.byKey {
		if tr.ref.ID == id {
			t.drop(k, tr)
		}
	}
}

// drop forgets a trigger; t.mu is held.
func (t *Triggers) drop(key uint64, tr *trigger) {
	unix.EpollCtl(t.epfd, unix.EPOLL_CTL_DEL, tr.fd, nil)
	unix.Close(tr.fd)
	delete(t.byKey, key)
}

// Len returns the number of armed triggers.
func (t *Triggers) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

func (t *Triggers) loop() {
	defer close(t.done)
	events := make([]unix.EpollEvent, 32)
	for {
		n, err := unix.EpollWait(t.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.log.Error("epoll_wait failed; PSI triggers stop", "error", err)
			return
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			key := getKey(ev)
			if key == 0 {
				return // Close
			}
			t.mu.Lock()
			tr := t.byKey[key]
			if tr == nil { // removed meanwhile
				t.mu.Unlock()
				continue
			}
			ref := tr.ref
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				// The cgroup was removed (its pressure file reports
				// ERR together with PRI): source gone.
				t.log.Debug("PSI trigger source gone", "file", tr.path, "cgroup", ref.String())
				t.drop(key, tr)
			}
			t.mu.Unlock()
			select {
			case t.wake <- ref:
			default:
			}
		}
	}
}

// Close stops the waiting goroutine and closes every descriptor. It is
// safe to call more than once.
func (t *Triggers) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()

	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(t.evfd, one[:])
	<-t.done

	t.mu.Lock()
	for k, tr := range t.byKey {
		t.drop(k, tr)
	}
	t.mu.Unlock()
	err := unix.Close(t.evfd)
	if e := unix.Close(t.epfd); err == nil {
		err = e
	}
	return err
}

// PressureFile returns the pressure file of resource ("cpu", "memory" or
// "io") for ref, for use with Triggers.Add: "/proc/pressure/<res>" for the
// host (id 0), else "<root>/<ref.Path>/<res>.pressure" after resolving the
// cgroup beneath root.
func PressureFile(root string, ref governor.Ref, resource string) (string, error) {
	switch resource {
	case "cpu", "memory", "io":
	default:
		return "", fmt.Errorf("unknown pressure resource %q", resource)
	}
	if ref.ID == 0 {
		return "/proc/pressure/" + resource, nil
	}
	dir, err := Resolve(root, ref.Path)
	if err != nil {
		return "", err
	}
	return dir + "/" + resource + ".pressure", nil
}
