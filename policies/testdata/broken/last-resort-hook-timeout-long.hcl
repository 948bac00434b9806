class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target       = "batch"
  hook         = ["/usr/bin/logger", "freezing"]
  hook_timeout = "1m" # want: hook_timeout is at most 10s
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
