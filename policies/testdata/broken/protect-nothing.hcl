class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
protect "p" { # want: protect "p" needs memory_low, memory_min or both
  target = "web"
}
