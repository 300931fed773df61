import { describe, expect, it } from 'vitest';
import { fingerprint, Inflight } from '../../src/csi/inflight.js';
import { CsiError } from '../../src/errors.js';

describe('Inflight', () => {
  it('joins an identical request to the running one: one execution, one result', async () => {
    const inflight = new Inflight();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const work = async () => {
      runs++;
      await gate;
      return { id: 'vol-1' };
    };
    const fp = fingerprint('CreateVolume', { name: 'a', parameters: { x: '1', y: '2' } });
    const same = fingerprint('CreateVolume', { parameters: { y: '2', x: '1' }, name: 'a' });
    expect(same).toBe(fp);
    const first = inflight.run('CreateVolume', ['name:a'], fp, work);
    const second = inflight.run('CreateVolume', ['name:a'], same, work);
    release();
    expect(await first).toEqual({ id: 'vol-1' });
    expect(await second).toBe(await first);
    expect(runs).toBe(1);
    expect(inflight.size).toBe(0);
  });

  it('answers a different request on a busy key with ABORTED, and frees the key afterwards', async () => {
    const inflight = new Inflight();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const running = inflight.run('NodeStageVolume', ['vol:v'], 'a', () => gate);
    let err: unknown;
    try {
      await inflight.run('NodeUnstageVolume', ['vol:v'], 'b', async () => undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CsiError);
    expect((err as CsiError).code).toBe('ABORTED');
    release();
    await running;
    await expect(inflight.run('NodeUnstageVolume', ['vol:v'], 'b', async () => 'done')).resolves.toBe('done');
  });

  it('releases the key when the operation fails', async () => {
    const inflight = new Inflight();
    await expect(inflight.run('DeleteVolume', ['vol:x'], 'f', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(inflight.run('DeleteVolume', ['vol:x'], 'f', async () => 'ok')).resolves.toBe('ok');
  });
});
