class "batch" {
  match = ["batch.slice/**"]
  match = ["other.slice/**"] # want: Attribute redefined
}
