#!/usr/bin/env bash
# Runs a command in private mount and PID namespaces where the whole filesystem is read-only except /dev,
# /proc, /sys and the directories in SANDBOX_RW (colon-separated). scripts/test.sh runs the hostile-input and
# crash suites in it: a plugin that follows a hostile path outside its roots (`../../etc`) or a crash test
# that goes wrong then fails on a read-only filesystem instead of damaging the machine, and every process
# started inside (plugins, glusterd, FUSE clients, moto_server) dies with the command.
#
#   SANDBOX_RW="$PWD:/tmp" bash scripts/sandbox.sh npx vitest run test/hostile
#
# Needs root and unshare(1) from util-linux. Mounts made inside vanish with the mount namespace; loop devices
# do not (they are global), so callers still audit those. Exit status: the command's, or 125 when the
# sandbox itself could not be set up.
set -euo pipefail

die() {
  echo "sandbox.sh: $*" >&2
  exit 125
}

if [ "${REXCSI_SANDBOX_INNER:-}" != 1 ]; then
  [ "$#" -gt 0 ] || die "usage: SANDBOX_RW=dir[:dir...] $0 COMMAND [ARG...]"
  [ "$(id -u)" = 0 ] || die "must run as root (it makes mount and PID namespaces and remounts the filesystem read-only inside them)"
  command -v unshare >/dev/null || die "unshare not found: install util-linux"
  IFS=: read -ra rw <<<"${SANDBOX_RW:-}"
  for d in "${rw[@]}"; do
    [ -z "$d" ] || [ -d "$d" ] || die "SANDBOX_RW names $d, which is not a directory (create it first)"
  done
  # --kill-child: if unshare is killed (a timeout), the namespace's init and with it every process inside dies.
  exec unshare --mount --propagation private --pid --fork --mount-proc --kill-child \
    env REXCSI_SANDBOX_INNER=1 bash "$0" "$@"
fi
unset REXCSI_SANDBOX_INNER

# Inside: this shell is PID 1 of the new PID namespace. Every mount is copied; make each one read-only, the
# top-level directories first (they must succeed), then whatever is mounted below them.
for d in /*; do
  case "$d" in /dev | /proc | /sys) continue ;; esac
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  mount --rbind "$d" "$d" || die "cannot bind $d"
  mount -o remount,bind,ro "$d" || die "cannot make $d read-only"
done
mount -o remount,bind,ro / || die "cannot make / read-only"
while read -r target; do
  target=$(printf '%b' "$target") # findmnt escapes spaces as \x20
  case "$target" in /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;; esac
  mount -o remount,bind,ro "$target" 2>/dev/null || true # some filesystems refuse; the top-level copy above is read-only
done < <(findmnt --list --noheadings --output TARGET)

IFS=: read -ra rw <<<"${SANDBOX_RW:-}"
for d in "${rw[@]}"; do
  [ -n "$d" ] || continue
  mount --bind "$d" "$d" || die "cannot bind $d"
  mount -o remount,bind,rw "$d" || die "cannot make $d writable"
done

# The working directory was entered before the binds: enter it again, or relative paths stay on the read-only copy.
cd "$PWD"

# Refuse to run the command if the sandbox did not take (a writable / would defeat its purpose).
probe=/.rexcsi-sandbox-probe-$$
if touch "$probe" 2>/dev/null; then
  rm -f "$probe"
  die "/ is still writable inside the sandbox; not running $1"
fi

# Run the command as a child, not with exec: as PID 1 this shell reaps orphans (glusterd daemonizes) and
# passes SIGTERM/SIGINT on, which the command would otherwise ignore as PID 1.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
status=0
wait "$child" || status=$?
# A signal interrupted wait: wait for the command itself to finish.
while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
exit "$status"
