class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "web" # want: targets class "web", which is protected
  knob      = "cpu.weight"
  direction = "down"
  step      = "20%"
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
