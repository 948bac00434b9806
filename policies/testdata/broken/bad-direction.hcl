class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "sideways" # want: direction must be "down" or "up"
  step      = "10%"
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
