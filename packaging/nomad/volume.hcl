# A volume for the rexcsi plugin: `nomad volume create volume.hcl`, then in a job's group:
#
#   volume "data" {
#     type            = "csi"
#     source          = "data"
#     access_mode     = "single-node-writer"
#     attachment_mode = "file-system"
#   }
id        = "data"
name      = "data"
type      = "csi"
plugin_id = "rexcsi"

capacity_min = "1GiB"
capacity_max = "1GiB"

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

mount_options {
  fs_type = "ext4"
}
