class "batch" {
  match = ["batch.slice/ÿþ"] # want: Invalid character encoding
}
