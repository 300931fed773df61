#!/usr/bin/env bash
# The floor: one volume's life done with the bare commands, grouped like the plugin's RPCs, each group
# timed with bash's EPOCHREALTIME (no extra fork to read the clock). Prints "<phase> <microseconds>" lines.
#   floor.sh IMAGE STAGING_DIR TARGET_DIR SIZE_BYTES MKFS_OPTION...
# The benchmark passes the plugin's own mkfs.ext4 options (src/os/format.ts MKFS_ARGS) so the work is the same.
set -euo pipefail
export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
img=$1 staging=$2 target=$3 size=$4
shift 4

t=${EPOCHREALTIME/./}
lap() { # lap PHASE: prints the time since the previous lap
  local now=${EPOCHREALTIME/./}
  echo "$1 $((now - t))"
  t=$now
}

truncate -s "$size" "$img"
lap create

dev=$(losetup --find --show "$img")
rc=0; blkid --probe "$dev" >/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "floor: $dev is not blank (blkid exit $rc)" >&2; exit 1; }
mkfs.ext4 "$@" "$dev"
mount -t ext4 "$dev" "$staging"
lap stage

mkdir "$target"
mount --bind "$staging" "$target"
lap publish

umount "$target"
rmdir "$target"
lap unpublish

umount "$staging"
losetup --detach "$dev"
lap unstage

rm -f "$img"
lap delete
