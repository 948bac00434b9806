class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target = batch # want: Policy files have no variables
}
