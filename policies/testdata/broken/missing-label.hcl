class { # want: Missing name for class
  match = ["a.slice"]
}
