# rexcsi node plugin for Nomad, on every client: `nomad job run rexcsi-node.nomad.hcl`.
# Privileged, with the host's /dev, so it can attach loop devices, format and mount; Nomad bind-mounts the
# results into tasks.
job "rexcsi-node" {
  datacenters = ["dc1"]
  type        = "system"

  group "node" {
    task "plugin" {
      driver = "docker"

      config {
        image      = "rexcsi:0.1.0"
        args       = ["serve", "--mode", "node", "--backend", "loop", "--pool-dir", "/var/lib/rexcsi/pool", "--log-format", "json"]
        privileged = true

        mount {
          type   = "bind"
          source = "/var/lib/rexcsi"
          target = "/var/lib/rexcsi"
          bind_options {
            propagation = "rshared"
          }
        }

        mount {
          type   = "bind"
          source = "/dev"
          target = "/dev"
        }
      }

      csi_plugin {
        id        = "rexcsi"
        type      = "node"
        mount_dir = "/csi"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
