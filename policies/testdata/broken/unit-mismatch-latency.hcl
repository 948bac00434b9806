class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when {
    signal = "runq.p99"
    above  = "5%" # want: "5%" is a percentage, but runq.p99 is measured in seconds
  }
}
