class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
rule "r" {
  target    = "batch"
  knob      = "cpu.weight"
  direction = "up"
  step      = 2.5 # want: "2.5" is not a whole number
  when {
    signal = "cpu.some.avg10"
    below  = "1%"
  }
}
