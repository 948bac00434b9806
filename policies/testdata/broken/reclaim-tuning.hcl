class "batch" { match = ["batch.slice"] }
class "jobs" { match = ["jobs.slice"] }
reclaim "a" {
  target       = "batch"
  ramp         = "2x"  # want: ramp: "2x" is not a plain number
  futile_below = 0.1   # want: futile_below
  max_backoff  = 0     # want: max_backoff: 0 is out of range 1..1024
}
reclaim "b" {
  target       = "jobs"
  ramp         = 0.5     # want: 0.5 is out of range: 1 keeps the step fixed
  futile_below = "100%"  # want: 100% must be above 0% and below 100%
  max_backoff  = 2.5     # want: "2.5" is not a whole number
}
