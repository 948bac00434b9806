# Scenario "memhigh": memory.high follows the workload. A cgroup thrashing
# under a too-tight limit gets it raised; an idle one without a limit gets
# one just above its usage.
governor {
  tick = "1s"
}

class "apps" {
  match = ["vmtest/memhigh/*"]
}

memory_high "apps-high" {
  target            = "apps"
  step              = "20%"
  headroom          = "10%"
  max_below_current = "64MiB"
  min               = "128MiB"
  max               = "1GiB"
  cooldown          = "2s"
  when {
    signal = "memory.full.avg10"
    above  = "5%"
    for    = "2s"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "0.5%"
    for    = "6s"
  }
}
