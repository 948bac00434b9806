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
  knob "cpu.weight" {}
}
rule "r" {
  target    = "batch"
  knob      = "cpu.weight" # want: rule "r" and suppress "s" (broken/conflict-rule-suppress.hcl:6) both write cpu.weight of class "batch"
  direction = "down"
  step      = "10%"
  when {
    signal = "cpu.some.avg10"
    above  = "10%"
  }
}
