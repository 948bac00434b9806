class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "down"
  step      = "20%"
  min       = 500 # want: min (500) is greater than max (100) for cpu.weight
  max       = 100
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
