class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
memory_high "m" {
  target = "batch"
  min    = "2GiB" # want: min (2GiB) is greater than max (1GiB)
  max    = "1GiB"
  when {
    signal = "memory.full.avg10"
    above  = "5%"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "1%"
  }
}
