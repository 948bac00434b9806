class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "r" {
  target  = "batch"
  goals   = "0.1%" # want: An argument named "goals" is not expected here. Did you mean "goal"?
}
