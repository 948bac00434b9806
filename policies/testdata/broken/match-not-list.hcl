class "c" {
  match = "batch.slice/**" # want: must be a list of quoted strings
}
