class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  hook   = ["notify.sh", "x"] # want: must be an absolute path
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
