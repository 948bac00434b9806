class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
suppress "s" { # want: needs at least one knob block
  target = "batch"
  when {
    class  = "web"
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
