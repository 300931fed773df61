# rexcsi controller plugin for Nomad: `nomad job run rexcsi-controller.nomad.hcl`.
# Nomad sets CSI_ENDPOINT to the socket under mount_dir; rexcsi serves there.
# With the loop backend, the controller must run on the host that holds the pool (the node job's hosts):
# set the constraint below to that host.
job "rexcsi-controller" {
  datacenters = ["dc1"]
  type        = "service"

  group "controller" {
    count = 1

    constraint {
      attribute = "${attr.unique.hostname}"
      value     = "storage-1"
    }

    task "plugin" {
      driver = "docker"

      config {
        image = "rexcsi:0.1.0"
        args  = ["serve", "--mode", "controller", "--backend", "loop", "--pool-dir", "/var/lib/rexcsi/pool", "--metrics-address", ":9808"]
        ports = ["metrics"]

        mount {
          type   = "bind"
          source = "/var/lib/rexcsi"
          target = "/var/lib/rexcsi"
        }
      }

      csi_plugin {
        id        = "rexcsi"
        type      = "controller"
        mount_dir = "/csi"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    network {
      port "metrics" {
        to = 9808
      }
    }
  }
}
