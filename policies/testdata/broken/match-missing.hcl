class "c" { # want: class "c" needs match
  protected = true
}
