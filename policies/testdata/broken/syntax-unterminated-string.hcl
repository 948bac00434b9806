class "batch" {
  match = ["batch.slice/**] # want: Invalid multi-line string
}
