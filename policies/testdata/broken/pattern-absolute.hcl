class "abs" {
  match = ["/batch.slice"] # want: must be relative to the cgroup root
}
