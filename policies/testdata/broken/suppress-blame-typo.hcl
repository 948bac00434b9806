class "services" {
  match     = ["system.slice/*.service"]
  protected = true
}
class "batch" { match = ["batch.slice/**"] }
suppress "squeeze" {
  target = "batch"
  blame  = "preemptions" # want: Did you mean "preemption"?
  when {
    class  = "services"
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" { step = "50%" }
}
