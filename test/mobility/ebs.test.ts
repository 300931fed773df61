// A loop volume's data onto ebs: restored from a backup in moto's S3, and migrated (a mount volume and a
// block volume). EC2 is moto_server; the attachment of an EBS volume to this instance is the attach
// simulator (test/helpers/ebs-sim.ts), the only simulated part: it cannot exist here.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { csiClients } from '../helpers/client.js';
import { startEbsWorld, type EbsWorld } from '../helpers/ebs.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { MiB, blockSumOf, dataBlockVolume, lastJson, rexcsi, treeOf, treeVolume, type Side } from './world.js';

let world: EbsWorld;
let ebs: PluginProcess;
let loop: PluginProcess;
let ebsSide: Side;
let loopSide: Side;
let dir: string;

beforeAll(async () => {
  world = await startEbsWorld('mob-ebs');
  ebs = await world.startPlugin({ name: 'mob-ebs-plugin' });
  loop = await startPlugin({ name: 'mob-ebs-loop' });
  ebsSide = { csi: csiClients(ebs.endpoint), endpoint: ebs.endpoint, nodeId: world.instanceId };
  loopSide = { csi: csiClients(loop.endpoint), endpoint: loop.endpoint };
  dir = await makeTempDir('mobility-ebs');
}, 180_000);

afterAll(async () => {
  ebsSide?.csi.close();
  loopSide?.csi.close();
  await ebs?.stop();
  await world?.stop();
  if (dir) await removeTempDir(dir);
});

const s3 = (): Record<string, string> => ({ ...world.moto.env(), AWS_DEFAULT_REGION: 'us-east-1' });

async function leftOnEbs(): Promise<string[]> {
  return (await world.managedVolumes()).map((v) => v.VolumeId!).sort();
}

it('a loop volume backed up to S3 (moto) comes back on ebs (simulated attach)', async () => {
  const work = join(dir, 'work');
  const repo = `s3:${world.moto.endpoint}/mobility-ebs/repo`;
  const src = await treeVolume(loopSide, 'to-ebs', dir);
  const b = lastJson<{ backupId: string }>(
    await rexcsi(['volume', 'backup', src.id, '--endpoint', loop.endpoint, '--repo', repo, '--work-dir', work, '--json'], s3()),
  );
  const before = await leftOnEbs();
  const r = lastJson<{ volumeId: string }>(
    await rexcsi(
      [
        'volume',
        'restore',
        b.backupId,
        '--repo',
        repo,
        '--endpoint',
        ebs.endpoint,
        '--name',
        'restored-on-ebs',
        '--size',
        '1Gi',
        '--work-dir',
        work,
        '--json',
      ],
      s3(),
    ),
  );
  expect(await leftOnEbs()).toEqual([...before, r.volumeId].sort());
  expect(await treeOf(ebsSide, r.volumeId, dir)).toEqual(src.tree);
  await ebsSide.csi.controller.DeleteVolume({ volume_id: r.volumeId });
  await loopSide.csi.controller.DeleteVolume({ volume_id: src.id });
});

it('migrates a mount volume loop -> ebs (simulated attach); the source is unchanged', async () => {
  const work = join(dir, 'work');
  const src = await treeVolume(loopSide, 'mig-to-ebs', dir);
  const m = lastJson<{ destinationId: string; how: string; bytes: number }>(
    await rexcsi([
      'volume',
      'migrate',
      src.id,
      '--from',
      loop.endpoint,
      '--to',
      ebs.endpoint,
      '--size',
      '1Gi',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(m.how).toBe('snapshot');
  expect(await treeOf(ebsSide, m.destinationId, dir)).toEqual(src.tree);
  expect(await treeOf(loopSide, src.id, dir)).toEqual(src.tree);
  await ebsSide.csi.controller.DeleteVolume({ volume_id: m.destinationId });
  await loopSide.csi.controller.DeleteVolume({ volume_id: src.id });
});

it('migrates a block volume loop -> ebs (simulated attach), by checksum', async () => {
  const work = join(dir, 'work');
  const src = await dataBlockVolume(loopSide, 'blk-to-ebs', dir);
  const m = lastJson<{ destinationId: string; bytes: number }>(
    await rexcsi([
      'volume',
      'migrate',
      src.id,
      '--from',
      loop.endpoint,
      '--to',
      ebs.endpoint,
      '--size',
      '1Gi',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(m.bytes).toBe(64 * MiB);
  expect(await blockSumOf(ebsSide, m.destinationId, dir, 64 * MiB)).toBe(src.sha256);
  expect(await blockSumOf(loopSide, src.id, dir, 64 * MiB)).toBe(src.sha256);
  await ebsSide.csi.controller.DeleteVolume({ volume_id: m.destinationId });
  await loopSide.csi.controller.DeleteVolume({ volume_id: src.id });
});
