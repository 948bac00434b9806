# Scenario "coloc": four batch jobs, each its own cgroup next to a busy
# latency-sensitive service (as when every job is a unit or a pod of its
# own at the service's level, so that by weight the jobs together outweigh
# the service four to one). While the service waits for CPU, every job
# becomes SCHED_IDLE among its siblings (cpu.idle = 1: the service preempts
# it at once on every wake-up) and its cpu.max is cut to a quarter of a
# CPU. cpu.weight is deliberately not used as well: the kernel refuses
# cpu.weight writes to a cgroup while cpu.idle is 1.
governor {
  tick = "1s"
}

class "service" {
  match     = ["vmtest/coloc/service"]
  protected = true
}

class "batch" {
  match = ["vmtest/coloc/job*"]
}

rule "batch-idle" {
  target    = "batch"
  knob      = "cpu.idle"
  direction = "up"
  step      = 1
  min       = 0
  max       = 1
  cooldown  = "2s"
  when {
    class  = "service"
    signal = "cpu.some.avg10"
    above  = "5%"
    for    = "2s"
  }
  recover {
    class  = "service"
    signal = "cpu.some.avg10"
    below  = "1%"
    for    = "30s"
  }
}

suppress "batch-cpu" {
  target = "batch"
  when {
    class  = "service"
    signal = "cpu.some.avg10"
    above  = "5%"
    for    = "2s"
  }
  recover {
    class  = "service"
    signal = "cpu.some.avg10"
    below  = "1%"
    for    = "30s"
  }
  knob "cpu.max" {
    step     = "50%"
    min      = 0.25
    cooldown = "2s"
  }
}
