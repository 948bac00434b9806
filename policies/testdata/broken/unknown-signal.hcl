class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
suppress "s" {
  target = "batch"
  when {
    class  = "web"
    signal = "cpu.some.avg01" # want: Did you mean "cpu.some.avg10"?
    above  = "10%"
  }
  knob "cpu.weight" {}
}
