class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target       = "batch"
  hook_timeout = "3s" # want: hook_timeout bounds the hook command
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
