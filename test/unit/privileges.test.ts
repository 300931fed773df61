// What a node plugin checks at start-up and in Probe: exactly what its backend declares it needs.
import { describe, expect, it } from 'vitest';
import { BLOCK_NODE_REQUIREMENTS, FILESYSTEM_NODE_REQUIREMENTS } from '../../src/backends/backend.js';
import { EBS_NODE_REQUIREMENTS } from '../../src/backends/ebs/ebs.js';
import { LOOP_NODE_REQUIREMENTS } from '../../src/backends/loop/loop.js';
import { checkNodePrivileges } from '../../src/os/privileges.js';

describe('node requirements', () => {
  it('names each declared tool and device that is missing, and nothing it was not asked about', async () => {
    const problem = await checkNodePrivileges({
      tools: ['mount', 'rexcsi-no-such-tool'],
      devices: ['/dev/rexcsi-no-such-device'],
      linuxCapabilities: [],
    });
    expect(problem).toBe('cannot do node work: /dev/rexcsi-no-such-device not accessible; missing tools: rexcsi-no-such-tool');
    expect(await checkNodePrivileges({ tools: [], devices: [], linuxCapabilities: [] })).toBeUndefined();
  });

  it('asks an ebs node for the block path only: no losetup, no /dev/loop-control', () => {
    expect(EBS_NODE_REQUIREMENTS.tools).not.toContain('losetup');
    expect(EBS_NODE_REQUIREMENTS.devices).not.toContain('/dev/loop-control');
    expect(EBS_NODE_REQUIREMENTS.tools).toEqual(expect.arrayContaining(['blkid', 'wipefs', 'mkfs.ext4', 'mount', 'umount']));
  });

  it('asks a loop node for the block path plus losetup and /dev/loop-control', () => {
    expect(LOOP_NODE_REQUIREMENTS.tools).toEqual(expect.arrayContaining([...BLOCK_NODE_REQUIREMENTS.tools, 'losetup']));
    expect(LOOP_NODE_REQUIREMENTS.devices).toEqual(['/dev/loop-control']);
    expect(LOOP_NODE_REQUIREMENTS.linuxCapabilities).toEqual(['CAP_SYS_ADMIN']);
  });

  it('asks a network filesystem node only to mount', () => {
    expect(FILESYSTEM_NODE_REQUIREMENTS).toEqual({ tools: ['mount', 'umount'], devices: [], linuxCapabilities: ['CAP_SYS_ADMIN'] });
  });
});
