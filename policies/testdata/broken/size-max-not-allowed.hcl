class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target   = "batch"
  min_size = "max" # want: min_size cannot be "max"
}
