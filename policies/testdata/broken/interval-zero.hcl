class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target   = "batch"
  interval = "0s" # want: interval must be longer than 0
}
