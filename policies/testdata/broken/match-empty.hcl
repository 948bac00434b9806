class "c" {
  match = [] # want: match needs at least one pattern
}
