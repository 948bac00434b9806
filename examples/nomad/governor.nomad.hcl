# governor on every Nomad client, as a system job, with a sidecar task that
# publishes the node's admission verdict as dynamic node metadata
# (meta.governor_accepting = "true" / "false"). Batch jobs constrain on it:
#
#   constraint {
#     attribute = "${meta.governor_accepting}"
#     operator  = "!="
#     value     = "false"
#   }
#
# The binary is expected at /usr/local/bin/governor on every client
# (`make install` without enabling the unit; the Debian package instead
# runs /usr/bin/governor as governor.service, and only one daemon may
# govern a cgroup hierarchy: use one or the other); raw_exec must be enabled in the client configuration
# (plugin "raw_exec" { config { enabled = true } }). The sidecar needs a
# Nomad ACL token with node:write in NOMAD_TOKEN (a Nomad variable or
# Vault secret; left out here). See docs/OPERATIONS.md, "Admission".
job "governor" {
  type     = "system"
  priority = 90

  group "governor" {
    restart {
      attempts = 10
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "governor" {
      driver = "raw_exec" # root on the host: cgroups, BPF, systemd's D-Bus

      config {
        command = "/usr/local/bin/governor"
        args = [
          "run", "--log-json",
          "--config", "${NOMAD_TASK_DIR}/node.hcl",
          "--state-dir", "/run/governor",
        ]
      }

      # SIGTERM: restore every changed knob, thaw anything frozen, exit 0.
      kill_signal  = "SIGTERM"
      kill_timeout = "45s"

      template {
        destination = "local/node.hcl"
        perms       = "0644" # the governor refuses group/world-writable policies
        change_mode = "signal"
        change_signal = "SIGHUP" # reload; a broken policy keeps the running one
        data        = <<-EOF
          # Nomad (exec, raw_exec, java: tasks whose cgroup Nomad itself
          # makes) names a task's cgroup <alloc-id>.<task>.scope on cgroup
          # v2: under nomad.slice in Nomad 1.3-1.6, under
          # nomad.slice/share.slice (or reserve.slice for tasks with
          # resources.cores) from 1.7 on. The job name is not in it: the
          # task name is the suffix. Here services are tasks named svc-*,
          # batch tasks batch-* (adapt); others, this job's included, are
          # in no class and never touched. The alloc id is a UUID, so a
          # task named "x.svc-y" is not taken for "svc-y".
          class "services" {
            match = [
              "nomad.slice/????????-????-????-????-????????????.svc-*.scope",
              "nomad.slice/*.slice/????????-????-????-????-????????????.svc-*.scope",
              "system.slice/*.service",
            ]
            protected = true
          }
          class "batch" {
            match = [
              "nomad.slice/????????-????-????-????-????????????.batch-*.scope",
              "nomad.slice/*.slice/????????-????-????-????-????????????.batch-*.scope",
            ]
          }
          suppress "batch-yields-cpu" {
            target = "batch"
            when {
              class  = "services"
              signal = "cpu.some.avg10"
              above  = "10%"
              for    = "5s"
            }
            recover {
              class  = "services"
              signal = "cpu.some.avg10"
              below  = "2%"
              for    = "30s"
            }
            knob "cpu.weight" {
              step     = "50%"
              min      = 1
              cooldown = "5s"
            }
          }
          admission {
            when {
              class  = "services"
              signal = "memory.some.avg10"
              above  = "10%"
              for    = "10s"
            }
            when {
              host   = true
              signal = "cpu.some.avg10"
              above  = "20%"
              for    = "10s"
            }
            recover {
              class  = "services"
              signal = "memory.some.avg10"
              below  = "5%"
              for    = "30s"
            }
            recover {
              host   = true
              signal = "cpu.some.avg10"
              below  = "10%"
              for    = "30s"
            }
          }
        EOF
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "admission-meta" {
      driver = "raw_exec"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        command = "/bin/sh"
        args = ["-c", <<-EOF
          # 0: accepting, 1: not accepting, 2: no answer (leave as is).
          last=
          while true; do
            governor_rc=0
            /usr/local/bin/governor admission >/dev/null 2>&1 || governor_rc=$?
            case $governor_rc in
            0) v=true ;;
            1) v=false ;;
            *) v= ;;
            esac
            if [ -n "$v" ] && [ "$v" != "$last" ]; then
              nomad node meta apply governor_accepting=$v && last=$v
            fi
            sleep 15
          done
        EOF
        ]
      }

      resources {
        cpu    = 20
        memory = 32
      }
    }
  }
}
