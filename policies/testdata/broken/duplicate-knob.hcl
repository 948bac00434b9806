class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
suppress "s" {
  target = "batch"
  when {
    class  = "web"
    signal = "cpu.some.avg10"
    above  = "10%"
  }
  knob "cpu.weight" {}
  knob "cpu.weight" { # want: knob "cpu.weight" is already listed at broken/duplicate-knob.hcl:13
    min = 5
  }
}
