// The Dockerfile, the systemd unit and the Nomad and Kubernetes examples cannot be run here (no Docker
// engine, no cluster), so this checks what can be checked without them: every file they copy or install
// exists in the package, every command they run exists, every `rexcsi` command line they hold is accepted
// by the real configuration parser, and the pieces agree with each other (socket paths, driver name, image).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseServeConfig, type ServeConfig } from '../../src/config.js';
import { REPO_ROOT } from '../helpers/plugin.js';

const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
};
const IMAGE = `rexcsi:${pkg.version}`;

/** A `rexcsi serve ...` command line, checked by the plugin's own parser (as the container would see it). */
function serveConfig(argv: string[], env: Record<string, string> = {}): ServeConfig {
  expect(argv[0]).toBe('serve');
  return parseServeConfig(argv.slice(1), env);
}

/** The commands src/os runs through run(): literal names, plus mkfs.<fs> for each filesystem formatted. */
function commandsTheOsLayerRuns(): string[] {
  const names = new Set<string>();
  for (const file of ['exec', 'format', 'fs', 'loop', 'mount', 'mountinfo', 'privileges']
    .map((f) => `src/os/${f}.ts`)
    .filter((f) => existsSync(join(REPO_ROOT, f)))) {
    for (const m of read(file).matchAll(/\brun\(\s*'([a-z0-9_.-]+)'/g)) names.add(m[1]!);
  }
  for (const m of read('src/os/format.ts').matchAll(/\b(ext4|xfs): \[/g)) names.add(`mkfs.${m[1]}`);
  return [...names].sort();
}

/** The Debian package that provides each command on this (Debian) machine (one dpkg call: it is slow). */
function debianPackagesOf(commands: string[]): Map<string, string> {
  const out = execFileSync('dpkg', ['-S', ...commands.map((c) => `bin/${c}`)], { encoding: 'utf8' });
  const owners = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([^:]+): .*\/s?bin\/([^/]+)$/.exec(line);
    if (m && commands.includes(m[2]!) && !owners.has(m[2]!)) owners.set(m[2]!, m[1]!);
  }
  return owners;
}

describe('Dockerfile', () => {
  const docker = read('Dockerfile');
  const lines = docker
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('copies only files that exist in the repository', () => {
    const copies = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const l of copies) {
      const sources = l.split(/\s+/).slice(1, -1);
      for (const s of sources) expect(existsSync(join(REPO_ROOT, s)), `COPY source ${s}`).toBe(true);
    }
  });

  it('takes from the build stage what `npm run build` makes and the package ships', () => {
    expect(pkg.scripts.build).toBeTruthy();
    expect(docker).toContain('RUN npm run build');
    const fromBuild = lines.filter((l) => l.startsWith('COPY --from=build '));
    expect(fromBuild.length).toBeGreaterThanOrEqual(4);
    for (const l of fromBuild) {
      const src = l.split(/\s+/)[2]!.replace(/^\/src\//, '');
      expect(existsSync(join(REPO_ROOT, src)), `${src} (built)`).toBe(true);
      expect(['package.json', 'node_modules', ...pkg.files].includes(src), `${src} is part of the package`).toBe(true);
    }
  });

  it('runs `rexcsi serve` through the executable the package declares', () => {
    expect(pkg.bin.rexcsi).toBe('dist/main.js');
    expect(read('dist/main.js').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(docker).toMatch(/ln -s \/opt\/rexcsi\/dist\/main\.js \/usr\/local\/bin\/rexcsi/);
    expect(docker).toMatch(/^WORKDIR \/opt\/rexcsi$/m);
    expect(docker).toContain('ENTRYPOINT ["rexcsi"]');
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(docker)![1]!) as string[];
    const env = Object.fromEntries([...docker.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(serveConfig(cmd, env).socketPath).toBe('/csi/csi.sock');
  });

  it('installs the packages that provide every command the OS layer runs', () => {
    const install = lines.find((l) => l.includes('apt-get install'))!;
    const packages = install
      .split('&&')
      .find((p) => p.includes('apt-get install'))!
      .split(/\s+/)
      .filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w) && !['apt-get', 'install'].includes(w));
    for (const p of ['e2fsprogs', 'xfsprogs', 'util-linux', 'glusterfs-client', 'nfs-common']) expect(packages).toContain(p);
    const commands = commandsTheOsLayerRuns();
    expect(commands).toEqual(expect.arrayContaining(['blkid', 'losetup', 'mkfs.ext4', 'mkfs.xfs', 'mount', 'umount']));
    const owners = debianPackagesOf(commands);
    for (const c of commands) {
      expect(owners.get(c), `the Debian package providing ${c}`).toBeDefined();
      expect(packages, `package for ${c}`).toContain(owners.get(c));
    }
  });
});

describe('systemd unit for the node sidecar', () => {
  const unit = read('packaging/systemd/rexcsi-node.service');
  const installs = [...unit.matchAll(/^# Install: (\S+) -> (\S+)$/gm)].map((m) => ({ from: m[1]!, to: m[2]! }));

  it('installs files that exist in the package', () => {
    expect(installs.length).toBeGreaterThanOrEqual(2);
    for (const i of installs) expect(existsSync(join(REPO_ROOT, i.from)), i.from).toBe(true);
  });

  it('starts `rexcsi serve` with a command line and config file the plugin accepts', () => {
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
    expect(exec[0]).toBe('/usr/local/bin/rexcsi'); // where `npm install -g` links package.json's bin
    expect(unit).toContain('Install: npm install -g rexcsi (provides /usr/local/bin/rexcsi)');
    // Every absolute path on the command line is one the unit's Install lines provide.
    const argv = exec.slice(1).map((a) => {
      if (!a.startsWith('/')) return a;
      const provided = installs.find((i) => i.to === a);
      expect(provided, `${a} is installed`).toBeDefined();
      return join(REPO_ROOT, provided!.from);
    });
    const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const config = serveConfig(argv, env);
    expect(config.socketPath).toBe('/run/rexcsi/csi.sock');
    expect(unit).toContain('RuntimeDirectory=rexcsi'); // creates /run/rexcsi for the socket
    expect(config.metricsAddress).toEqual({ host: '127.0.0.1', port: 9808 });
    expect(/^EnvironmentFile=-/m.test(unit)).toBe(true); // optional file: its absence must not stop the unit
  });
});

describe('Nomad examples', () => {
  const jobs = ['packaging/nomad/rexcsi-controller.nomad.hcl', 'packaging/nomad/rexcsi-node.nomad.hcl'];

  it('run the package image with command lines the plugin accepts, as one plugin id', () => {
    const ids = new Set<string>();
    for (const job of jobs) {
      const text = read(job);
      expect(/image\s*=\s*"([^"]+)"/.exec(text)?.[1]).toBe(IMAGE);
      const args = JSON.parse(/args\s*=\s*(\[.*\])/.exec(text)![1]!) as string[];
      const type = /type\s*=\s*"(controller|node|monolith)"/.exec(text)![1]!;
      // Nomad sets CSI_ENDPOINT to <mount_dir>/csi.sock inside the task.
      const mountDir = /mount_dir\s*=\s*"([^"]+)"/.exec(text)![1]!;
      const config = serveConfig(args, { CSI_ENDPOINT: `unix://${mountDir}/csi.sock` });
      expect(config.mode).toBe(type === 'monolith' ? 'both' : type);
      ids.add(/id\s*=\s*"([^"]+)"/.exec(text.slice(text.indexOf('csi_plugin')))![1]!);
    }
    expect([...ids]).toEqual(['rexcsi']);
    const volume = read('packaging/nomad/volume.hcl');
    expect(volume).toContain('plugin_id = "rexcsi"');
    const config = serveConfig(['serve']);
    expect(config.backend.name).toBe('loop');
    expect(['ext4', 'xfs']).toContain(/fs_type = "(\w+)"/.exec(volume)![1]);
  });
});

describe('Kubernetes examples', () => {
  type Container = {
    name: string;
    image: string;
    args?: string[];
    env?: { name: string; value?: string }[];
    volumeMounts?: { name: string; mountPath: string }[];
  };
  type Volume = { name: string; hostPath?: { path: string }; emptyDir?: object };
  type Obj = {
    kind: string;
    metadata: { name: string };
    provisioner?: string;
    spec?: { template?: { spec: { serviceAccountName?: string; containers: Container[]; volumes: Volume[] } } };
  };
  const docs = (file: string): Obj[] => parseAllDocuments(read(file)).map((d) => d.toJS() as Obj);
  const all = ['csidriver.yaml', 'rbac.yaml', 'controller.yaml', 'node.yaml'].flatMap((f) => docs(`packaging/kubernetes/${f}`));
  const driver = all.find((o) => o.kind === 'CSIDriver')!;

  it('has a CSIDriver, a controller Deployment with the standard sidecars and a node DaemonSet with the registrar', () => {
    expect(driver).toBeDefined();
    const deployment = all.find((o) => o.kind === 'Deployment')!;
    const daemonSet = all.find((o) => o.kind === 'DaemonSet')!;
    expect(deployment.spec!.template!.spec.containers.map((c) => c.name)).toEqual([
      'rexcsi',
      'csi-provisioner',
      'csi-resizer',
      'csi-snapshotter',
    ]);
    expect(daemonSet.spec!.template!.spec.containers.map((c) => c.name)).toEqual(['rexcsi', 'node-driver-registrar']);
    expect(all.find((o) => o.kind === 'StorageClass')?.provisioner).toBe(driver.metadata.name);
  });

  it('wires each pod together: plugin command line, driver name, shared socket, volumes, service account', () => {
    for (const workload of all.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')) {
      const pod = workload.spec!.template!.spec;
      expect(
        all.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === pod.serviceAccountName),
        `${workload.metadata.name} service account`,
      ).toBe(true);
      const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
      const plugin = pod.containers.find((c) => c.name === 'rexcsi')!;
      expect(plugin.image).toBe(IMAGE);
      const env = Object.fromEntries((plugin.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      const config = serveConfig(plugin.args!, env);
      expect(config.mode).toBe(workload.kind === 'Deployment' ? 'controller' : 'node');
      expect(config.pluginName).toBe(driver.metadata.name);
      const socketDir = config.socketPath.slice(0, config.socketPath.lastIndexOf('/'));
      const socketVolume = plugin.volumeMounts!.find((m) => m.mountPath === socketDir)!.name;
      for (const c of pod.containers) {
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${c.name} mounts ${m.name}`).toBe(true);
        if (c === plugin) continue;
        // Each sidecar reaches the plugin's socket through the same volume.
        const address = c.args!.find((a) => a.startsWith('--csi-address='))!.split('=')[1]!;
        const mount = c.volumeMounts!.find((m) => address.startsWith(`${m.mountPath}/`))!;
        expect(mount.name, `${c.name} shares the socket volume`).toBe(socketVolume);
        expect(address.slice(mount.mountPath.length)).toBe(config.socketPath.slice(socketDir.length));
        const registration = c.args!.find((a) => a.startsWith('--kubelet-registration-path='));
        if (registration) {
          // The kubelet finds the socket on the host at the path the plugin-dir hostPath maps to /csi.
          expect(registration.split('=')[1]).toBe(`${volumes.get(socketVolume)!.hostPath!.path}/csi.sock`);
          expect(volumes.get(socketVolume)!.hostPath!.path).toBe(`/var/lib/kubelet/plugins/${driver.metadata.name}`);
        }
      }
    }
  });
});
