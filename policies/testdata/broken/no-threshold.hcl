class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
last_resort "lr" {
  target = "batch"
  when { # want: needs above or below
    signal = "memory.full.avg10"
  }
}
