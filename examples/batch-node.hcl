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

# Services keep 2 GiB of page cache and anonymous memory out of reach of
# reclaim caused by others (memory.low, best effort) and 512 MiB
# unconditionally (memory.min). protect is the one controller allowed on a
# protected class: it only adds protection.
protect "services-memory" {
  target     = "services"
  memory_low = "2GiB"
  memory_min = "512MiB"
}

# When any service waits for CPU more than 10% of the time (10 s average)
# for 5 s, squeeze every batch job: halve cpu.weight, cut cpu.max by 25%,
# halve io.weight, one step per cooldown, down to the floors. When the
# services wait less than 2% for 30 s, give it back step by step.
suppress "services-first" {
  target = "batch"

  when {
    class  = "services"
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
