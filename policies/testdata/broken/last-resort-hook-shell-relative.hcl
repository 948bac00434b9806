class "batch" { match = ["batch.slice/*"] }
last_resort "lr" {
  target = "batch"
  hook   = ["notify-send froze | logger"] # want: it is run without a shell
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }
}
