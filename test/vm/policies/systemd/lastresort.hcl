# Scenario "systemd", last phase: freeze, then kill, a unit — through
# FreezeUnit and KillUnit. Always active while the unit has memory charged.
governor {
  tick = "1s"
}

class "runaway" {
  match = ["system.slice/vmt-run.service"]
}

last_resort "runaway-unit" {
  target = "runaway"
  grace  = "4s"
  kill   = true
  when {
    class  = "runaway"
    signal = "memory.current"
    above  = "4KiB"
  }
}
