// The mobility commands killed (SIGKILL, at each named step: REXCSI_MOBILITY_FAULT) and run again with the
// same arguments: the re-run completes, nothing temporary is left on either plugin or in the work dir, and
// the source is untouched. Then bad input: each a clear message, a non-zero exit, nothing left behind.
// Two real loop plugins (the second one is the migration destination), a local restic repository.
import { writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOBILITY_FAULT_STEPS } from '../../src/cli/mobility.js';
import { csiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import type { Entry } from './tree.js';
import { lastJson, rexcsi, snapshotIds, treeOf, treeVolume, volumeIds, withVolume, type Side } from './world.js';

let a: PluginProcess;
let b: PluginProcess;
let src: Side;
let dst: Side;
let dir: string;
let repo: string;
let work: string;
let source: { id: string; tree: Entry[] };
let backupId: string;

beforeAll(async () => {
  a = await startPlugin({ name: 'mob-a' });
  b = await startPlugin({ name: 'mob-b' });
  src = { csi: csiClients(a.endpoint), endpoint: a.endpoint };
  dst = { csi: csiClients(b.endpoint), endpoint: b.endpoint };
  dir = await makeTempDir('mobility-crash');
  repo = join(dir, 'repo');
  work = join(dir, 'work');
  source = await treeVolume(src, 'crash-source', dir);
  backupId = lastJson<{ backupId: string }>(
    await rexcsi(['volume', 'backup', source.id, '--endpoint', a.endpoint, '--repo', repo, '--work-dir', work, '--json']),
  ).backupId;
});

afterAll(async () => {
  src?.csi.close();
  dst?.csi.close();
  if (dir) await removeTempDir(dir);
});

async function state(): Promise<{ a: string[]; b: string[]; snapshots: string[] }> {
  return { a: await volumeIds(src), b: await volumeIds(dst), snapshots: await snapshotIds(src) };
}

/** Killed at `step`, then run again: returns the second run's result. */
async function killedThenRerun(
  args: string[],
  step: string,
): Promise<{ killed: number | null; rerun: Awaited<ReturnType<typeof rexcsi>> }> {
  const first = await rexcsi(args, { REXCSI_MOBILITY_FAULT: step });
  return { killed: first.code, rerun: await rexcsi(args) };
}

const steps = (prefix: string): string[] => MOBILITY_FAULT_STEPS.filter((s) => s.startsWith(prefix));

describe('killed at each step and run again', () => {
  it.each(steps('backup.'))('backup killed at %s', async (step) => {
    const before = await state();
    const args = ['volume', 'backup', source.id, '--endpoint', a.endpoint, '--repo', repo, '--work-dir', work, '--json'];
    const { killed, rerun } = await killedThenRerun(args, step);
    expect(killed).toBeNull(); // died by the signal
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await state()).toEqual(before);
    expect(await readdir(work)).toEqual([]);
  });

  it.each(steps('restore.'))('restore killed at %s', async (step) => {
    const before = await state();
    const name = `r-${step.replace(/\W/g, '-')}`;
    const args = ['volume', 'restore', backupId, '--repo', repo, '--endpoint', b.endpoint, '--name', name, '--work-dir', work, '--json'];
    const { killed, rerun } = await killedThenRerun(args, step);
    expect(killed).toBeNull();
    const restored = lastJson<{ volumeId: string }>(rerun);
    expect(await treeOf(dst, restored.volumeId, dir)).toEqual(source.tree);
    expect(await state()).toEqual({ ...before, b: [...before.b, restored.volumeId].sort() });
    expect(await readdir(work)).toEqual([]);
    await dst.csi.controller.DeleteVolume({ volume_id: restored.volumeId });
  });

  it.each(steps('migrate.'))('migrate killed at %s', async (step) => {
    const before = await state();
    const name = `m-${step.replace(/\W/g, '-')}`;
    const args = ['volume', 'migrate', source.id, '--from', a.endpoint, '--to', b.endpoint, '--name', name, '--work-dir', work, '--json'];
    const { killed, rerun } = await killedThenRerun(args, step);
    expect(killed).toBeNull();
    const moved = lastJson<{ destinationId: string }>(rerun);
    expect(await treeOf(dst, moved.destinationId, dir)).toEqual(source.tree);
    expect(await state()).toEqual({ ...before, b: [...before.b, moved.destinationId].sort() });
    expect(await readdir(work)).toEqual([]);
    await dst.csi.controller.DeleteVolume({ volume_id: moved.destinationId });
  });

  it('the source is untouched after all of it', async () => {
    expect(await treeOf(src, source.id, dir)).toEqual(source.tree);
  });
});

describe('bad input: a clear message, a non-zero exit, nothing left behind', () => {
  it('an unknown volume', async () => {
    const before = await state();
    const r = await rexcsi(['volume', 'backup', 'no-such-volume', '--endpoint', a.endpoint, '--repo', repo, '--work-dir', work]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('NOT_FOUND');
    expect(r.stderr).toContain('no-such-volume');
    const m = await rexcsi(['volume', 'migrate', 'no-such-volume', '--from', a.endpoint, '--to', b.endpoint, '--work-dir', work]);
    expect(m.code).toBe(4);
    expect(await state()).toEqual(before);
  });

  it('a wrong repository password', async () => {
    const before = await state();
    const file = join(dir, 'wrong-password');
    await writeFile(file, 'not the password\n', { mode: 0o600 });
    const r = await rexcsi([
      'volume',
      'backup',
      source.id,
      '--endpoint',
      a.endpoint,
      '--repo',
      repo,
      '--password-file',
      file,
      '--work-dir',
      work,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PERMISSION_DENIED: .*wrong password/);
    const env = await rexcsi(['volume', 'restore', backupId, '--repo', repo, '--endpoint', b.endpoint, '--name', 'x'], {
      RESTIC_PASSWORD: 'nope!',
    });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('wrong password');
    expect(env.stderr).not.toContain('nope!');
    expect(await state()).toEqual(before);
    expect(await readdir(work)).toEqual([]);
  });

  it('an unreachable repository', async () => {
    const before = await state();
    const r = await rexcsi(
      ['volume', 'backup', source.id, '--endpoint', a.endpoint, '--repo', 's3:http://127.0.0.1:9/bucket/repo', '--work-dir', work],
      {
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'y',
      },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/UNAVAILABLE: repository s3:http:\/\/127\.0\.0\.1:9\/bucket\/repo is unreachable/);
    expect(await state()).toEqual(before);
  });

  it('no password at all is a usage error', async () => {
    const r = await rexcsi(['volume', 'backups', '--repo', repo], { RESTIC_PASSWORD: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--password-file');
  });

  it('a destination too small', async () => {
    const before = await state();
    const r = await rexcsi([
      'volume',
      'restore',
      backupId,
      '--repo',
      repo,
      '--endpoint',
      b.endpoint,
      '--name',
      'small',
      '--size',
      '16Mi',
      '--work-dir',
      work,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/OUT_OF_RANGE: destination too small/);
    const m = await rexcsi([
      'volume',
      'migrate',
      source.id,
      '--from',
      a.endpoint,
      '--to',
      b.endpoint,
      '--size',
      '16Mi',
      '--work-dir',
      work,
    ]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/OUT_OF_RANGE: destination too small/);
    expect(await state()).toEqual(before);
  });

  it('a destination that exists and was not made by this operation', async () => {
    const existing = await treeVolume(dst, 'taken', dir);
    const before = await state();
    const r = await rexcsi([
      'volume',
      'migrate',
      source.id,
      '--from',
      a.endpoint,
      '--to',
      b.endpoint,
      '--name',
      'taken',
      '--work-dir',
      work,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ALREADY_EXISTS');
    expect(await state()).toEqual(before);
    expect(await treeOf(dst, existing.id, dir)).toEqual(existing.tree); // not written to
    await dst.csi.controller.DeleteVolume({ volume_id: existing.id });
  });

  it('a volume staged by someone else is still backed up from its snapshot, not refused', async () => {
    await withVolume(src, source.id, dir, false, async () => {
      const r = await rexcsi(['volume', 'backup', source.id, '--endpoint', a.endpoint, '--repo', repo, '--work-dir', work, '--json']);
      expect(lastJson<{ pointInTime: boolean }>(r).pointInTime).toBe(true);
    });
  });
});
