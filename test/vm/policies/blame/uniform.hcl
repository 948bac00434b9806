# Scenario "blame": while the service waits for CPU, squeeze the batch
# jobs' cpu.weight and cpu.max (the default policy's suppress, faster):
# every job alike. blame.hcl is this file with blame = "preemption".
governor {
  tick = "1s"
}

class "service" {
  match     = ["vmtest-blame-service"]
  protected = true
}

class "batch" {
  match = ["vmtest-blame-job*"]
}

suppress "batch-yields-cpu" {
  target          = "batch"
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
  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "2s"
  }
  # An absolute cap: cpu.weight alone does not cut the jobs on CPU 1, which
  # compete only with each other there.
  knob "cpu.max" {
    step     = "50%"
    min      = 0.1 # CPUs
    cooldown = "2s"
  }
}
