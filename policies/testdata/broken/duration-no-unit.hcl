class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target   = "batch"
  interval = 6 # want: "6" has no unit
}
