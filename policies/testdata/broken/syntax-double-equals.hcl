class "batch" {
  match == ["batch.slice/**"] # want: Argument or block definition required
}
