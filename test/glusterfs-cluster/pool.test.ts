// The three-server pool helper itself (test/helpers/gluster-pool.ts): three real glusterds on 127.0.0.11-13,
// each in a mount namespace of its own, peered; a killed server is really gone (processes reaped) and comes
// back; stopping the pool leaves no process, namespace or mount (the leak check of test/setup.ts runs after).

import { readlink } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_HOSTS, startGlusterPool, type GlusterPool } from '../helpers/gluster-pool.js';
import { listOurProcesses } from '../helpers/leaks.js';

let pool: GlusterPool;

beforeAll(async () => {
  pool = await startGlusterPool();
}, 180_000);

afterAll(async () => {
  await pool?.stop();
}, 120_000);

describe('three-server gluster pool helper', () => {
  it('runs three peered glusterds, each in its own mount namespace with its own /var/lib/glusterd', async () => {
    const ownNs = await readlink('/proc/self/ns/mnt');
    const namespaces = await Promise.all(pool.servers.map((s) => readlink(`/proc/${s.ns.pid}/ns/mnt`)));
    expect(new Set([ownNs, ...namespaces]).size).toBe(4);
    for (const s of pool.servers) {
      const list = await s.cli(['pool', 'list']);
      expect(list.match(/\tConnected/g)).toHaveLength(3);
      for (const other of POOL_HOSTS.filter((h) => h !== s.host)) expect(list).toContain(other);
      // the server's state is in its own dir, seen as /var/lib/glusterd inside its namespace
      expect(await s.ns.run('cat', ['/var/lib/glusterd/glusterd.info'])).toMatch(/UUID=/);
    }
    const uuids = await Promise.all(pool.servers.map((s) => s.ns.run('cat', ['/var/lib/glusterd/glusterd.info'])));
    expect(new Set(uuids.map((u) => /UUID=(\S+)/.exec(u)?.[1])).size).toBe(3);
  });

  it('a replica-3 volume has one brick per server, on each server own port range', async () => {
    await pool.createReplicatedVolume('pooltest');
    const status = await pool.cli(['volume', 'status', 'pooltest']);
    pool.servers.forEach((s) => {
      const port = Number(new RegExp(`Brick ${s.host.replace(/\./g, '\\.')}:[\\s\\S]*?\\s(\\d{5})\\s+0\\s+Y`).exec(status)?.[1]);
      expect(port).toBeGreaterThanOrEqual(s.basePort);
      expect(port).toBeLessThan(s.basePort + 1000);
    });
  });

  it('kill() takes a whole server down (reaped) and start() brings it and its bricks back', async () => {
    const s3 = pool.servers[2]!;
    expect(await s3.brickPids('pooltest')).toHaveLength(1);
    await s3.kill();
    expect(await s3.ns.members()).toEqual([]);
    expect(await pool.servers[0]!.cli(['pool', 'list'])).toMatch(/127\.0\.0\.13\s+Disconnected/);
    await s3.start();
    await s3.waitBrick('pooltest');
    expect(await s3.brickPids('pooltest')).toHaveLength(1);
    await pool.waitHealed('pooltest');
  });

  it('the leak audit sees the pool: namespace holders and every gluster process in them', async () => {
    const ours = await listOurProcesses();
    for (const s of pool.servers) {
      expect(ours.map((p) => p.pid)).toContain(s.ns.pid);
      for (const m of await s.ns.members()) expect(ours.map((p) => p.pid)).toContain(m.pid);
    }
  });
});
