# A batch node: latency-sensitive services share the machine with batch jobs
# that should soak up whatever CPU and memory the services leave idle.
#
# Layout assumed (systemd): services in system.slice, batch jobs as units in
# batch.slice (e.g. systemd-run --slice=batch.slice ...).
#
# Load it with:  governor validate examples/batch-node.hcl
# Installed policy files must be owned by root and not group/world writable.

governor {
  tick         = "1s"  # how often the loop samples and decides
  report_every = "60s" # how often per-cgroup pressure is logged
}

# Classes select cgroups by path, relative to the cgroup root. "*" matches
# within one path element, "**" any number of elements. A cgroup belongs to
# the first class (in file order) that matches it.
# The services whose memory must survive batch work: name them, one glob
# per unit. They get memory protection below; every other service is in
# "services" and is only watched.
class "critical" {
  match     = ["system.slice/web.service", "system.slice/postgresql*.service"]
  protected = true
}

class "services" {
  match     = ["system.slice/*.service"]
  exclude   = ["system.slice/backup.service"] # handled like batch below
  protected = true # never squeezed, frozen or killed; still observed
}

# Each batch job is one cgroup under batch.slice. "*" (not "**") selects the
# jobs themselves, not their inner cgroups, so nothing is acted on twice.
class "batch" {
  match = ["batch.slice/*", "system.slice/backup.service"]
}

# Each critical service keeps memory_low of page cache and anonymous memory
# out of reach of reclaim caused by others (best effort) and memory_min
# unconditionally. protect is the one controller allowed on a protected
# class: it only adds protection.
#
# How to size it: the values apply to EACH service of the class, so the
# promise is memory_low times the number of services it matches. Take a
# service's steady working set (memory.current after warm-up, under load)
# plus about 20% as its memory_low; memory_min only for what it cannot run
# without. Keep the sum over the class under about half of the node's RAM:
# protected memory is memory batch work cannot use, and a promise larger
# than RAM protects nothing. The figures below suit two services on an
# 8 GiB node (2 x 1 GiB low, 2 x 256 MiB min); on a smaller machine, or
# with more services matched, scale them down. `governor status` shows each
# service's memory.current to size from.
protect "critical-memory" {
  target     = "critical"
  memory_low = "1GiB"
  memory_min = "256MiB"
}

# When any service (critical or not) waits for CPU more than 10% of the time (10 s average)
# for 5 s, squeeze every batch job: halve cpu.weight, cut cpu.max by 25%,
# halve io.weight, one step per cooldown, down to the floors. When the
# services wait less than 2% for 30 s, give it back step by step.
suppress "services-first" {
  target = "batch"
  # With the BPF sensor, squeeze only the jobs that took the services' CPU,
  # each in proportion to its share (policies/REFERENCE.md, "Blame").
  # Leave it off while an io condition below should squeeze every job:
  # a blaming controller squeezes only for CPU preemptions.
  # blame = "preemption"

  when {
    class  = "services"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "5s"
  }
  when {
    class  = "critical"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "5s"
  }
  # Several when blocks: any of them activates the trigger. Slow IO counts
  # too.
  when {
    class  = "services"
    signal = "io.some.avg10"
    above  = "20%"
    for    = "5s"
  }
  # Several recover blocks: all of them must hold.
  recover {
    class  = "critical"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }
  recover {
    class  = "services"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }
  recover {
    class  = "services"
    signal = "io.some.avg10"
    below  = "5%"
    for    = "30s"
  }

  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "5s"
  }
  knob "cpu.max" {
    step     = "25%"
    min      = 0.2 # CPUs per job
    cooldown = "5s"
  }
  knob "io.weight" {
    step = "50%"
    min  = 1
  }
}

# Keep each batch job's memory.high just above what it needs: raise it when
# the job stalls on memory, lower it toward usage + headroom when it is
# comfortable, so memory it does not need goes back to the services.
memory_high "batch-memory" {
  target            = "batch"
  step              = "10%"     # of the current memory.high
  headroom          = "10%"     # above memory.current when lowering
  max_below_current = "64MiB"   # never force a large synchronous reclaim
  min               = "256MiB"  # required: the lowest memory.high we set
  max               = "max"     # may raise until memory.high is removed
  cooldown          = "10s"

  when {
    signal = "memory.full.avg10" # the job's own pressure (no class/host)
    above  = "5%"
    for    = "5s"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "0.5%"
    for    = "30s"
  }
}

# If the whole host is thrashing anyway, freeze the largest batch job; if
# the host is still in trouble 10 s later, kill it, otherwise thaw it.
last_resort "runaway-batch" {
  target = "batch"
  grace  = "10s"
  kill   = true

  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
    for    = "10s"
  }
  when {
    host   = true
    signal = "oom.kills"
    above  = "1/s"
  }
}
