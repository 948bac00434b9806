governor {
  tick = "10ms" # want: tick must be from 100ms to 1m
}
