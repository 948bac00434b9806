# Scenario "reclaim": proactive reclaim of a cgroup whose memory is mostly
# cold page cache, keeping its memory pressure under a 1% goal.
governor {
  tick = "1s"
}

class "app" {
  match = ["vmtest/reclaim/app"]
}

reclaim "app-cold" {
  target   = "app"
  signal   = "memory.some.avg10"
  goal     = "1%"
  interval = "2s"
  step     = "10%"
  max_step = "128MiB"
  min_size = "64MiB"
}
