class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.wieght" # want: Did you mean "cpu.weight"?
  direction = "down"
  step      = "10%"
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
