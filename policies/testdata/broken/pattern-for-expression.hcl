class "escape" {
  match = [for s in ["batch.slice/../init.scope"] : s] # want: must be a list of quoted strings
}
