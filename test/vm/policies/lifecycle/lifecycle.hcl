# Scenario "lifecycle": protect sets memory.low on a service; the governor
# must put the original value back when it stops or is restarted.
governor {
  tick = "1s"
}

class "svc" {
  match = ["vmtest/lifecycle/svc"]
}

protect "svc-low" {
  target     = "svc"
  memory_low = "200MiB"
}
