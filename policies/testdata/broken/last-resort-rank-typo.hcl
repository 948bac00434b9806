class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  rank   = "swapp" # want: Did you mean "swap"?
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
