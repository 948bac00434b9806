class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" { # want: reclaim "r" needs target
  goal = "0.1%"
}
