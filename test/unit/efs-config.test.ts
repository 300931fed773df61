// The efs backend's options: what `rexcsi serve --backend efs ...` accepts and refuses, and the tags that
// carry a volume's name and parameters through EFS's restricted tag alphabet.
import { describe, expect, it } from 'vitest';
import { parseServeConfig } from '../../src/config.js';
import { createEfsBackend } from '../../src/backends/efs/factory.js';
import { allocateGid } from '../../src/backends/efs/efs.js';
import { managedTags, readManaged } from '../../src/backends/efs/tags.js';
import type { AccessPoint } from '../../src/backends/efs/api.js';

const ctx = (options: Record<string, string | boolean | undefined>) => ({ nodeId: 'n1', maxVolumesPerNode: 0, options });

describe('efs backend options', () => {
  it('parses --backend efs with its flags, and refuses them for another backend', () => {
    const c = parseServeConfig(
      ['--backend', 'efs', '--region', 'eu-west-1', '--zone', 'eu-west-1b', '--efs-utils', '--endpoint-url', 'http://127.0.0.1:5000'],
      {},
    );
    expect(c.backend.name).toBe('efs');
    expect(c.backendOptions).toMatchObject({
      region: 'eu-west-1',
      zone: 'eu-west-1b',
      'efs-utils': true,
      'endpoint-url': 'http://127.0.0.1:5000',
    });
    expect(() => parseServeConfig(['--backend', 'loop', '--efs-utils'], {})).toThrow(/not an option of the loop backend/);
    expect(parseServeConfig(['--backend', 'efs'], { AWS_REGION: 'us-west-2', REXCSI_EFS_UTILS: 'true' }).backendOptions).toMatchObject({
      region: 'us-west-2',
      'efs-utils': true,
    });
  });

  it('needs a region, a zone of that region and an http(s) endpoint', async () => {
    await expect(createEfsBackend(ctx({}), {})).rejects.toThrow(/needs --region/);
    await expect(createEfsBackend(ctx({ region: 'mars' }), {})).rejects.toThrow(/not an AWS region/);
    await expect(createEfsBackend(ctx({ region: 'us-east-1', zone: 'eu-west-1a' }), {})).rejects.toThrow(/not a zone of region us-east-1/);
    await expect(createEfsBackend(ctx({ region: 'us-east-1', 'endpoint-url': 'ftp://x' }), {})).rejects.toThrow(/not an http/);
    expect((await createEfsBackend(ctx({}), { AWS_DEFAULT_REGION: 'us-east-1' })).name).toBe('efs');
  });

  it('takes the endpoint from --endpoint-url, else AWS_ENDPOINT_URL_EFS, else AWS_ENDPOINT_URL', async () => {
    const endpointOf = (b: Awaited<ReturnType<typeof createEfsBackend>>) =>
      (b as unknown as { api: { config: { endpoint?: string } } }).api.config.endpoint;
    const env = { AWS_ENDPOINT_URL_EFS: 'http://efs:1', AWS_ENDPOINT_URL: 'http://all:2' };
    expect(endpointOf(await createEfsBackend(ctx({ region: 'us-east-1', 'endpoint-url': 'http://flag:3' }), env))).toBe('http://flag:3');
    expect(endpointOf(await createEfsBackend(ctx({ region: 'us-east-1' }), env))).toBe('http://efs:1');
    expect(endpointOf(await createEfsBackend(ctx({ region: 'us-east-1' }), { AWS_ENDPOINT_URL: 'http://all:2' }))).toBe('http://all:2');
    expect(endpointOf(await createEfsBackend(ctx({ region: 'us-east-1' }), {}))).toBeUndefined();
  });
});

describe('efs tags and gids', () => {
  const ap = (tags: { key: string; value: string }[], gid?: number): AccessPoint => ({
    id: 'fsap-00000001',
    fileSystemId: 'fs-00000001',
    gid,
    rootPath: '/x',
    lifeCycleState: 'available',
    tags,
  });

  it('round-trips any name and up to 4 KiB of parameters through tag values EFS accepts', () => {
    const name = 'näme with spaces, "quotes" and {braces}';
    const parameters = { fileSystemId: 'fs-00000001', directoryPerms: '700', 'csi.storage.k8s.io/pvc/name': 'x'.repeat(3000) };
    const tags = managedTags(name, 12345, parameters);
    for (const t of tags) {
      expect(t.value.length).toBeLessThanOrEqual(256);
      expect(t.value).toMatch(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u);
    }
    expect(tags.length).toBeLessThan(50); // EFS allows 50 tags per resource
    expect(readManaged(ap(tags))).toEqual({ name, capacityBytes: 12345, parameters, ready: false });
    expect(readManaged(ap([{ key: 'Name', value: 'foreign' }]))).toBeUndefined();
  });

  it('allocates the lowest free gid first, a random free one on a retry, and none when the range is full', () => {
    const used = [ap([], 10), ap([], 11), ap([], 13)];
    expect(allocateGid({ start: 10, end: 20 }, used, 0)).toBe(12);
    for (let i = 0; i < 20; i++) expect([12, 14, 15, 16, 17, 18, 19, 20]).toContain(allocateGid({ start: 10, end: 20 }, used, 1));
    expect(() => allocateGid({ start: 10, end: 11 }, used, 0)).toThrow(/every gid from 10 to 11/);
  });
});
