class "batch" {
  match   = ["batch.slice/**"]
  exclude = ["/init.scope"] # want: relative
}
