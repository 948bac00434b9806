class "batch" { match = ["batch.slice/**"] }
class "svc" {
  match     = ["system.slice/*.service"]
  protected = true
}

reclaim "r" { target = "batch" }

memory_high "m" {
  target = "batch"
  min    = "256MiB"
  when {
    signal = "memory.full.avg10"
    above  = "5%"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "1%"
  }
}

suppress "s" {
  target = "batch"
  when {
    class  = "svc"
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" {}
  knob "cpu.max" {}
  knob "io.weight" {}
}

last_resort "l" {
  target = "batch"
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}

rule "up" {
  target    = "svc-free"
  knob      = "memory.low"
  direction = "up"
  step      = "64MiB"
  when {
    signal = "memory.some.avg10"
    above  = "5%"
  }
}

class "svc-free" { match = ["free.slice/*"] }
