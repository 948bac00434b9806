class "batch" {
  match   = ["batch.slice/**"]
  exclude = ["../init.scope"] # want: may not contain ".."
}
