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
  knob "io.weight" {
    min = 0 # want: 0 is out of range for io.weight
  }
}
