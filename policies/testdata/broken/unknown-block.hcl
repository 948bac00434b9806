class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
throttle "t" { # want: Blocks of type "throttle" are not expected here.
  target = "batch"
}
