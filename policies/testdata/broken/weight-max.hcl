class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "up"
  step      = 50
  max       = "max" # want: cpu.weight has no "max"
  when {
    signal = "cpu.some.avg10"
    below  = "1%"
  }
}
