// Hostile input on the Docker volume plugin API (HTTP over a unix socket): names with "/" and "..",
// oversized bodies, malformed JSON, wrong types, unknown endpoints and methods. Each gets a 4xx with a
// clear {"Err"}; afterwards nothing has changed (no volume, no file outside the plugin's roots, no mount)
// and the plugin still answers.
//
// SANDBOX ONLY (like hostile.test.ts): scripts/test.sh runs test/hostile inside scripts/sandbox.sh.
import { request } from 'node:http';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callDockerApi } from '../../src/docker/client.js';
import { readMountInfo } from '../../src/os/index.js';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let plugin: PluginProcess;
let csi: CsiClients;
let dir: string;
let socket: string;
let mountsBefore: string[];

const mountTable = async () => (await readMountInfo()).map((m) => `${m.mountPoint} ${m.source}`).sort();

async function listing(d: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    for (const e of await readdir(p, { withFileTypes: true }).catch(() => [])) {
      out.push(join(p, e.name));
      if (e.isDirectory()) await walk(join(p, e.name));
    }
  };
  await walk(d);
  return out.sort();
}

/**
 * A raw request: any method, path and body bytes; `chunked` sends no Content-Length, `slow` writes the body in
 * pieces with pauses between them. It settles once the answer has been read and the whole body written, so a
 * connection the plugin resets under a client still writing fails it (EPIPE).
 */
function raw(method: string, path: string, body: string | Buffer, opts: { chunked?: boolean; slow?: boolean } = {}) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const bytes = Buffer.from(body);
    const headers = opts.chunked ? {} : { 'Content-Length': bytes.length };
    let answer: { status: number; text: string } | undefined;
    let written = false;
    const settle = () => answer && written && resolve(answer);
    const req = request({ socketPath: socket, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        answer = { status: res.statusCode ?? 0, text };
        settle();
      });
    });
    req.on('error', reject);
    req.on('finish', () => {
      written = true;
      settle();
    });
    if (!opts.slow) {
      req.end(bytes);
      return;
    }
    void (async () => {
      for (let at = 0; at < bytes.length; at += 64 * 1024) {
        if (!req.write(bytes.subarray(at, at + 64 * 1024))) await new Promise((r) => req.once('drain', r));
        await new Promise((r) => setTimeout(r, 2));
      }
      req.end();
    })().catch(reject);
  });
}

function errOf(text: string): string {
  const body = JSON.parse(text) as { Err?: unknown };
  expect(typeof body.Err).toBe('string');
  return body.Err as string;
}

beforeAll(async () => {
  if (process.env['REXCSI_SANDBOXED'] !== '1') throw new Error('test/hostile runs only inside the sandbox (scripts/test.sh)');
  dir = await makeTempDir('docker-hostile');
  socket = join(dir, 'rexcsi.sock');
  await mkdir(join(dir, 'canary'));
  await writeFile(join(dir, 'canary', 'keep'), 'keep');
  plugin = await startPlugin({ name: 'docker-hostile', args: ['--docker-endpoint', socket, '--docker-root', join(dir, 'docker')] });
  csi = csiClients(plugin.endpoint);
  mountsBefore = await mountTable();
});

afterAll(async () => {
  csi?.close();
  await plugin?.cleanup();
  if (dir) await removeTempDir(dir);
});

const NAMES: unknown[] = [
  '../x',
  '..',
  '.',
  'a/b',
  '/etc',
  'x/../../canary',
  '../../../../tmp/evil',
  '\0',
  'a\nb',
  '.mounts.json',
  'n'.repeat(129),
  '',
  'é',
  5,
  null,
  [],
  {},
  true,
];
const METHODS = [
  'VolumeDriver.Create',
  'VolumeDriver.Remove',
  'VolumeDriver.Mount',
  'VolumeDriver.Unmount',
  'VolumeDriver.Path',
  'VolumeDriver.Get',
];

describe('hostile input on the Docker volume plugin API', () => {
  it('every bad name on every volume call is a 400 whose Err names the problem with Name', async () => {
    for (const method of METHODS) {
      for (const Name of NAMES) {
        const res = await callDockerApi(socket, method, { Name, ID: 'x', Opts: {} });
        expect(res.status, `${method} ${JSON.stringify(Name)}`).toBe(400);
        expect(errOf(res.text)).toMatch(/^Name /);
      }
    }
  });

  it('wrong types of Opts and ID, and opts the backend cannot do, are 400s naming the field', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['VolumeDriver.Create', { Name: 'v', Opts: 'size=1' }, /^Opts must be an object/],
      ['VolumeDriver.Create', { Name: 'v', Opts: ['size'] }, /^Opts must be an object/],
      ['VolumeDriver.Create', { Name: 'v', Opts: { size: 5 } }, /^Opts.size must be a string/],
      ['VolumeDriver.Create', { Name: 'v', Opts: { size: '1e99' } }, /size="1e99"/],
      ['VolumeDriver.Create', { Name: 'v', Opts: { size: '99999999999999Ti' } }, /size=/],
      ['VolumeDriver.Create', { Name: 'v', Opts: { '../../x': 'y' } }, /option \.\.\/\.\.\/x is not something the loop backend can do/],
      ['VolumeDriver.Create', { Name: 'v', Opts: { fsType: 'btrfs' } }, /btrfs/],
      ['VolumeDriver.Mount', { Name: 'v', ID: 5 }, /^ID must be a string/],
      ['VolumeDriver.Mount', { Name: 'v', ID: 'a\nb' }, /control characters/],
      ['VolumeDriver.Unmount', { Name: 'v', ID: 'x'.repeat(300) }, /longer than 256/],
    ];
    for (const [method, body, err] of cases) {
      const res = await callDockerApi(socket, method, body);
      expect(res.status, `${method} ${JSON.stringify(body).slice(0, 80)}`).toBe(400);
      expect(errOf(res.text)).toMatch(err);
    }
  });

  it('malformed bodies, oversized bodies, unknown endpoints and methods are 4xx with an Err', async () => {
    for (const body of ['{', 'abc', '[1]', '"x"', '5', '{"Name": "v",}', '\u0000', '['.repeat(60_000)]) {
      const res = await raw('POST', '/VolumeDriver.Create', body);
      expect(res.status, body.slice(0, 20)).toBe(400);
      expect(errOf(res.text)).toMatch(/^request body/);
    }
    // A client still writing its oversized body reads the 413, not a reset connection (EPIPE): repeated,
    // since the reset was a race. Both a declared length and a chunked body that grows past the limit.
    for (let i = 0; i < 3; i++) {
      for (const opts of [{}, { chunked: true }, { slow: true }, { chunked: true, slow: true }]) {
        const huge = await raw('POST', '/VolumeDriver.Create', Buffer.alloc(2 * 1024 * 1024, 'a'), opts);
        expect(huge.status, JSON.stringify(opts)).toBe(413);
        expect(errOf(huge.text)).toContain('over the limit');
      }
    }
    for (const path of [
      '/VolumeDriver.Nope',
      '/',
      '/../../etc/passwd',
      '/__proto__',
      '/constructor',
      '/toString',
      '/VolumeDriver.Create/../x',
    ]) {
      const res = await raw('POST', path, '{}');
      expect(res.status, path).toBe(404);
      expect(errOf(res.text)).toContain('unknown endpoint');
    }
    const get = await raw('GET', '/VolumeDriver.List', '');
    expect(get.status).toBe(405);
    expect(errOf(get.text)).toContain('takes POST');
  });

  it('nothing changed: no volume, no file outside the roots, no mount; the plugin still answers', async () => {
    expect((await csi.controller.ListVolumes({})).entries).toEqual([]);
    expect(await listing(dir)).toEqual([join(dir, 'canary'), join(dir, 'canary', 'keep'), join(dir, 'docker'), socket].sort());
    expect(await mountTable()).toEqual(mountsBefore);
    const ok = await callDockerApi(socket, 'VolumeDriver.List', {});
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ Volumes: [] });
  });
});
