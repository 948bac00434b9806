class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
memory_high "m" { # want: needs at least one relax block
  target = "batch"
  min    = "256MiB"
  when {
    signal = "memory.full.avg10"
    above  = "5%"
  }
}
