class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
protect "p" {
  target     = "web"
  memory_low = 0 # want: memory_low must be above 0
}
