# rexcsi plugin image: Node.js 24 (LTS; package.json keeps engines >= 20) on Debian 12, with every program
# the plugin runs, tini as PID 1, and amazon-efs-utils for EFS over TLS.
#   docker build -t rexcsi:0.1.0 .
#   docker run --privileged -v /csi:/csi -e CSI_ENDPOINT=unix:///csi/csi.sock rexcsi:0.1.0 serve --mode node
# test/unit/packaging.test.ts checks what this file copies and installs (docs/packaging.md says what it
# does not: no image is built in CI).
# Programs that are not in a Debian package of the test machine, with the package that provides each here:
# program mount.efs: amazon-efs-utils
# program mount.nfs: nfs-common
# program mount.nfs4: nfs-common

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY proto ./proto
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# amazon-efs-utils (mount.efs, the TLS tunnel through stunnel) is not in Debian: build its .deb from the
# release's source. 1.36.0 is the last release without the Rust efs-proxy, so no toolchain is needed.
FROM debian:bookworm-slim AS efs-utils
ARG EFS_UTILS_VERSION=1.36.0
ADD https://github.com/aws/efs-utils/archive/refs/tags/v${EFS_UTILS_VERSION}.tar.gz /tmp/efs-utils.tar.gz
WORKDIR /tmp/efs-utils
RUN tar -xzf /tmp/efs-utils.tar.gz --strip-components=1 && ./build-deb.sh && cp build/amazon-efs-utils*.deb /tmp/amazon-efs-utils.deb

FROM node:24-bookworm-slim
# e2fsprogs: mkfs.ext4, e2fsck, resize2fs, dumpe2fs; xfsprogs: mkfs.xfs, xfs_growfs, xfs_info; util-linux:
# blkid, wipefs, blockdev, fsfreeze; mount: mount, umount, losetup; attr: getfattr, setfattr; glusterfs-client:
# mount.glusterfs; glusterfs-cli: gluster (the glusterfs controller); nfs-common: mount.nfs4 (efs);
# stunnel4, python3, openssl: what amazon-efs-utils' mount.efs needs for TLS; tini: reaps the FUSE and
# mount helpers the plugin leaves to PID 1.
COPY --from=efs-utils /tmp/amazon-efs-utils.deb /tmp/amazon-efs-utils.deb
# Debian 12's own versions: pinning them would break the build at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount attr glusterfs-client glusterfs-cli \
    nfs-common stunnel4 python3 openssl tini ca-certificates /tmp/amazon-efs-utils.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/amazon-efs-utils.deb
WORKDIR /opt/rexcsi
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
RUN chmod 0755 /opt/rexcsi/dist/main.js && ln -s /opt/rexcsi/dist/main.js /usr/local/bin/rexcsi
ENV CSI_ENDPOINT=unix:///csi/csi.sock
ENTRYPOINT ["/usr/bin/tini", "--", "rexcsi"]
CMD ["serve"]
