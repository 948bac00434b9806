# Proactive reclaim in the senpai / TMO style: keep squeezing a workload's
# memory just hard enough that it barely notices, so idle page cache and cold
# anonymous memory go back to the machine (or to swap / zswap) before anyone
# needs them.
#
# Every `interval`, for every cgroup of the target class: if the cgroup's
# memory pressure is below `goal`, ask the kernel to reclaim `step` of its
# memory.current (at most `max_step`), less as pressure nears the goal; at or
# above the goal, back off and reclaim nothing. Cgroups using less than
# `min_size` are left alone.

class "containers" {
  # Containers of Kubernetes burstable and best-effort pods, and plain docker
  # containers. Guaranteed pods (kubepods-pod*.slice) are left alone.
  match = [
    "kubepods.slice/kubepods-burstable.slice/**/cri-containerd-*.scope",
    "kubepods.slice/kubepods-besteffort.slice/**/cri-containerd-*.scope",
    "system.slice/docker-*.scope",
  ]
}

reclaim "containers-footprint" {
  target   = "containers"
  signal   = "memory.some.stall" # the default: reacts within one tick
  goal     = "0.1%"              # the default: 6 ms of stall per 6 s
  interval = "6s"                # the default
  step     = "1%"                # the default; or a size such as "16MiB"
  max_step = "64MiB"             # the default
  min_size = "128MiB"            # the default
}
