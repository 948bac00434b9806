class "batch" { match = ["batch.slice"] }

rule "idle" {
  target    = "batch"
  knob      = "cpu.idle"
  direction = "up"
  step      = 1
  max       = 1
  when {
    host   = true
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}

suppress "weight" {
  target = "batch"
  when {
    host   = true
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" { step = "50%" } # want: the kernel refuses cpu.weight while cpu.idle is 1
}
