class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  hook   = "/usr/bin/logger" # want: must be a list of quoted strings
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
