class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
reclaim "same" { target = "batch" }
protect "same" { # want: protect "same" has the same name as reclaim "same" (broken/duplicate-controller.hcl:6)
  target     = "web"
  memory_low = "1GiB"
}
