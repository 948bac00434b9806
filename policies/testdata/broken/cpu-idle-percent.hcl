class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.idle"
  direction = "up"
  step      = "50%" # want: cpu.idle only moves between 0 and 1
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
