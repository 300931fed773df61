# rexcsi with the loop backend as ONE Nomad CSI plugin of type monolith (controller and node in one task):
# the pool is on one host, and the controller's expand, snapshot and clone run losetup and fsfreeze there.
#   nomad job run rexcsi-loop.nomad.hcl
# Nomad sets CSI_ENDPOINT to the socket under mount_dir; rexcsi serves there. The node id is the Nomad node's
# name, so the topology rexcsi reports names the client Nomad schedules on (not the container's hostname).
# The Docker driver of that client must allow privileged containers and host volumes (client.hcl).
job "rexcsi-loop" {
  datacenters = ["dc1"]
  type        = "service"

  group "plugin" {
    count = 1

    # The host that holds the pool.
    constraint {
      attribute = "${node.unique.name}"
      value     = "storage-1"
    }

    task "plugin" {
      driver = "docker"

      config {
        image      = "rexcsi:0.1.0"
        args       = ["serve", "--mode", "both", "--backend", "loop", "--pool-dir", "/var/lib/rexcsi/pool", "--node-id", "${node.unique.name}"]
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
        type      = "monolith"
        mount_dir = "/csi"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
