// The ebs backend's pure parts: error mapping (throttling is never INTERNAL), parameters, device names,
// attach limits, and the modify merger.
import { describe, expect, it } from 'vitest';
import { ebsCapacity } from '../../src/backends/ebs/capacity.js';
import { candidateNames, DeviceAllocator } from '../../src/backends/ebs/devices.js';
import { ec2Error } from '../../src/backends/ebs/ec2.js';
import { attachLimitFor } from '../../src/backends/ebs/limits.js';
import { ModifyMerger } from '../../src/backends/ebs/modify.js';
import { iopsFor, parseVolumeSpec, sizeForType } from '../../src/backends/ebs/params.js';

const GiB = 1024 ** 3;

describe('ec2Error', () => {
  it('maps throttling and outages to UNAVAILABLE, never INTERNAL', () => {
    for (const name of ['RequestLimitExceeded', 'Throttling', 'ServiceUnavailable', 'InternalError']) {
      expect(ec2Error('X', Object.assign(new Error('slow down'), { name })).code).toBe('UNAVAILABLE');
    }
    expect(ec2Error('X', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { name: 'Error', code: 'ECONNREFUSED' })).code).toBe(
      'UNAVAILABLE',
    );
    expect(ec2Error('X', Object.assign(new Error('?'), { name: 'Weird', $metadata: { httpStatusCode: 503 } })).code).toBe('UNAVAILABLE');
  });
  it('maps the meaningful EC2 codes', () => {
    const code = (name: string) => ec2Error('X', Object.assign(new Error('m'), { name })).code;
    expect(code('InvalidVolume.NotFound')).toBe('NOT_FOUND');
    expect(code('VolumeInUse')).toBe('FAILED_PRECONDITION');
    expect(code('UnauthorizedOperation')).toBe('PERMISSION_DENIED');
    expect(code('InvalidParameterValue')).toBe('INVALID_ARGUMENT');
    expect(code('VolumeLimitExceeded')).toBe('RESOURCE_EXHAUSTED');
  });
});

describe('ebs parameters', () => {
  it('names the parameter of a bad combination', () => {
    expect(() => parseVolumeSpec({ type: 'gp2', iops: '100' })).toThrow(/iops/);
    expect(() => parseVolumeSpec({ type: 'io2', iops: '100', iopsPerGB: '5' })).toThrow(/iops and iopsPerGB/);
    expect(() => parseVolumeSpec({ type: 'st1', throughput: '200' })).toThrow(/throughput/);
  });
  it('rounds sizes to GiB within the type limits', () => {
    expect(sizeForType('gp3', 1.5 * GiB, 0)).toBe(2);
    expect(sizeForType('io1', GiB, 0)).toBe(4);
    expect(() => sizeForType('standard', 1025 * GiB, 0)).toThrow(/at most 1024/);
    expect(() => sizeForType('st1', GiB, 10 * GiB)).toThrow(/limit_bytes/);
  });
  it('computes IOPS from iopsPerGB and checks the per-GiB cap', () => {
    expect(iopsFor(parseVolumeSpec({ type: 'io2', iopsPerGB: '50' }), 10)).toBe(500);
    expect(iopsFor(parseVolumeSpec({ type: 'gp3', iops: '3000' }), 1)).toBe(3000);
    expect(() => iopsFor(parseVolumeSpec({ type: 'io1', iops: '1000' }), 4)).toThrow(/per GiB/);
    expect(iopsFor(parseVolumeSpec({ type: 'io1', iopsPerGB: '1', allowAutoIOPSPerGBIncrease: 'true' }), 4)).toBe(100);
  });
});

describe('device names and limits', () => {
  it('never hands out a name in use or reserved', () => {
    const a = new DeviceAllocator();
    const first = a.allocate('i-1', ['/dev/sda1', '/dev/xvdba']);
    expect(first).toBe('/dev/xvdbb');
    expect(a.allocate('i-1', ['/dev/xvdba'])).toBe('/dev/xvdbc');
    expect(a.allocate('i-2', [])).toBe('/dev/xvdba');
    a.release('i-1', first);
    expect(a.allocate('i-1', ['/dev/sdba'])).toBe('/dev/xvdbb'); // sdba and xvdba are one slot
    expect(candidateNames()).toHaveLength(25 * 26);
  });
  it('counts a reserved name once when EC2 already lists its attachment (attach limit)', () => {
    const a = new DeviceAllocator();
    const x = a.allocate('i-1', []);
    a.allocate('i-1', [x]);
    expect(a.reservedCount('i-1')).toBe(2);
    expect(a.reservedCount('i-1', ['/dev/sda1', x])).toBe(1); // x is attached, its attach still waiting
    expect(a.reservedCount('i-1', [x.replace('/dev/xvd', '/dev/sd')])).toBe(1);
    expect(a.reservedCount('i-2', [x])).toBe(0);
  });
  it('knows the attach limit by instance family', () => {
    expect(attachLimitFor('m5.large')).toBe(27);
    expect(attachLimitFor('m4.large')).toBe(40);
    expect(attachLimitFor('m7i.large')).toBe(128);
    expect(attachLimitFor('')).toBe(27);
  });
});

describe('ModifyMerger', () => {
  it('sends requests of one window as one change, and aborts a contradicting one', async () => {
    const sent: unknown[] = [];
    const m = new ModifyMerger(async (id, input) => void sent.push([id, { ...input }]), 30);
    await Promise.all([
      m.request('vol-1', { sizeGiB: 5 }),
      m.request('vol-1', { type: 'io2', iops: 100 }),
      m.request('vol-2', { type: 'gp3' }),
    ]);
    expect(sent).toEqual([
      ['vol-1', { sizeGiB: 5, type: 'io2', iops: 100 }],
      ['vol-2', { type: 'gp3' }],
    ]);
    const first = m.request('vol-1', { type: 'gp2' });
    expect(() => m.request('vol-1', { type: 'gp3' })).toThrow(/retry/);
    await first;
    expect(m.calls).toBe(3);
  });
});

describe('ebs GetCapacity (elastic: the largest volume of the type)', () => {
  const mount = { accessType: 'mount' as const, accessMode: 'SINGLE_NODE_WRITER' as const, fsType: 'ext4', mountFlags: [] };
  const multiBlock = { accessType: 'block' as const, accessMode: 'MULTI_NODE_MULTI_WRITER' as const, fsType: '', mountFlags: [] };
  it("answers the type's largest volume as available and maximum, its smallest as minimum", () => {
    expect(ebsCapacity({}, [mount], undefined, 'us-east-1')).toEqual({
      availableBytes: 16384 * GiB,
      maximumVolumeSize: 16384 * GiB,
      minimumVolumeSize: GiB,
    });
    expect(ebsCapacity({ type: 'standard' }, [mount], undefined, 'us-east-1').availableBytes).toBe(1024 * GiB);
    expect(ebsCapacity({ type: 'io2', iops: '3000' }, [multiBlock], 'us-east-1b', 'us-east-1')).toEqual({
      availableBytes: 65536 * GiB,
      maximumVolumeSize: 65536 * GiB,
      minimumVolumeSize: 4 * GiB,
    });
    expect(ebsCapacity({ type: 'st1' }, [], undefined, 'us-east-1').minimumVolumeSize).toBe(125 * GiB);
  });
  it('answers 0 for what no volume could be created with: bad parameters, Multi-Attach outside io2 block, a zone of another region', () => {
    expect(ebsCapacity({ type: 'gp9' }, [mount], undefined, 'us-east-1')).toEqual({ availableBytes: 0 });
    expect(ebsCapacity({ type: 'gp2', iops: '100' }, [mount], undefined, 'us-east-1')).toEqual({ availableBytes: 0 });
    expect(ebsCapacity({ type: 'gp3' }, [multiBlock], undefined, 'us-east-1')).toEqual({ availableBytes: 0 });
    expect(
      ebsCapacity({ type: 'io2', iops: '3000' }, [{ ...mount, accessMode: 'MULTI_NODE_MULTI_WRITER' }], undefined, 'us-east-1'),
    ).toEqual({ availableBytes: 0 });
    expect(ebsCapacity({}, [mount], 'eu-west-1a', 'us-east-1')).toEqual({ availableBytes: 0 });
  });
});
