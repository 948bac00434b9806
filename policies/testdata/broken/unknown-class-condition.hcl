class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when {
    class  = "db" # want: There is no class named "db".
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
