class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
memory_high "m" { # want: memory_high "m" needs min
  target = "batch"
  when {
    signal = "memory.full.avg10"
    above  = "5%"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "1%"
  }
}
