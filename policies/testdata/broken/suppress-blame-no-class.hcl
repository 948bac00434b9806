class "batch" { match = ["batch.slice/**"] }
suppress "squeeze" {
  target = "batch"
  blame  = "preemption" # want: when conditions read no class other than "batch"
  when {
    host   = true
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" { step = "50%" }
}
