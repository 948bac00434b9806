class "c" {
  match     = ["a.slice"]
  protected = "yes" # want: protected must be true or false
}
