class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when {
    signal = "memory.full.avg10"
    above  = "140%" # want: can never exceed 100%
  }
}
