class "services" {
  match     = ["system.slice/*.service"]
  protected = true
}
class "batch" { match = ["batch.slice/**"] }
suppress "squeeze" {
  target          = "batch"
  blame           = "preemption"
  blame_min_share = "120%" # want: blame_min_share: 120% is not between 0% and 100%
  when {
    class  = "services"
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" { step = "50%" }
}
