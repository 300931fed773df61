# The part of the Nomad client configuration the rexcsi plugin job needs (e.g. /etc/nomad.d/docker.hcl).
# A CSI node plugin must run privileged, and its bind mounts of the host's /dev and pool need host volumes.
plugin "docker" {
  config {
    allow_privileged = true

    volumes {
      enabled = true
    }
  }
}
