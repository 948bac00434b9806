# governor's built-in default policy.
#
# It is used when no policy files are configured and is meant to be safe on
# any machine:
#
#   * Every cgroup is observed (its pressure is sampled and reported), but
#     the governor writes to exactly one cgroup: batch.slice, the slice where
#     operators conventionally put batch work. On a machine without
#     batch.slice this policy changes nothing at all.
#   * batch.slice is gently and proactively reclaimed (senpai/TMO style):
#     every 6 s a slice of its memory is handed back to the kernel while
#     its own memory stall stays below 0.1% of the time; the slice grows
#     (up to max_step) while that works far under the goal and shrinks
#     near it. Each write is measured: when three in a row free next to
#     nothing (say, anonymous memory and no swap) it backs off, says so
#     once, and resumes when swap or page cache appear.
#   * While any service or user session (system.slice, user.slice) is
#     waiting for CPU more than 10% of the time for 5 s, batch.slice's
#     cpu.weight is halved every 5 s (down to 1) and its cpu.max cut by 25%
#     every 5 s (down to half a CPU). Once they wait less than 2% for 30 s,
#     both are given back step by step until the original values are
#     restored.
#   * No memory.high changes, nothing is frozen or killed.
#
# Why the slice itself and not every cgroup below it: cpu.weight only
# competes among siblings, so it is batch.slice's weight that decides its
# share against system.slice and user.slice; cpu.max and memory.reclaim on
# the slice cover its whole subtree. Acting on the slice alone is enough and
# never acts twice on nested cgroups.

governor {
  tick         = "1s"
  report_every = "60s"
}

# Latency-sensitive work: system services and user sessions. Protected: the
# governor never writes to them, it only reads their pressure.
class "interactive" {
  match     = ["system.slice/**", "user.slice/**"]
  protected = true
}

# The batch slice itself (see above for why not "batch.slice/**").
class "batch" {
  match = ["batch.slice"]
}

# Everything else (init.scope, machine.slice, the batch slice's children,
# ...) is observed and never written.
class "other" {
  match     = ["**"]
  protected = true
}

reclaim "batch-proactive" {
  target   = "batch"
  signal   = "memory.some.stall"
  goal     = "0.1%"
  interval = "6s"
  step     = "0.5%"
  max_step = "32MiB"
  min_size = "256MiB"
}

suppress "batch-yields-cpu" {
  target = "batch"

  when {
    class  = "interactive"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "5s"
  }
  recover {
    class  = "interactive"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }

  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "5s"
  }
  knob "cpu.max" {
    step     = "25%"
    min      = 0.5 # CPUs
    cooldown = "5s"
  }
}
