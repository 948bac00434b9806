# A desktop or workstation: whatever the user is interacting with comes
# first; background and batch work yields when the session is starved.
#
# Layout assumed (systemd user session): applications run in
# user.slice/user-UID.slice/user@UID.service/app.slice/app-*.scope, the
# session's shell and compositor in session.slice below user@UID.service,
# and batch work in system batch.slice.
#
# Everything below user@UID.service is delegated to the user: its cgroups
# are made by the user's own systemd and their files belong to the user.
# The governor reads them (pressure, run-queue latency) but, under the
# shipped unit, which does not grant CAP_DAC_OVERRIDE, cannot write them
# (the journal names the owner if a policy tries). So this policy writes
# only system units: user@UID.service itself (through systemd) and
# batch.slice. To also idle the user's own background.slice, add
# CAP_DAC_OVERRIDE to the unit's CapabilityBoundingSet= and
# AmbientCapabilities= in a drop-in, and "user.slice/**/background.slice"
# to the background class.

class "interactive" {
  match = [
    "user.slice/**/app-*.scope",
    "user.slice/**/session.slice",
  ]
  protected = true
}

# Each logged-in user's whole session, as the system sees it.
class "session" {
  match     = ["user.slice/user-*.slice/user@*.service"]
  protected = true
}

class "background" {
  match = ["batch.slice"]
}

# Keep 1 GiB of each session's memory out of reach of reclaim caused by
# others; a browser tab switch should not page everything back in. It is
# the user manager's unit's MemoryLow=: systemd mounts cgroup2 with
# memory_recursiveprot, so the session's cgroups share it by their usage.
protect "session-memory" {
  target     = "session"
  memory_low = "1GiB"
}

# cpu.idle needs the cpu controller. On a stock systemd host cpu comes on
# only when a unit asks for it or a user logs in, which on a desktop is
# after the governor started at boot. With systemd 252 or later that does
# not matter: the governor sets batch.slice's cpu.idle as CPUWeight=idle,
# and systemd enables cpu for it then (and drops it again on restore).
# Older systemd (or background slices that are not system units, such as
# the user manager's background.slice) need cpu on when the governor starts,
# which it plans from; otherwise the rule only observes (the journal says
# so at start, and `governor validate --host` exits 3). Then turn it on from
# boot once, persistently:
#   systemctl set-property system.slice CPUWeight=100
# (system.slice is always active, so systemd enables cpu at the root at
# every boot; 100 is the default weight, so nothing else changes.)
# (Linux 5.15 or later: older kernels have no cpu.idle.)
#
# Background work yields the CPU at once when the interactive class waits
# for it: it becomes SCHED_IDLE among its siblings (cpu.idle = 1), so an
# interactive task preempts it on every wake-up, and it runs only when
# nothing else wants the CPU. (cpu.idle and cpu.weight do not mix: the kernel
# refuses cpu.weight writes while cpu.idle is 1, so this policy squeezes no
# weight on this class.)
rule "background-idle" {
  target    = "background"
  knob      = "cpu.idle"
  direction = "up"
  step      = 1
  min       = 0
  max       = 1
  cooldown  = "2s"

  when {
    class  = "interactive"
    signal = "cpu.some.avg10"
    above  = "5%"
    for    = "2s"
  }
  # Run-queue latency as measured by BPF: a 99th percentile above 10 ms is
  # visible as stutter even when averages look fine.
  when {
    class  = "interactive"
    signal = "runq.p99"
    above  = "10ms"
    for    = "3s"
  }
  recover {
    class  = "interactive"
    signal = "cpu.some.avg10"
    below  = "1%"
    for    = "60s"
  }
}

# And it yields the disk while the interactive class waits for IO (io.weight
# acts where blk-iocost is enabled for the device).
suppress "background-yields-io" {
  target = "background"

  when {
    class  = "interactive"
    signal = "io.some.avg10"
    above  = "5%"
    for    = "2s"
  }
  # No recover block: the trigger recovers once no when condition has held
  # for the longest of their durations.

  knob "io.weight" {
    step = "75%"
    min  = 1
  }
}
