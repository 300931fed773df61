import { lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Backend, BlockSource, VolumeCapability, NodeSource } from '../backends/backend.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { faultPoint } from '../faults.js';
import { deriveCapabilities } from '../csi/capabilities.js';
import { fingerprint, type Inflight } from '../csi/inflight.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import {
  checkMap,
  isReadOnlyMode,
  parseCapability,
  parseCapacityRange,
  requirePath,
  requireString,
  unsupportedReason,
} from '../csi/validate.js';
import { blockDeviceSize, execMounter, filesystemType, formatIfBlank, volumeStats, type Mounter, type MountEntry } from '../os/index.js';
import { growFilesystemToDevice, isExt } from './grow.js';
import { createTarget, removeTarget, requireDirectory, requireLiteralPath } from './paths.js';
import { CallView } from './view.js';
import type { NodeHandlers } from '../csi/gen/csi/v1/Node.js';
import type { NodeStageVolumeRequest__Output } from '../csi/gen/csi/v1/NodeStageVolumeRequest.js';
import type { NodeStageVolumeResponse } from '../csi/gen/csi/v1/NodeStageVolumeResponse.js';
import type { NodeUnstageVolumeRequest__Output } from '../csi/gen/csi/v1/NodeUnstageVolumeRequest.js';
import type { NodeUnstageVolumeResponse } from '../csi/gen/csi/v1/NodeUnstageVolumeResponse.js';
import type { NodePublishVolumeRequest__Output } from '../csi/gen/csi/v1/NodePublishVolumeRequest.js';
import type { NodePublishVolumeResponse } from '../csi/gen/csi/v1/NodePublishVolumeResponse.js';
import type { NodeUnpublishVolumeRequest__Output } from '../csi/gen/csi/v1/NodeUnpublishVolumeRequest.js';
import type { NodeUnpublishVolumeResponse } from '../csi/gen/csi/v1/NodeUnpublishVolumeResponse.js';
import type { NodeGetVolumeStatsRequest__Output } from '../csi/gen/csi/v1/NodeGetVolumeStatsRequest.js';
import type { NodeGetVolumeStatsResponse } from '../csi/gen/csi/v1/NodeGetVolumeStatsResponse.js';
import type { NodeGetInfoResponse } from '../csi/gen/csi/v1/NodeGetInfoResponse.js';
import type { NodeGetCapabilitiesResponse } from '../csi/gen/csi/v1/NodeGetCapabilitiesResponse.js';
import type { _csi_v1_NodeServiceCapability_RPC_Type as RpcType } from '../csi/gen/csi/v1/NodeServiceCapability.js';
import type { VolumeCondition } from '../csi/gen/csi/v1/VolumeCondition.js';
import type { NodeExpandVolumeRequest__Output } from '../csi/gen/csi/v1/NodeExpandVolumeRequest.js';
import type { NodeExpandVolumeResponse } from '../csi/gen/csi/v1/NodeExpandVolumeResponse.js';

// The node service, for every backend: stage = make the volume present and (for mount volumes) put a
// filesystem on the staging path; publish = bind it to the target. Everything it knows about what is
// staged or published comes from the kernel (mount table, devices), so a restarted plugin carries on.
// Each call reads the mount table once and locates its volume once (a CallView), then decides from that.

export class NodeService {
  constructor(
    private readonly backend: Backend,
    private readonly inflight: Inflight,
    /** mount(2) directly or mount(8); tests run the service with each */
    readonly mounter: Mounter = execMounter,
  ) {}

  /** NodeGetCapabilities, from the backend's groups (src/csi/capabilities.ts). */
  capabilities(): RpcType[] {
    return deriveCapabilities(this.backend).node;
  }

  handlers(ctx: RpcContext): Partial<NodeHandlers> {
    return {
      NodeStageVolume: unary(ctx, 'NodeStageVolume', (r: NodeStageVolumeRequest__Output) => this.stage(r)),
      NodeUnstageVolume: unary(ctx, 'NodeUnstageVolume', (r: NodeUnstageVolumeRequest__Output) => this.unstage(r)),
      NodePublishVolume: unary(ctx, 'NodePublishVolume', (r: NodePublishVolumeRequest__Output) => this.publish(r)),
      NodeUnpublishVolume: unary(ctx, 'NodeUnpublishVolume', (r: NodeUnpublishVolumeRequest__Output) => this.unpublish(r)),
      NodeGetVolumeStats: unary(ctx, 'NodeGetVolumeStats', (r: NodeGetVolumeStatsRequest__Output) => this.stats(r), { quiet: true }),
      NodeGetCapabilities: unary(
        ctx,
        'NodeGetCapabilities',
        (): Promise<NodeGetCapabilitiesResponse> =>
          Promise.resolve({ capabilities: this.capabilities().map((type) => ({ rpc: { type } })) }),
        { quiet: true },
      ),
      NodeGetInfo: unary(ctx, 'NodeGetInfo', () => this.info(), { quiet: true }),
      ...(deriveCapabilities(this.backend).nodeRpcs.includes('NodeExpandVolume')
        ? { NodeExpandVolume: unary(ctx, 'NodeExpandVolume', (r: NodeExpandVolumeRequest__Output) => this.expand(r)) }
        : {}),
    };
  }

  async stage(req: NodeStageVolumeRequest__Output): Promise<NodeStageVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const staging = requirePath(req.staging_target_path, 'staging_target_path');
    const cap = this.supportedCapability(req.volume_capability);
    const args = {
      volumeId: id,
      publishContext: checkMap(req.publish_context, 'publish_context'),
      volumeContext: checkMap(req.volume_context, 'volume_context'),
      secrets: checkMap(req.secrets, 'secrets'),
      readOnly: isReadOnlyMode(cap.accessMode),
    };
    return this.inflight.run('NodeStageVolume', [`vol:${id}`], fingerprint('NodeStageVolume', req), async () => {
      const view = this.view(id);
      await inOrder(
        this.requireVolume(id),
        requireLiteralPath(staging, 'staging_target_path'),
        requireDirectory(staging, 'staging_target_path'),
        view.mounts(),
      );
      const stack = await view.stackAt(staging);
      const top = stack.at(-1);
      if (top) {
        if (!(await view.holds(top))) {
          throw alreadyExists(`staging_target_path ${staging} already has ${top.source} (${top.fsType}) mounted, not volume ${id}`);
        }
        if (!(await view.isDead(staging))) return {};
        // A dead network mount (its FUSE client was killed) never recovers: replace it, do not fail forever.
        await this.mounter.unmount(staging, stack);
      }
      const wasPresent = (await view.located()) !== undefined;
      const source = await this.backend.openVolume(args);
      await faultPoint('node.stage.after-open');
      if (cap.accessType === 'block') return {};
      try {
        await this.mountAtStaging(source, staging, cap, args.volumeContext, args.readOnly);
      } catch (e) {
        if (!wasPresent) await this.backend.closeVolume(id).catch(() => undefined); // leave nothing half-done
        throw e;
      }
      return {};
    });
  }

  async unstage(req: NodeUnstageVolumeRequest__Output): Promise<NodeUnstageVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const staging = requirePath(req.staging_target_path, 'staging_target_path');
    return this.inflight.run('NodeUnstageVolume', [`vol:${id}`], fingerprint('NodeUnstageVolume', req), async () => {
      const view = this.view(id);
      await inOrder(this.requireVolume(id), requireLiteralPath(staging, 'staging_target_path'), view.mounts());
      const stack = await view.stackAt(staging);
      const top = stack.at(-1);
      if (top && !(await view.holds(top))) {
        throw failedPrecondition(`staging_target_path ${staging} has ${top.source} mounted, not volume ${id}; not unmounting it`);
      }
      const located = await view.located();
      if (located?.kind === 'block') {
        const staged = resolve(staging);
        const published = (await view.mountsOfVolumeDevice()).filter((m) => m.mountPoint !== staged);
        if (published.length > 0) {
          throw failedPrecondition(
            `volume ${id} is still published at ${published.map((m) => m.mountPoint).join(', ')}; unpublish it first`,
          );
        }
      }
      await this.mounter.unmount(staging, stack);
      await faultPoint('node.unstage.after-unmount');
      await this.backend.closeVolume(id);
      await faultPoint('node.unstage.after-close');
      return {};
    });
  }

  async publish(req: NodePublishVolumeRequest__Output): Promise<NodePublishVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const target = requirePath(req.target_path, 'target_path');
    const staging = requirePath(req.staging_target_path, 'staging_target_path');
    const cap = this.supportedCapability(req.volume_capability);
    checkMap(req.publish_context, 'publish_context');
    checkMap(req.volume_context, 'volume_context');
    checkMap(req.secrets, 'secrets');
    const readOnly = req.readonly || isReadOnlyMode(cap.accessMode);
    return this.inflight.run('NodePublishVolume', [`vol:${id}`], fingerprint('NodePublishVolume', req), async () => {
      const view = this.view(id);
      await inOrder(
        this.requireVolume(id),
        requireLiteralPath(target, 'target_path'),
        requireLiteralPath(staging, 'staging_target_path'),
        view.mounts(),
      );
      const source = await this.publishSource(view, staging, cap);
      const stack = await view.stackAt(target);
      let top = stack.at(-1);
      if (top && (await view.holds(top)) && (await view.isDead(target))) {
        await this.mounter.unmount(target, stack); // bound from a mount that died; bind the repaired staging mount again
        top = undefined;
      }
      if (top) {
        const holds = await view.holds(top);
        if (holds && top.options.includes('ro') === readOnly) return {};
        throw alreadyExists(`target_path ${target} is already published${holds ? ` with readonly=${!readOnly}` : ` from ${top.source}`}`);
      }
      const created = await createTarget(target, cap.accessType === 'block' ? 'file' : 'directory');
      await faultPoint('node.publish.after-target');
      try {
        await this.mounter.bindMount(source, target, { readOnly });
      } catch (e) {
        if (created) await removeTarget(target).catch(() => undefined);
        throw e;
      }
      await faultPoint('node.publish.after-bind');
      return {};
    });
  }

  /** `keepTarget`: CSI v0 semantics, where the CO made the target directory and removes it itself. */
  async unpublish(req: NodeUnpublishVolumeRequest__Output, opts: { keepTarget?: boolean } = {}): Promise<NodeUnpublishVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const target = requirePath(req.target_path, 'target_path');
    return this.inflight.run('NodeUnpublishVolume', [`vol:${id}`], fingerprint('NodeUnpublishVolume', req), async () => {
      const view = this.view(id);
      await inOrder(this.requireVolume(id), requireLiteralPath(target, 'target_path'), view.mounts());
      const stack = await view.stackAt(target);
      const top = stack.at(-1);
      if (top && !(await view.holds(top))) {
        throw failedPrecondition(`target_path ${target} has ${top.source} mounted, not volume ${id}; not unmounting it`);
      }
      await this.mounter.unmount(target, stack);
      await faultPoint('node.unpublish.after-unmount');
      if (!opts.keepTarget) await removeTarget(target);
      return {};
    });
  }

  async stats(req: NodeGetVolumeStatsRequest__Output): Promise<NodeGetVolumeStatsResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const path = req.volume_path ?? '';
    if (path === '') throw invalidArgument('volume_path is required');
    await this.requireVolume(id);
    const view = this.view(id);
    const s = path.startsWith('/') ? await lstat(path).catch(() => undefined) : undefined;
    const dead = !s && path.startsWith('/') && (await view.isDead(path));
    const located = await view.located();
    const top = (await view.stackAt(path, false)).at(-1);
    if (dead) return { usage: [], volume_condition: await this.conditionAt(view, path, top) };
    if (!s) throw notFound(`volume_path ${JSON.stringify(path)} does not exist on this node`);
    const condition = await this.conditionAt(view, path, top);
    if (!s.isDirectory()) {
      const total = located?.kind === 'block' ? await blockDeviceSize(located.device).catch(() => 0) : s.size;
      return { usage: [{ unit: 'BYTES', total }], volume_condition: condition };
    }
    if (condition.abnormal) return { usage: [], volume_condition: condition };
    const st = await volumeStats(path);
    return {
      usage: [
        { unit: 'BYTES', total: st.totalBytes, available: st.availableBytes, used: st.usedBytes },
        { unit: 'INODES', total: st.totalInodes, available: st.freeInodes, used: st.usedInodes },
      ],
      volume_condition: condition,
    };
  }

  /**
   * After ControllerExpandVolume: the node's device learns its new size (backend.expand.refreshVolumeSize), then
   * the filesystem mounted at volume_path grows to fill it. A block volume only needs the device.
   */
  async expand(req: NodeExpandVolumeRequest__Output): Promise<NodeExpandVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    if (!req.volume_path) throw invalidArgument('volume_path is required');
    await this.requireVolume(id);
    const path = requirePath(req.volume_path, 'volume_path');
    const range = parseCapacityRange(req.capacity_range);
    if (req.volume_capability) this.supportedCapability(req.volume_capability);
    if (req.staging_target_path) requirePath(req.staging_target_path, 'staging_target_path');
    checkMap(req.secrets, 'secrets');
    return this.inflight.run('NodeExpandVolume', [`vol:${id}`], fingerprint('NodeExpandVolume', req), async () => {
      const view = this.view(id);
      const s = await lstat(path).catch(() => undefined);
      if (!s) throw notFound(`volume_path ${path} does not exist on this node`);
      const located = await view.located();
      if (!located) throw failedPrecondition(`volume ${id} is not staged on this node; stage it before expanding it here`);
      if (located.kind === 'filesystem') return { capacity_bytes: 0 }; // a shared filesystem grows on its server
      await this.backend.expand?.refreshVolumeSize?.(id);
      const deviceBytes = await blockDeviceSize(located.device);
      if (range.requiredBytes > deviceBytes) {
        throw failedPrecondition(
          `the device of volume ${id} is ${deviceBytes} bytes, less than the ${range.requiredBytes} asked for; call ControllerExpandVolume first`,
        );
      }
      if (!s.isDirectory()) return { capacity_bytes: deviceBytes };
      const top = (await view.stackAt(path, false)).at(-1);
      if (!top || !(await view.holds(top))) throw failedPrecondition(`volume ${id} is not mounted at ${path}`);
      await growFilesystemToDevice(located.device, path, top.fsType);
      return { capacity_bytes: deviceBytes };
    });
  }

  async info(): Promise<NodeGetInfoResponse> {
    const info = await this.backend.nodeInfo();
    return {
      node_id: info.nodeId,
      max_volumes_per_node: info.maxVolumesPerNode,
      accessible_topology: info.topology ? { segments: info.topology } : null,
    };
  }

  // ---- helpers

  private view(id: string): CallView {
    return new CallView(this.backend, id);
  }

  private supportedCapability(wire: NodeStageVolumeRequest__Output['volume_capability']): VolumeCapability {
    const cap = parseCapability(wire, 'volume_capability');
    const why = unsupportedReason(cap, this.backend.features);
    if (why) throw invalidArgument(why);
    return cap;
  }

  private async requireVolume(id: string): Promise<void> {
    if (!(await this.backend.volumeExists(id))) throw notFound(`volume ${JSON.stringify(id)} does not exist`);
  }

  private async mountAtStaging(
    source: NodeSource,
    staging: string,
    cap: VolumeCapability,
    context: Record<string, string>,
    readOnly: boolean,
  ): Promise<void> {
    const flags = [...cap.mountFlags, ...(readOnly ? ['ro'] : [])];
    if (source.kind === 'filesystem') {
      await this.mounter.mount(source.source, staging, source.fsType, [...source.options, ...flags]);
      return;
    }
    const fsType = cap.fsType || source.fsType || context.fsType || this.backend.features.defaultFsType;
    const formatted = await this.ensureFilesystem(source, fsType);
    // A snapshot restore or clone carries its source's xfs UUID, and xfs refuses to mount a second
    // filesystem with a UUID already mounted; nouuid lets the copy mount beside its source.
    if (fsType === 'xfs' && !flags.includes('nouuid')) flags.push('nouuid');
    await faultPoint('node.stage.after-format');
    // A volume that grew while not mounted (expanded, or cloned larger than its source) gets its
    // filesystem grown here: ext* before the mount (needs no CAP_SYS_RESOURCE), xfs right after it.
    const mayGrow = !formatted && !readOnly;
    if (mayGrow && isExt(fsType)) await growFilesystemToDevice(source.device, undefined, fsType);
    await this.mounter.mount(source.device, staging, fsType, flags);
    await faultPoint('node.stage.after-mount');
    if (mayGrow && fsType === 'xfs') {
      await growFilesystemToDevice(source.device, staging, fsType).catch(async (e: unknown) => {
        await this.mounter.unmount(staging).catch(() => undefined);
        throw e;
      });
    }
  }

  /** Formats only a blank device of a volume made for mount access; anything else must already be fsType. */
  private async ensureFilesystem(source: BlockSource, fsType: string): Promise<boolean> {
    if (source.mayFormat) {
      if (fsType !== 'ext4' && fsType !== 'xfs') throw invalidArgument(`cannot format a volume as ${fsType}; ext4 and xfs are supported`);
      return (await formatIfBlank(source.device, fsType)) === 'formatted';
    }
    const found = await filesystemType(source.device);
    if (found === undefined) {
      throw failedPrecondition(
        `${source.device} holds no filesystem and this volume was not created for mount access; refusing to format it`,
      );
    }
    if (found !== fsType) throw failedPrecondition(`${source.device} holds ${found}, not ${fsType}; refusing to reformat it`);
    return false;
  }

  /** What NodePublish binds to the target: the staging mount, or the device itself for block access. */
  private async publishSource(view: CallView, staging: string, cap: VolumeCapability): Promise<string> {
    const id = view.id;
    if (cap.accessType === 'block') {
      const located = await view.located();
      if (located?.kind !== 'block') throw failedPrecondition(`volume ${id} is not staged on this node; call NodeStageVolume first`);
      return located.device;
    }
    const top = (await view.stackAt(staging)).at(-1);
    if (!top || !(await view.holds(top))) {
      throw failedPrecondition(`volume ${id} is not staged at ${staging}; call NodeStageVolume first`);
    }
    if (await view.isDead(staging))
      throw failedPrecondition(`the mount of volume ${id} at ${staging} is dead; call NodeStageVolume to repair it`);
    return staging;
  }

  private async conditionAt(view: CallView, path: string, top: MountEntry | undefined): Promise<VolumeCondition> {
    const id = view.id;
    if (!(await view.located()))
      return { abnormal: true, message: `volume ${id} is not attached to this node (its device is gone); stage it again` };
    if (!top) return { abnormal: true, message: `nothing is mounted at ${path}: the mount was lost; unpublish and publish again` };
    if (!(await view.holds(top))) return { abnormal: true, message: `${path} has ${top.source} mounted, not volume ${id}` };
    if (await view.isDead(path)) {
      return {
        abnormal: true,
        message: `the mount at ${path} is dead (transport endpoint is not connected: its client process is gone); NodeStageVolume repairs it, then publish again`,
      };
    }
    if (top.superOptions.includes('ro') && !top.options.includes('ro')) {
      return {
        abnormal: true,
        message: `the filesystem at ${path} was remounted read-only after errors; check the kernel log and fsck the volume`,
      };
    }
    return (await this.backend.mountCondition?.(id, path)) ?? { abnormal: false, message: 'volume is healthy' };
  }
}

/**
 * Runs independent checks at once, then fails with the first failure in the order given, as if they had
 * run one after another: a missing volume is NOT_FOUND whatever is wrong with the paths.
 */
async function inOrder(...checks: Promise<unknown>[]): Promise<void> {
  for (const outcome of await Promise.allSettled(checks)) if (outcome.status === 'rejected') throw outcome.reason;
}
