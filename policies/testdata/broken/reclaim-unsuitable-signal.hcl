class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target = "batch"
  signal = "runq.p99" # want: runq.p99 is measured in seconds, not percent
}
