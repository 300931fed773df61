// Data safety: NodeStageVolume never formats a device that carries a signature the plugin did not write
// (another filesystem, a partition table, LUKS, swap), and a volume whose metadata is damaged is reported as
// abnormal and refused, never recreated over its data.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachLoopDevice, detachLoopDevice, probeSignatures, readMountInfo, run } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { isUnder } from '../helpers/leaks.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { loopFiles } from './backends.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function headOf(path: string, bytes = 4 * MiB): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, 0);
    return sha256(buf);
  } finally {
    await fh.close();
  }
}

// A minimal LUKS1 header (as in test/integration/os.test.ts): cryptsetup is not installed here, and the
// magic, version, cipher and UUID are what blkid recognises.
async function writeLuks1Header(device: string): Promise<void> {
  const header = Buffer.alloc(592);
  Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0x00, 0x01]).copy(header, 0);
  header.write('aes', 8);
  header.write('xts-plain64', 40);
  header.write('sha256', 72);
  header.write('0b5e1c3e-1111-4222-8333-444455556666', 168);
  const fh = await open(device, 'r+');
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const FOREIGN: { kind: string; bytes: number; write: (device: string) => Promise<void>; expect: RegExp }[] = [
  { kind: 'xfs filesystem', bytes: 300 * MiB, write: (d) => run('mkfs.xfs', ['-q', d]).then(() => undefined), expect: /xfs/ },
  {
    kind: 'dos partition table',
    bytes: 32 * MiB,
    write: (d) => run('sfdisk', ['--quiet', '--no-reread', d], { input: 'label: dos\n,,L\n' }).then(() => undefined),
    expect: /dos|partition/,
  },
  {
    kind: 'gpt partition table',
    bytes: 32 * MiB,
    write: (d) => run('sfdisk', ['--quiet', '--no-reread', d], { input: 'label: gpt\n,,L\n' }).then(() => undefined),
    expect: /gpt|partition/,
  },
  { kind: 'LUKS header', bytes: 32 * MiB, write: writeLuks1Header, expect: /crypto_LUKS/ },
  { kind: 'swap', bytes: 32 * MiB, write: (d) => run('mkswap', [d]).then(() => undefined), expect: /swap/ },
];

// The loop backend's own files (its metadata and image) are what this suite damages: loop only.
describe('data safety (loop backend)', () => {
  const backend = loopFiles;
  let plugin: PluginProcess;
  let csi: CsiClients;
  let staging: string;
  const cap = mountCapability('ext4');

  beforeAll(async () => {
    plugin = await startPlugin({ name: 'safety' });
    csi = csiClients(plugin.endpoint);
    staging = join(plugin.dir, 'staging');
    await mkdir(staging);
  });

  afterAll(async () => {
    csi?.close();
    if (!plugin) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  const mountsUnderPlugin = async () => (await readMountInfo()).filter((m) => isUnder(m.mountPoint, plugin.dir)).map((m) => m.mountPoint);

  it.each(FOREIGN.map((f) => [f.kind, f] as const))('never formats a volume holding a %s', async (_kind, foreign) => {
    const { volume } = await csi.controller.CreateVolume({
      name: `foreign-${foreign.kind}`,
      capacity_range: { required_bytes: foreign.bytes },
      volume_capabilities: [cap],
    });
    const id = volume!.volume_id;
    const image = backend.dataPath(plugin, id);
    const dev = await attachLoopDevice(image);
    let signatures: string[];
    try {
      await foreign.write(dev);
      signatures = (await probeSignatures(dev)).map((s) => s.type);
    } finally {
      await detachLoopDevice(dev);
    }
    expect(signatures.length).toBeGreaterThan(0);
    const before = await headOf(image);

    for (let attempt = 0; attempt < 2; attempt++) {
      const err = await expectGrpcError(
        csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap }),
        'FAILED_PRECONDITION',
      );
      expect(err.details).toMatch(foreign.expect);
    }
    expect(await headOf(image)).toBe(before);
    expect(await mountsUnderPlugin()).toEqual([]);
    // A loop device that udev still probes is detached by the kernel on its last close (losetup -d defers).
    await expect.poll(() => backend.attachedDevices(plugin, id), { timeout: 5000, interval: 100 }).toEqual([]);
    const check = await attachLoopDevice(image);
    try {
      expect((await probeSignatures(check)).map((s) => s.type)).toEqual(signatures);
    } finally {
      await detachLoopDevice(check);
    }
    await csi.controller.DeleteVolume({ volume_id: id });
  });

  const DAMAGE: [string, string][] = [
    ['empty', ''],
    ['truncated', '{"version": 1, "id": "'],
    ['not JSON', 'garbage\u0000\u0001'],
    ['missing fields', '{"version": 1}'],
    [
      'another volume id',
      '{"version":1,"id":"vol-000000000000000000000000","name":"x","capacityBytes":1,"accessType":"mount","fsType":"ext4","parameters":{}}',
    ],
  ];

  it.each(DAMAGE)('reports a volume whose metadata is %s, refuses to recreate it, and keeps its data', async (kind, damaged) => {
    const name = `damaged-${kind}`;
    const { volume } = await csi.controller.CreateVolume({
      name,
      capacity_range: { required_bytes: 32 * MiB },
      volume_capabilities: [cap],
    });
    const id = volume!.volume_id;
    const target = join(plugin.dir, `target-${kind.replace(/ /g, '-')}`);
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    const payload = Buffer.from(`precious data of ${kind}\n`.repeat(50_000));
    await writeFile(join(target, 'precious.bin'), payload);
    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });

    const metaPath = backend.metadataPath(plugin, id);
    const goodMeta = await readFile(metaPath);
    await writeFile(metaPath, damaged);
    const image = backend.dataPath(plugin, id);
    const before = await headOf(image, 32 * MiB);

    const listed = (await csi.controller.ListVolumes({})).entries.find((e) => e.volume?.volume_id === id);
    expect(listed?.status?.volume_condition?.abnormal).toBe(true);
    expect(listed?.status?.volume_condition?.message).toMatch(/damaged/);
    const got = await csi.controller.ControllerGetVolume({ volume_id: id });
    expect(got.status?.volume_condition?.abnormal).toBe(true);
    const err = await expectGrpcError(
      csi.controller.CreateVolume({ name, capacity_range: { required_bytes: 32 * MiB }, volume_capabilities: [cap] }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toMatch(/damaged/);
    await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap }),
      'FAILED_PRECONDITION',
    );
    expect(await headOf(image, 32 * MiB)).toBe(before);
    expect(await readFile(metaPath, 'utf8')).toBe(damaged); // not "repaired" by overwriting
    expect(await mountsUnderPlugin()).toEqual([]);

    // Repaired by hand, the volume comes back with its data.
    await writeFile(metaPath, goodMeta);
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    expect(sha256(await readFile(join(target, 'precious.bin')))).toBe(sha256(payload));
    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
  });
});
