class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
protect "p" {
  target     = "web"
  memory_low = ["1G"] # want: must be a string or a number
}
