class "web app" { # want: "web app" is not a valid class name
  match = ["a.slice"]
}
