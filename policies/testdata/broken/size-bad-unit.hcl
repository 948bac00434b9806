class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target   = "batch"
  max_step = "64mb" # want: unknown size unit "mb"
}
