// The ALREADY_EXISTS check of CreateVolume (src/controller/controller.ts `incompatibility`): a second
// CreateVolume of a name answers the existing volume only when that volume satisfies the request; otherwise
// ALREADY_EXISTS with the reason this function gives. Each rule, and that what must not matter does not.
import { describe, expect, it } from 'vitest';
import type { Volume } from '../../src/backends/backend.js';
import { incompatibility } from '../../src/controller/controller.js';

const MiB = 1024 * 1024;

const existing: Volume = {
  id: 'vol-1',
  name: 'data',
  capacityBytes: 64 * MiB,
  parameters: { tier: 'fast' },
  context: { fsType: 'ext4' },
  accessibleTopology: [{ zone: 'a', rack: '1' }],
  accessType: 'mount',
  publishedNodes: [],
};

type Request = Parameters<typeof incompatibility>[1];
const same: Request = {
  range: { requiredBytes: 64 * MiB, limitBytes: 0 },
  parameters: { tier: 'fast' },
  accessType: 'mount',
  fsType: 'ext4',
};
const ask = (change: Partial<Request>) => incompatibility(existing, { ...same, ...change });

describe('CreateVolume of an existing name (ALREADY_EXISTS compatibility)', () => {
  it('accepts the very request that made the volume', () => {
    expect(ask({})).toBeUndefined();
  });

  it('accepts any range the capacity lies in, and no limit at all', () => {
    expect(ask({ range: { requiredBytes: 32 * MiB, limitBytes: 64 * MiB } })).toBeUndefined();
    expect(ask({ range: { requiredBytes: 0, limitBytes: 0 } })).toBeUndefined();
  });

  it('refuses a required size above the capacity, and a limit below it, naming both numbers', () => {
    expect(ask({ range: { requiredBytes: 64 * MiB + 1, limitBytes: 0 } })).toBe(
      `its capacity ${64 * MiB} is below required_bytes ${64 * MiB + 1}`,
    );
    expect(ask({ range: { requiredBytes: 0, limitBytes: 32 * MiB } })).toBe(`its capacity ${64 * MiB} is above limit_bytes ${32 * MiB}`);
  });

  it('refuses other parameters, missing or extra ones', () => {
    expect(ask({ parameters: { tier: 'slow' } })).toBe('it was created with other parameters');
    expect(ask({ parameters: {} })).toBe('it was created with other parameters');
    expect(ask({ parameters: { tier: 'fast', replica: '3' } })).toBe('it was created with other parameters');
  });

  it("ignores the order of parameters and the CO's own csi.storage.k8s.io/ ones", () => {
    const mine = { ...existing, parameters: { b: '2', a: '1', 'csi.storage.k8s.io/pvc/name': 'claim-1' } };
    expect(incompatibility(mine, { ...same, parameters: { a: '1', b: '2', 'csi.storage.k8s.io/pvc/name': 'claim-2' } })).toBeUndefined();
    expect(incompatibility(mine, { ...same, parameters: { a: '1', b: '2' } })).toBeUndefined();
  });

  it('refuses another access type', () => {
    expect(ask({ accessType: 'block', fsType: '' })).toBe('it is a mount volume');
  });

  it('refuses another filesystem, but not a request that names none', () => {
    expect(ask({ fsType: 'xfs' })).toBe('it is formatted ext4');
    expect(ask({ fsType: '' })).toBeUndefined();
    expect(incompatibility({ ...existing, context: {} }, { ...same, fsType: 'xfs' })).toBeUndefined(); // not formatted yet
  });

  it('refuses another content source, or one where the volume had none, and the other way round', () => {
    const fromSnap: Volume = { ...existing, source: { kind: 'snapshot', id: 'snap-1' } };
    expect(incompatibility(fromSnap, { ...same, source: { kind: 'snapshot', id: 'snap-1' } })).toBeUndefined();
    expect(incompatibility(fromSnap, { ...same, source: { kind: 'snapshot', id: 'snap-2' } })).toBe(
      'its content source is snapshot:snap-1',
    );
    expect(incompatibility(fromSnap, { ...same, source: { kind: 'volume', id: 'snap-1' } })).toBe('its content source is snapshot:snap-1');
    expect(incompatibility(fromSnap, same)).toBe('its content source is snapshot:snap-1');
    expect(ask({ source: { kind: 'volume', id: 'vol-0' } })).toBe('its content source is none');
  });

  it('refuses a requisite topology the volume is not accessible from; a matching one or none is fine', () => {
    expect(ask({ topology: { requisite: [{ zone: 'a' }] } })).toBeUndefined();
    expect(ask({ topology: { requisite: [{ zone: 'b' }, { zone: 'a', rack: '1' }] } })).toBeUndefined();
    expect(ask({ topology: { requisite: [] } })).toBeUndefined();
    expect(ask({ topology: { requisite: [{ zone: 'b' }] } })).toBe('it is not accessible from the requisite topology');
    expect(ask({ topology: { requisite: [{ zone: 'a', rack: '2' }] } })).toBe('it is not accessible from the requisite topology');
  });
});
