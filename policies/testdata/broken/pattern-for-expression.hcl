class "escape" {
  match = [for s in ["batch.slice/../init.scope"] : s] # want: For expressions not allowed
}
