class "batch" { match = ["batch.slice/**"] }
rule "r" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "down"
  step      = "20%"
  blame     = "preemption" # want: rule "r"'s when conditions read no class other than "batch"
  when {
    signal = "cpu.some.avg10"
    above  = "20%"
  }
}
