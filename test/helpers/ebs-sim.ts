// THE SIMULATED PART of the ebs tests: no hypervisor attaches disks to this machine, so this stands in for
// EC2's data plane. It watches moto (the EC2 API) and, for every volume moto reports attached to the test
// instance, backs it with a real loop device over a sparse file under TEST_ROOT, an NVMe-style by-id link
// (nvme-Amazon_Elastic_Block_Store_vol<hex>) and the NVMe serial in a fake sysfs tree; on detach it removes
// them. A volume's file outlives its attachments (data persists like on EBS), grows when moto says the volume
// grew, and a snapshot's data is a sparse copy taken when the snapshot appears. The plugin is pointed at
// byIdDir and sysRoot through --by-id-dir and --sys-root; everything it does on the node is the production path.
import { mkdir, rm, stat, symlink, unlink, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DescribeSnapshotsCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { attachLoopDevice, createSparseFile, detachLoopDevice, growFile, refreshLoopCapacity, run } from '../../src/os/index.js';

const GiB = 1024 ** 3;

interface Attached {
  device: string;
  sizeGiB: number;
}

export class AttachSimulator {
  readonly byIdDir: string;
  readonly sysRoot: string;
  private readonly volumesDir: string;
  private readonly snapshotsDir: string;
  private readonly attached = new Map<string, Attached>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** the last error of a background pass, so a test can show it */
  lastError: unknown;

  constructor(
    private readonly ec2: EC2Client,
    readonly instanceId: string,
    readonly root: string,
  ) {
    this.byIdDir = join(root, 'dev-disk-by-id');
    this.sysRoot = join(root, 'sys');
    this.volumesDir = join(root, 'ebs-data');
    this.snapshotsDir = join(root, 'ebs-snapshots');
  }

  async start(intervalMs = 100): Promise<void> {
    await Promise.all([this.byIdDir, this.sysRoot, this.volumesDir, this.snapshotsDir].map((d) => mkdir(d, { recursive: true })));
    const tick = (): void => {
      if (this.stopped) return;
      this.sync()
        .catch((e: unknown) => {
          this.lastError = e;
        })
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
  }

  /** One pass: make the machine match what moto says is attached to the instance. Passes never overlap. */
  sync(): Promise<void> {
    const pass = this.chain.then(() => this.syncOnce());
    this.chain = pass.catch(() => undefined);
    return pass;
  }

  /** Stops watching and removes every device, link and serial it made (the backing files stay under root). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
    for (const id of [...this.attached.keys()]) await this.remove(id);
  }

  /** The loop device backing a volume attached now, if any. */
  deviceOf(volumeId: string): string | undefined {
    return this.attached.get(volumeId)?.device;
  }

  /** Points volume a's by-id link at volume b's device (a broken udev rule, a reused name): the plugin must refuse it. */
  async mislink(a: string, b: string): Promise<void> {
    const target = this.attached.get(b);
    if (!target) throw new Error(`${b} is not attached`);
    await unlink(this.link(a)).catch(() => undefined);
    await symlink(target.device, this.link(a));
  }

  link(volumeId: string): string {
    return join(this.byIdDir, `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`);
  }

  private async syncOnce(): Promise<void> {
    const res = await this.ec2.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [this.instanceId] }] }),
    );
    const now = new Map<string, { sizeGiB: number; snapshotId: string | undefined }>();
    for (const v of res.Volumes ?? []) {
      const ours = v.Attachments?.some((a) => a.InstanceId === this.instanceId && a.State === 'attached');
      const root = v.Attachments?.some((a) => a.Device === '/dev/sda1');
      if (ours && !root && v.VolumeId) now.set(v.VolumeId, { sizeGiB: v.Size ?? 1, snapshotId: v.SnapshotId || undefined });
    }
    for (const id of [...this.attached.keys()]) if (!now.has(id)) await this.remove(id);
    for (const [id, v] of now) {
      const have = this.attached.get(id);
      if (!have) await this.add(id, v.sizeGiB, v.snapshotId);
      else if (v.sizeGiB > have.sizeGiB) {
        await growFile(this.file(id), v.sizeGiB * GiB);
        await refreshLoopCapacity(have.device);
        have.sizeGiB = v.sizeGiB;
      }
    }
    await this.captureSnapshots();
  }

  private file(id: string): string {
    return join(this.volumesDir, `${id}.img`);
  }

  private async add(id: string, sizeGiB: number, snapshotId: string | undefined): Promise<void> {
    const file = this.file(id);
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) {
      const snapshotFile = snapshotId ? join(this.snapshotsDir, `${snapshotId}.img`) : undefined;
      if (
        snapshotFile &&
        (await stat(snapshotFile).then(
          () => true,
          () => false,
        ))
      ) {
        await run('cp', ['--sparse=always', snapshotFile, file]); // the volume starts as the snapshot's data
        await growFile(file, sizeGiB * GiB);
      } else {
        await createSparseFile(file, sizeGiB * GiB);
      }
    } else {
      await growFile(file, sizeGiB * GiB);
    }
    const device = await attachLoopDevice(file);
    const name = device.replace('/dev/', '');
    await mkdir(join(this.sysRoot, 'block', name, 'device'), { recursive: true });
    await writeFile(join(this.sysRoot, 'block', name, 'device', 'serial'), `${id.replace('-', '')}    \n`);
    await unlink(this.link(id)).catch(() => undefined);
    await symlink(device, this.link(id));
    this.attached.set(id, { device, sizeGiB });
  }

  private async remove(id: string): Promise<void> {
    const have = this.attached.get(id);
    if (!have) return;
    await unlink(this.link(id)).catch(() => undefined);
    await rm(join(this.sysRoot, 'block', have.device.replace('/dev/', '')), { recursive: true, force: true });
    await detachLoopDevice(have.device);
    this.attached.delete(id);
  }

  /** Copies the data of every new snapshot of a volume this simulator holds, as EBS does at snapshot time. */
  private async captureSnapshots(): Promise<void> {
    const have = new Set(await readdir(this.snapshotsDir));
    const res = await this.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    for (const s of res.Snapshots ?? []) {
      if (!s.SnapshotId || !s.VolumeId || have.has(`${s.SnapshotId}.img`)) continue;
      const source = this.file(s.VolumeId);
      if (
        !(await stat(source).then(
          () => true,
          () => false,
        ))
      )
        continue;
      const target = join(this.snapshotsDir, `${s.SnapshotId}.img`);
      const device = this.attached.get(s.VolumeId)?.device;
      if (device) await run('sync', []);
      await run('cp', ['--sparse=always', source, `${target}.tmp`]);
      await run('mv', [`${target}.tmp`, target]);
    }
  }
}
