class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" { # want: needs at least one when block
  target = "batch"
}
