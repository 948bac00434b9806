# Scenario "runaway": a batch job that grows without bound is frozen, then
# killed; the latency service next to it is protected and left alone.
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
  grace  = "4s"
  kill   = true

  # A batch job past 1 GiB on this 2 GiB machine is about to take the
  # service down with it.
  when {
    signal = "memory.current"
    above  = "1GiB"
    for    = "2s"
  }
  when {
    signal = "memory.some.avg10"
    above  = "20%"
    for    = "3s"
  }
}
