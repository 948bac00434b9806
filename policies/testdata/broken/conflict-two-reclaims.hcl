class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "a" { target = "batch" }
reclaim "b" {
  target = "batch" # want: both write memory.reclaim of class "batch"
}
