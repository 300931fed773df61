# rexcsi plugin image: Node 20 slim plus the filesystem and mount tools the OS layer runs.
#   docker build -t rexcsi:0.1.0 .
#   docker run --privileged -v /csi:/csi -e CSI_ENDPOINT=unix:///csi/csi.sock rexcsi:0.1.0 serve --mode node
# (test/unit/packaging.test.ts checks that what this file copies and runs exists in the package.)

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY proto ./proto
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-slim
# e2fsprogs: mkfs.ext4, e2fsck, resize2fs; xfsprogs: mkfs.xfs, xfs_growfs; util-linux: blkid, wipefs, blockdev,
# fsfreeze; mount: mount, umount, losetup; glusterfs-client and nfs-common: mount helpers for glusterfs and efs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount glusterfs-client nfs-common ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/rexcsi
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
RUN chmod 0755 /opt/rexcsi/dist/main.js && ln -s /opt/rexcsi/dist/main.js /usr/local/bin/rexcsi
ENV CSI_ENDPOINT=unix:///csi/csi.sock
ENTRYPOINT ["rexcsi"]
CMD ["serve"]
