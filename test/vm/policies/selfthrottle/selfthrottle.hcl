# Scenario "selfthrottle": squeeze the batch jobs while the service waits
# for CPU (the default policy's suppress, on this scenario's cgroups) -
# unless the wait is the service's own cpu.max (issue 14).
governor {
  tick = "1s"
}

class "service" {
  match     = ["vmtest/selfthr/service"]
  protected = true
}

class "batch" {
  match = ["vmtest/selfthr/job*"]
}

suppress "batch-yields-cpu" {
  target = "batch"
  when {
    class  = "service"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "3s"
  }
  recover {
    class  = "service"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }
  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "3s"
  }
}
