class "svc" { match = ["system.slice/*.service"] }
protect "p" {
  target     = "svc"
  memory_low = "1GiB"
}
rule "r" {
  target    = "svc"
  knob      = "memory.low" # want: both write memory.low of class "svc"
  direction = "up"
  step      = "64MiB"
  when {
    signal = "memory.some.avg10"
    above  = "5%"
  }
}
