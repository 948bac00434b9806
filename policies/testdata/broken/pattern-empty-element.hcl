class "empty" {
  match = ["batch.slice//x"] # want: empty path element
}
