class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
protect "p" {
  target     = "web"
  memory_low = file("/etc/shadow") # want: Policy files cannot call functions
}
