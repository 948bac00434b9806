class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
protect "p" {
  target     = "web"
  memory_low = env("SECRET") # want: cannot call functions
}
