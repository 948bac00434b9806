class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  hook   = [] # want: remove it to run none
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
