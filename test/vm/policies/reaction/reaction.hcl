# Scenario "reaction": how fast the governor answers a sharp rise of memory
# pressure. Every cgroup vmtest/reaction/gN starts with memory.high 96 MiB
# and a workload that needs 256 MiB hot: as soon as it stalls for 10% of the
# PSI trigger's 2 s window (200 ms), the kernel wakes the loop and the Step
# raises memory.high. `min` is the initial limit, so relax never lowers it.
# The same workload also runs as transient systemd services in
# reactiondbus.slice: the governor then raises MemoryHigh through systemd's
# D-Bus API (SetUnitProperties), and the scenario times that path too.
governor {
  tick = "1s"
}

class "reaction" {
  match = ["vmtest/reaction/*", "reactiondbus.slice/govdbus*.service"]
}

memory_high "reaction-high" {
  target   = "reaction"
  step     = "25%"
  headroom = "10%"
  min      = "96MiB"
  max      = "1GiB"
  cooldown = "2s"
  when {
    signal = "memory.some.stall"
    above  = "10%"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "0.5%"
    for    = "30s"
  }
}
