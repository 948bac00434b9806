class "batch" { match = ["batch.slice/**"] }
class "web" {
  match     = ["system.slice/web.service"]
  protected = true
}
class "batch" { # want: Class "batch" is already declared at broken/duplicate-class.hcl:1
  match = ["other.slice"]
}
