// Package cgroup is the governor's access to cgroup v2: discovery, reading
// statistics and pressure, PSI triggers, and writing limits. Everything is
// rooted at a path parameter, so the same code runs on t.TempDir() fixture
// trees and on the real cgroup2 mount.
//
// # Discovery
//
// FindMount finds the cgroup2 mount in /proc/self/mountinfo (/sys/fs/cgroup
// on unified hosts, /sys/fs/cgroup/unified on hybrid ones). Probe reports,
// as governor.Capabilities, the controllers the root enables for its
// children (cgroup.subtree_control) and whether memory.reclaim,
// cgroup.freeze and cgroup.kill exist. Resolve maps a cgroup path relative
// to the root to an absolute one, refusing "..", ".", absolute paths and
// symlinks (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, Lstat checks
// on kernels without it).
//
// A cgroup's id is the inode number of its directory, which on cgroup2 is
// the kernel's cgroup id and what BPF's cgroup id helpers return.
//
// # Reading: Source
//
// Source implements governor.Source. Each Sample walks the hierarchy and
// appends one *governor.Sample per cgroup to Snapshot.Cgroups, the root
// cgroup first (the loop never acts on it), then depth-first in name
// order; Snapshot.Host (id 0) holds the system-wide PSI from
// /proc/pressure. Signals:
//
//   - <res>.{some,full}.avg{10,60,300} from cpu/memory/io.pressure;
//     <res>.{some,full}.stall, the share of wall time stalled since the
//     previous sample of the same cgroup id (from total=).
//   - memory.current, memory.swap (memory.swap.current), memory.anon and
//     memory.file (memory.stat), memory.high_ratio and memory.max_ratio
//     (absent while the limit is "max" or 0), memory.events.* per second
//     (hierarchical memory.events).
//   - cpu.usage in cores; cpu.throttled (% of wall time) and
//     cpu.throttled_periods per second, where the cpu controller is on.
//   - io.read_bytes and io.write_bytes per second, summed over devices.
//
// Rates are absent on a cgroup's first sample and when a counter goes
// backwards. Signals whose files are missing are absent without error; a
// cgroup removed while being read is left out. SourceOptions.Filter
// restricts which cgroups are read; the others still appear with id and
// path only. Per-id counters of cgroups not seen in a round are dropped.
//
// The file parsers (ParsePressure, ParseMemoryStat, ParseCPUStat, ...) are
// pure functions of a file's content, separate from the I/O, and return an
// error wrapping ErrSyntax for malformed input.
//
// # Writing: Actuator
//
// Actuator implements governor.Actuator with cgroupfs writes, each bounded
// by the context deadline or Actuator.WriteTimeout (governor.ErrTimeout),
// memory.high/memory.max opened with O_NONBLOCK. Errors wrap
// governor.ErrGone (the cgroup was removed), governor.ErrUnsupported (the
// file is missing: controller not enabled or kernel too old) or the errno,
// and always name the file. cpu.weight and cpu.max are written through
// containerd's cgroup2 manager; memory files (which need "max"),
// memory.reclaim, cpu.idle, io.weight, cgroup.freeze and cgroup.kill by
// hand. The Actuator never changes the root cgroup.
//
// # Triggers
//
// Triggers implements governor.Notifier with PSI triggers waited for by
// epoll on a dedicated goroutine. Windows that are not a multiple of 2 s
// need CAP_SYS_RESOURCE; without it Add falls back to the nearest 2 s
// multiple, returns the window in effect and logs that once. Triggers of a
// removed cgroup are closed and forgotten, with one last wake.
//
// # Logging
//
// The package logs only through the hclog.Logger passed to its
// constructors (nil discards).
package cgroup
