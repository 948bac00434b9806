# A desktop or workstation: whatever the user is interacting with comes
# first; background and batch work yields when the session is starved.
#
# Layout assumed (systemd user session): applications run in
# user.slice/user-UID.slice/user@UID.service/app.slice/app-*.scope, the
# session's shell and compositor in session.slice below user@UID.service,
# and background work in background.slice below it or in system batch.slice.

class "interactive" {
  match = [
    "user.slice/**/app-*.scope",
    "user.slice/**/session.slice",
  ]
  protected = true
}

class "background" {
  match = [
    "user.slice/**/background.slice",
    "batch.slice",
  ]
}

# Keep 1 GiB of the interactive apps' memory out of reach of reclaim caused
# by others; a browser tab switch should not page everything back in.
protect "interactive-memory" {
  target     = "interactive"
  memory_low = "1GiB"
}

# Background work yields the CPU quickly when the interactive class waits for
# it, and gets it back slowly once things are calm again.
suppress "background-yields" {
  target = "background"

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
  # No recover block: the trigger recovers once no when condition has held
  # for the longest of their durations.

  knob "cpu.weight" {
    step     = "75%"
    min      = 1
    cooldown = "2s"
  }
  knob "io.weight" {
    step = "75%"
    min  = 1
  }
}

# The generic form: while the host is short of memory, mark background
# cgroups SCHED_IDLE among their siblings (cpu.idle = 1) so they only run
# when nothing else wants the CPU; undo it 60 s after the pressure is gone.
rule "background-idle" {
  target    = "background"
  knob      = "cpu.idle"
  direction = "up"
  step      = 1
  min       = 0
  max       = 1
  cooldown  = "10s"

  when {
    host   = true
    signal = "memory.some.avg10"
    above  = "20%"
    for    = "10s"
  }
  recover {
    host   = true
    signal = "memory.some.avg10"
    below  = "5%"
    for    = "60s"
  }
}
