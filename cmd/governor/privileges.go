package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capability numbers (linux/capability.h).
const (
	capChown       = 0
	capDacOverride = 1
	capSysAdmin    = 21
	capPerfmon     = 38
	capBPF         = 39
)

// effectiveCaps reads the process's effective capability set from
// /proc/self/status (CapEff, hexadecimal).
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff line in /proc/self/status")
}

// missingPrivileges lists what `run` lacks to do its work, for euid and
// effective capabilities caps (empty: nothing). The minimal set:
//
//   - uid 0 or CAP_DAC_OVERRIDE: cgroup files, the state directory under
//     /run and systemd's private bus socket are root's, mode 0644/0600;
//     their owner needs no capability to write them.
//   - with BPF on (no --no-bpf): CAP_BPF and CAP_PERFMON to load and attach
//     the tracing programs and read their maps, or CAP_SYS_ADMIN (which
//     kernels before 5.8, without CAP_BPF, require).
//   - with --control-group: CAP_CHOWN, to give the socket to that group.
//
// Not required: CAP_KILL (freezing and killing go through cgroup.freeze,
// cgroup.kill or systemd), CAP_SYS_RESOURCE (PSI trigger windows are 2 s
// multiples; without them the tick alone wakes the loop, said once in the
// log; BPF memory is charged to the cgroup on 5.11+).
func missingPrivileges(euid int, caps uint64, bpf, controlGroup bool) []string {
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	var missing []string
	if euid != 0 && !has(capDacOverride) {
		missing = append(missing, "uid 0 or CAP_DAC_OVERRIDE (to write cgroup files and the state directory)")
	}
	if bpf && !(has(capBPF) && has(capPerfmon)) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (for the BPF sensors; --no-bpf runs without them)")
	}
	if controlGroup && !has(capChown) {
		missing = append(missing, "CAP_CHOWN (to give the control socket to --control-group)")
	}
	return missing
}

// checkPrivileges is missingPrivileges for this process, as one error line.
func checkPrivileges(f runFlags) error {
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("cannot read the effective capabilities: %w", err)
	}
	missing := missingPrivileges(os.Geteuid(), caps, !f.noBPF, f.ops.controlGroup != "" && f.ops.controlSocket != "none")
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing privileges (uid %d, CapEff %016x): %s; run as root with these, or with --dry-run",
		os.Geteuid(), caps, strings.Join(missing, "; "))
}
