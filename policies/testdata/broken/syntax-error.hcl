class "c" {
  match = ["a.slice"
} # want: Missing item separator
