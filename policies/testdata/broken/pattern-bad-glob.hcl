class "glob" {
  match   = ["batch.slice/**"]
  exclude = ["batch.slice/[a-"] # want: bad element
}
