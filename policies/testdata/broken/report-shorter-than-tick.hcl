governor {
  tick         = "10s"
  report_every = "5s" # want: must not be shorter than tick
}
