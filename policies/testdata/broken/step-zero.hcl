class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "io.weight"
  direction = "up"
  step      = "0%" # want: it must be above 0%
  when {
    signal = "io.some.avg10"
    above  = "10%"
  }
}
