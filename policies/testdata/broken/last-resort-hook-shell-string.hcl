class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  hook   = ["/usr/bin/logger hello"] # want: give the program and its arguments as separate list elements
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
