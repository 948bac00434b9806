# Scenario "coloc": batch CPU burners next to a latency-sensitive service;
# while the service waits for CPU, the batch is squeezed.
governor {
  tick = "1s"
}

class "service" {
  match     = ["vmtest/coloc/service"]
  protected = true
}

class "batch" {
  match = ["vmtest/coloc/batch"]
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
  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "2s"
  }
  knob "cpu.max" {
    step     = "25%"
    min      = 0.5
    cooldown = "2s"
  }
}
