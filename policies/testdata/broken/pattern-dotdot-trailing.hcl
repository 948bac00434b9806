class "escape" {
  match = ["batch.slice/**/.."] # want: may not contain ".."
}
