class "x" {
  match = ["batch.slice/${env.HOME}"] # want: no variables
}
