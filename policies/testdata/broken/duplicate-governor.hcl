governor { tick = "1s" }
governor { # want: the first is at broken/duplicate-governor.hcl:1
  tick = "2s"
}
