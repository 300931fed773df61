// Unit tests of the Docker API's parts: Opts mapping (REX-Ray spellings, size), name checks, the holders
// file (atomic, kept across instances, a damaged one refused), the per-name queue and the delete guard.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATE_PARAMETER_KEYS } from '../../src/backends/ebs/params.js';
import { ZONE_TOPOLOGY_KEY } from '../../src/backends/ebs/ebs.js';
import { NODE_TOPOLOGY_KEY } from '../../src/backends/loop/loop.js';
import type { Backend } from '../../src/backends/backend.js';
import { refuseDeleteWhileHeld } from '../../src/docker/guard.js';
import { HolderStore, HOLDERS_FILE } from '../../src/docker/holders.js';
import { KeyedLock } from '../../src/docker/keyed-lock.js';
import { checkName, nameProblem } from '../../src/docker/names.js';
import { mapOpts, optsDifference, parseDockerSize } from '../../src/docker/opts.js';
import { isCsiError } from '../../src/errors.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const loop = { parameterKeys: ['fsType'], topologyKeys: [NODE_TOPOLOGY_KEY] };
const ebs = { parameterKeys: CREATE_PARAMETER_KEYS, topologyKeys: [ZONE_TOPOLOGY_KEY] };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isCsiError(e, 'INVALID_ARGUMENT')) return e.message;
    throw e;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('size option', () => {
  it('reads a bare number as GiB (REX-Ray), binary and decimal units', () => {
    expect(parseDockerSize('16')).toBe(16 * GiB);
    expect(parseDockerSize('64Mi')).toBe(64 * MiB);
    expect(parseDockerSize('10Gi')).toBe(10 * GiB);
    expect(parseDockerSize('1Ti')).toBe(2 ** 40);
    expect(parseDockerSize('10GiB')).toBe(10 * GiB);
    expect(parseDockerSize('500M')).toBe(500e6);
    expect(parseDockerSize('10G')).toBe(10e9);
    expect(parseDockerSize(' 64mi ')).toBe(64 * MiB);
  });
  it('refuses zero, negatives, fractions, unknown units and overflow, naming the value', () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '64Xi', '', '99999999999999Ti', '1e9']) {
      expect(refusal(() => parseDockerSize(bad))).toContain(`size=${JSON.stringify(bad)}`);
    }
  });
});

describe('Opts mapping', () => {
  it('maps REX-Ray spellings to the ebs parameters and availabilityZone to the zone topology', () => {
    expect(
      mapOpts({ size: '16', volumeType: 'io1', IOPS: '100', fstype: 'xfs', encrypted: 'true', availabilityZone: 'us-east-1a' }, ebs, 'ebs'),
    ).toEqual({
      requiredBytes: 16 * GiB,
      parameters: { type: 'io1', iops: '100', fsType: 'xfs', encrypted: 'true' },
      topology: { [ZONE_TOPOLOGY_KEY]: 'us-east-1a' },
    });
    expect(mapOpts({ volumetype: 'gp3', encryptionKey: 'k' }, ebs, 'ebs').parameters).toEqual({ type: 'gp3', kmsKeyId: 'k' });
  });
  it('passes the backend parameters by their own names; no options is the default volume', () => {
    expect(mapOpts({ fsType: 'xfs' }, loop, 'loop')).toEqual({ requiredBytes: 0, parameters: { fsType: 'xfs' } });
    expect(mapOpts({}, loop, 'loop')).toEqual({ requiredBytes: 0, parameters: {} });
  });
  it('refuses what the backend cannot do, naming the option and what it accepts', () => {
    expect(refusal(() => mapOpts({ volumeType: 'gp3' }, loop, 'loop'))).toBe(
      'option volumeType (the type parameter) is not something the loop backend can do (its options: size, fsType)',
    );
    expect(refusal(() => mapOpts({ iops: '3' }, loop, 'loop'))).toContain('loop backend');
    expect(refusal(() => mapOpts({ availabilityZone: 'a' }, loop, 'loop'))).toContain('has no availability zones');
    expect(refusal(() => mapOpts({ '../x': 'y' }, loop, 'loop'))).toContain('option ../x');
    expect(refusal(() => mapOpts({ fsType: 'ext4', fstype: 'xfs' }, loop, 'loop'))).toContain('fsType twice');
  });
  it('compares an existing volume only on what the options ask for, naming the first difference', () => {
    const existing = { capacityBytes: 64 * MiB, parameters: {}, context: { fsType: 'ext4' } };
    expect(optsDifference(existing, { requiredBytes: 0, parameters: {} })).toBeUndefined();
    expect(optsDifference(existing, { requiredBytes: 32 * MiB, parameters: { fsType: 'ext4' } })).toBeUndefined();
    expect(optsDifference(existing, { requiredBytes: 128 * MiB, parameters: {} })).toBe('it has 67108864 bytes, less than size 134217728');
    expect(optsDifference(existing, { requiredBytes: 0, parameters: { fsType: 'xfs' } })).toBe(
      'it was created with fsType="ext4", not "xfs"',
    );
    expect(optsDifference({ ...existing, parameters: { type: 'gp3' } }, { requiredBytes: 0, parameters: { type: 'io1' } })).toContain(
      'type="gp3"',
    );
  });
});

describe('volume names', () => {
  it('accepts Docker-style names up to 128 bytes', () => {
    for (const ok of ['v1', 'a', 'mesos-vol_1.data', 'A'.repeat(128), 'x.y']) expect(nameProblem(ok)).toBeUndefined();
    expect(checkName('v1')).toBe('v1');
  });
  it('refuses path tricks, hidden names, control characters, non-strings and overlong names', () => {
    const cases: [unknown, string][] = [
      ['', 'required'],
      ['..', '".."'],
      ['a..b', '".."'],
      ['a/b', '"/"'],
      ['/etc', '"/"'],
      ['.hidden', 'start with a letter or digit'],
      ['-x', 'start with a letter or digit'],
      ['a\nb', 'may only contain'],
      ['a\0b', 'may only contain'],
      ['é', 'may only contain'],
      ['a'.repeat(129), '129 bytes'],
      [5, 'must be a string, not number'],
      [null, 'not null'],
      [undefined, 'not undefined'],
    ];
    for (const [name, why] of cases) expect(refusal(() => checkName(name))).toContain(why);
  });
});

describe('holders file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('docker-unit');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('counts holders by ID, "" being one holder, and a new store over the same root reads them back', async () => {
    const root = join(dir, 'a');
    const store = new HolderStore(root);
    await store.load();
    await store.add('v1', 'vol-1', 'id-1');
    await store.add('v1', 'vol-1', 'id-1'); // a retried Mount
    await store.add('v1', 'vol-1', '');
    await store.add('v1', 'vol-1', '');
    await store.add('v2', 'vol-2', 'id-2');
    expect(store.holdersOf('v1')).toEqual(['id-1', '']);
    expect(store.findById('vol-2')).toEqual({ name: 'v2', holders: ['id-2'] });

    const again = new HolderStore(root); // a restarted plugin
    await again.load();
    expect(again.holdersOf('v1')).toEqual(['id-1', '']);
    await again.remove('v1', 'id-1');
    await again.remove('v1', 'id-1'); // a retried Unmount
    expect(again.holdersOf('v1')).toEqual(['']);
    await again.remove('v1', '');
    expect(again.holdersOf('v1')).toEqual([]);
    expect(again.volumeIdOf('v1')).toBeUndefined();
    expect(again.findById('vol-1')).toBeUndefined();

    const third = new HolderStore(root);
    await third.load();
    expect(third.names()).toEqual(['v2']);
    // Written whole and renamed into place: no temp file left, readable by root only.
    expect(await readdir(root)).toEqual([HOLDERS_FILE]);
    expect((await stat(join(root, HOLDERS_FILE))).mode & 0o777).toBe(0o600);
  });

  it('concurrent changes are written one after the other and none is lost', async () => {
    const store = new HolderStore(join(dir, 'b'));
    await store.load();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.add(`v${i % 4}`, `vol-${i % 4}`, `id-${i}`)));
    const again = new HolderStore(join(dir, 'b'));
    await again.load();
    expect([0, 1, 2, 3].map((i) => again.holdersOf(`v${i}`).length)).toEqual([5, 5, 5, 5]);
  });

  it('a damaged file stops loading with FAILED_PRECONDITION naming it, and is not overwritten', async () => {
    const root = join(dir, 'c');
    const store = new HolderStore(root);
    await store.load();
    for (const damaged of ['{not json', '{"version":2,"volumes":{}}', '{"version":1,"volumes":{"v":{"volumeId":1,"holders":[]}}}']) {
      await writeFile(join(root, HOLDERS_FILE), damaged);
      const e: unknown = await new HolderStore(root).load().catch((err: unknown) => err);
      expect(isCsiError(e, 'FAILED_PRECONDITION')).toBe(true);
      expect((e as Error).message).toContain(join(root, HOLDERS_FILE));
      expect(await readFile(join(root, HOLDERS_FILE), 'utf8')).toBe(damaged);
    }
  });
});

describe('per-name queue', () => {
  it('runs operations on one name one after the other, and on different names at once', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const step = (key: string, label: string, ms: number) =>
      lock.run(key, async () => {
        order.push(`${label}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${label}-`);
      });
    await Promise.all([step('v', 'a', 30), step('v', 'b', 1), step('w', 'c', 1)]);
    expect(order.indexOf('a-')).toBeLessThan(order.indexOf('b+'));
    expect(order.indexOf('c+')).toBeLessThan(order.indexOf('a-'));
    await expect(lock.run('v', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await lock.run('v', () => Promise.resolve(7))).toBe(7); // a failure does not block the name
  });
});

describe('delete guard', () => {
  it('refuses deleting a held volume naming the Docker name and holders, and passes everything else through', async () => {
    const dir = await makeTempDir('docker-guard');
    try {
      const holders = new HolderStore(dir);
      await holders.load();
      await holders.add('v1', 'vol-held', 'abcdef0123456789');
      const deleted: string[] = [];
      const backend = {
        name: 'loop',
        deleted,
        deleteVolume(id: string) {
          this.deleted.push(id);
          return Promise.resolve();
        },
        probe() {
          return Promise.resolve(this.name);
        },
      };
      const guarded = refuseDeleteWhileHeld(backend as unknown as Backend, holders);
      const e: unknown = await guarded.deleteVolume('vol-held').catch((err: unknown) => err);
      expect(isCsiError(e, 'FAILED_PRECONDITION')).toBe(true);
      expect((e as Error).message).toContain('as v1 by 1 holder (abcdef012345)');
      await guarded.deleteVolume('vol-free');
      expect(deleted).toEqual(['vol-free']);
      expect(await (guarded.probe as unknown as () => Promise<string>)()).toBe('loop'); // methods keep their own `this`
      expect(guarded.name).toBe('loop');
    } finally {
      await removeTempDir(dir);
    }
  });
});
