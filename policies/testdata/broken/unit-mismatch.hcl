class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when {
    host   = true
    signal = "cpu.some.avg10"
    above  = "5ms" # want: "5ms" is a duration, but cpu.some.avg10 is measured in percent
  }
}
