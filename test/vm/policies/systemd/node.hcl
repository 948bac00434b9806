# Scenario "systemd": limits of two systemd units, set through systemd's
# D-Bus API by the governor running as examples/governor.service.
governor {
  tick = "1s"
}

class "web" {
  match = ["system.slice/vmt-web.service"]
}

class "batch" {
  match = ["system.slice/vmt-batch.service"]
}

protect "web-low" {
  target     = "web"
  memory_low = "200MiB"
}

# Always active while the unit has any memory charged: one step, then the
# cooldown holds it at half until the governor stops.
rule "batch-weight" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "down"
  step      = "50%"
  min       = 10
  cooldown  = "1h"
  when {
    signal = "memory.current"
    above  = "4KiB"
  }
}
