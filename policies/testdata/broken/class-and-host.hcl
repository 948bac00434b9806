class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when {
    class  = "web"
    host   = true # want: not both
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
