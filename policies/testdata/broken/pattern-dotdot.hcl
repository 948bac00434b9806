class "escape" {
  match = ["batch.slice/../system.slice"] # want: may not contain ".."
}
