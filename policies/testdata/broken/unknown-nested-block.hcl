class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target = "batch"
  when { # want: Blocks of type "when" are not expected here.
    signal = "memory.some.avg10"
    above  = "1%"
  }
}
