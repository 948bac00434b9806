# Scenario "runaway": a batch job that grows without bound is frozen, then
# killed; the latency service next to it is protected and left alone. A
# smaller batch job marked trusted.governor.prefer goes first; a hook that
# outlives its timeout runs before each freeze.
governor {
  tick = "1s"
}

class "service" {
  match     = ["vmtest/runaway/service"]
  protected = true
}

class "batch" {
  match = ["vmtest/runaway/batch/*"]
}

protect "service-memory" {
  target     = "service"
  memory_low = "256MiB"
}

last_resort "runaway-batch" {
  target = "batch"
  grace  = "3s"
  kill   = true
  rank   = "memory"

  # Writes a timestamp, then sleeps far past hook_timeout: the freeze
  # must follow the timeout, not the sleep.
  hook         = ["/run/vmtest-runaway-hook.sh", "pre-freeze"]
  hook_timeout = "2s"

  # A batch job past 600 MiB on this 2 GiB machine (the batch parent's
  # memory.max is 1600M) is about to take the service down with it. The
  # condition reads the class, so every batch job is a candidate and the
  # operator's mark decides which goes first.
  when {
    class  = "batch"
    signal = "memory.current"
    above  = "600MiB"
    for    = "2s"
  }
}
