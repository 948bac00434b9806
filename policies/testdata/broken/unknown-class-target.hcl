class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target = "bacth" # want: There is no class named "bacth". Did you mean "batch"?
}
