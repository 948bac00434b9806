governor {
  tick         = "500ms"
  report_every = "30s"
}

class "web" {
  match     = ["system.slice/web.service", "system.slice/nginx.service"]
  exclude   = ["system.slice/web.service/debug"]
  protected = true
}

class "batch" {
  match = ["batch.slice/**"]
}

class "misc" {
  match = ["misc.slice/*"]
}

protect "web-memory" {
  target     = "web"
  memory_low = "2GiB"
  memory_min = "512MiB"
}

reclaim "batch-footprint" {
  target   = "batch"
  signal   = "memory.some.avg10"
  goal     = "0.2%"
  interval = "3s"
  step     = "16MiB"
  max_step = "max"
  min_size = "1G"
}

memory_high "batch-high" {
  target            = "batch"
  step              = "64MiB"
  headroom          = "128MiB"
  max_below_current = "32MiB"
  min               = "256MiB"
  max               = "8GiB"
  cooldown          = "15s"
  max_per_minute    = 4

  when {
    signal = "memory.full.avg10"
    above  = "5%"
    for    = "5s"
  }
  when {
    signal = "memory.events.high"
    above  = "100/s"
  }
  recover {
    signal = "memory.full.avg10"
    below  = "1%"
    for    = "20s"
  }
  relax {
    signal = "memory.some.avg10"
    below  = "0.5%"
    for    = "30s"
  }
  relax {
    signal = "memory.current"
    below  = "4GiB"
  }
}

suppress "protect-web-latency" {
  target         = "batch"
  max_per_minute = 10
  when {
    class  = "web"
    signal = "cpu.some.avg10"
    above  = "10%"
    for    = "5s"
  }
  recover {
    class  = "web"
    signal = "cpu.some.avg10"
    below  = "2%"
    for    = "30s"
  }
  knob "cpu.weight" {
    step     = "50%"
    min      = 1
    cooldown = "5s"
  }
  knob "cpu.max" {
    step     = 0.5
    min      = 0.2
    cooldown = "2s"
  }
  knob "io.weight" {}
}

last_resort "runaway-batch" {
  target = "batch"
  grace  = "20s"
  kill   = true
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
    for    = "10s"
  }
  recover {
    host   = true
    signal = "memory.full.avg10"
    below  = "10%"
  }
}

rule "misc-cpu" {
  target         = "misc"
  knob           = "cpu.max"
  direction      = "down"
  step           = "20%"
  min            = 0.5
  max            = 4
  cooldown       = "10s"
  max_per_minute = 6
  when {
    class  = "web"
    signal = "runq.p99"
    above  = "5ms"
    for    = "3s"
  }
  when {
    signal = "cpu.usage"
    above  = 3.5
  }
}

rule "misc-memory" {
  target    = "misc"
  knob      = "memory.max"
  direction = "down"
  step      = "256MiB"
  min       = "1GiB"
  when {
    host   = true
    signal = "memory.some.avg60"
    above  = "20%"
  }
}
