class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target = "batch"
  goal   = "0%" # want: it must be above 0%
}
