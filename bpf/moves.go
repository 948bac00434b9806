package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// Moves is a cgroup iterator (iter/cgroup, Linux 6.1+) over a cgroup v2
// subtree: one read returns, for every cgroup in it, the per-CPU pressure
// times the kernel keeps, summed (c/cgmoves.bpf.c). cgroup.Source uses it
// as its cgroup.MoveSensor to read the files of only the cgroups whose
// counters moved, instead of asking each child of a parent that moved.
type Moves struct {
	mu    sync.Mutex
	objs  cgmovesObjects
	mem   *ebpf.Memory // the records (the map "moves", mapped)
	link  int          // link fd, -1 once closed
	slots int
	buf   []byte
	// stood: records the last walk left standing (a still ancestor
	// vouched for them).
	stood uint64
}

// DefaultMoveSlots is how many cgroups one walk records (48 bytes each,
// 1.5 MiB of kernel memory at the default); cgroups walked beyond it are
// read from their files as without the iterator.
const DefaultMoveSlots = 32768

// moveRecSize is sizeof(struct cg_move).
const moveRecSize = 48

// bpf(2) commands and attach type used here (include/uapi/linux/bpf.h);
// cilium/ebpf's link.AttachIter has no cgroup iterator options.
const (
	cmdLinkCreate   = 28
	cmdIterCreate   = 33
	attachTraceIter = 28
	// BPF_CGROUP_ITER_DESCENDANTS_PRE: the cgroup, then its descendants,
	// parents before children.
	cgroupIterDescendantsPre = 2
	// maxMoveCPUs is MAX_CPUS of c/cgmoves.bpf.c.
	maxMoveCPUs = 1024
)

// OpenMoves loads the iterator for the cgroup v2 hierarchy (or subtree) at
// root. Errors wrap ErrUnavailable when the kernel lacks the cgroup
// iterator (before 6.1), kernel BTF, the pressure accounting's types or the
// symbols it needs, or the process may not load BPF.
func OpenMoves(root string) (*Moves, error) {
	return openMoves(root, DefaultMoveSlots)
}

func openMoves(root string, slots int) (*Moves, error) {
	_ = rlimit.RemoveMemlock()
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: kernel BTF: %w", ErrUnavailable, err)
	}
	var iterType *btf.Func
	if err := kspec.TypeByName("bpf_iter_cgroup", &iterType); err != nil {
		return nil, fmt.Errorf("%w: no cgroup iterator in this kernel (Linux 6.1+): %w", ErrUnavailable, err)
	}
	var g *btf.Struct
	if err := kspec.TypeByName("psi_group", &g); err != nil {
		return nil, fmt.Errorf("%w: no pressure accounting types in kernel BTF: %w", ErrUnavailable, err)
	}
	spec, err := loadCgmoves()
	if err != nil {
		return nil, fmt.Errorf("cgroup iterator object: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("%w: possible CPUs: %w", ErrUnavailable, err)
	}
	if ncpu > maxMoveCPUs {
		return nil, fmt.Errorf("%w: %d possible CPUs, the cgroup iterator handles %d", ErrUnavailable, ncpu, maxMoveCPUs)
	}
	if err := spec.Variables["nr_cpus"].Set(uint32(ncpu)); err != nil {
		return nil, err
	}
	spec.Maps["moves"].MaxEntries = uint32(slots)
	m := &Moves{link: -1, slots: slots}
	if err := spec.LoadAndAssign(&m.objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kspec}}); err != nil {
		return nil, fmt.Errorf("%w: load the cgroup iterator: %w", ErrUnavailable, err)
	}
	if m.mem, err = m.objs.Moves.Memory(); err != nil {
		m.objs.Close()
		return nil, fmt.Errorf("%w: map the cgroup iterator's records: %w", ErrUnavailable, err)
	}
	dir, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.objs.Close()
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(dir)
	info := struct {
		order, cgroupFD uint32
		cgroupID        uint64
	}{cgroupIterDescendantsPre, uint32(dir), 0}
	attr := struct {
		progFD, targetFD, attachType, flags uint32
		iterInfo                            uint64
		iterInfoLen                         uint32
		_                                   uint32
	}{
		progFD:      uint32(m.objs.DumpMoves.FD()),
		attachType:  attachTraceIter,
		iterInfo:    uint64(uintptr(unsafe.Pointer(&info))),
		iterInfoLen: uint32(unsafe.Sizeof(info)),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmdLinkCreate, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(&info)
	if errno != 0 {
		m.objs.Close()
		return nil, fmt.Errorf("%w: attach the cgroup iterator to %s: %w", ErrUnavailable, root, errno)
	}
	m.link = int(fd)
	unix.CloseOnExec(m.link)
	// One read now, so a kernel whose pressure data the program cannot
	// reach says so at start-up rather than on every tick. The root of
	// the hierarchy has none of its own (the kernel's is psi_system, not
	// reachable from the cgroup): some cgroup below it must have.
	recs, err := m.Moves(nil)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: read the cgroup iterator: %w", ErrUnavailable, err)
	}
	known := 0
	for _, r := range recs {
		if !r.Unknown {
			known++
		}
	}
	if len(recs) == 0 || known == 0 && len(recs) > 1 {
		m.Close()
		return nil, fmt.Errorf("%w: the cgroup iterator finds no pressure data in %d cgroups under %s (PSI off?)", ErrUnavailable, len(recs), root)
	}
	return m, nil
}

// Moves implements cgroup.MoveSensor: it appends one record per cgroup of
// the subtree (the root first, parents before children) to dst.
func (m *Moves) Moves(dst []governor.CgroupMove) ([]governor.CgroupMove, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.link < 0 {
		return dst, errors.New("cgroup iterator closed")
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmdIterCreate, uintptr(unsafe.Pointer(&[2]uint32{uint32(m.link), 0})), 8)
	if errno != 0 {
		return dst, fmt.Errorf("open the cgroup iterator: %w", errno)
	}
	defer unix.Close(int(fd))
	// The output is the number of cgroups walked and of the records
	// left standing (see c/cgmoves.bpf.c).
	var out [24]byte
	n := 0
	for {
		r, err := unix.Read(int(fd), out[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dst, fmt.Errorf("read the cgroup iterator: %w", err)
		}
		if r == 0 {
			break
		}
		if n += r; n > 16 {
			return dst, fmt.Errorf("read the cgroup iterator: %d bytes of output, want 16", n)
		}
	}
	if n != 16 {
		return dst, fmt.Errorf("read the cgroup iterator: %d bytes of output, want 16: %w", n, io.ErrUnexpectedEOF)
	}
	le := binary.LittleEndian
	walked := min(le.Uint64(out[:]), uint64(m.slots))
	m.stood = le.Uint64(out[8:])
	size := int(walked) * moveRecSize
	if cap(m.buf) < size {
		m.buf = make([]byte, size)
	}
	b := m.buf[:size]
	if _, err := m.mem.ReadAt(b, 0); err != nil {
		return dst, fmt.Errorf("read the cgroup iterator's records: %w", err)
	}
	for ; len(b) >= moveRecSize; b = b[moveRecSize:] {
		dst = append(dst, governor.CgroupMove{
			ID:      governor.CgroupID(le.Uint64(b[0:])),
			PSI:     [3]uint64{le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])},
			NonIdle: le.Uint64(b[32:]),
			Active:  uint8(le.Uint32(b[40:])),
			Unknown: le.Uint32(b[44:])&1 != 0,
		})
	}
	return dst, nil
}

// Stood is how many records the last walk left as the walk before wrote
// them, a still ancestor vouching for them (c/cgmoves.bpf.c).
func (m *Moves) Stood() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stood
}

// Close detaches and unloads the iterator.
func (m *Moves) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.link >= 0 {
		unix.Close(m.link)
		m.link = -1
	}
	return m.objs.Close()
}
