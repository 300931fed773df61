// The Dockerfile, the systemd units and the Kubernetes and Nomad files checked by their real validators
// (hadolint, systemd-analyze verify, kubernetes-validate --strict, python-hcl2; test/deploy/validators.ts),
// then against the facts those validators do not know: the programs rexcsi runs are in the image, every
// `rexcsi serve` command line is accepted by the plugin's own parser, and the pieces agree with each other.
// Nothing here builds the image or runs a cluster (docs/packaging.md says what was and was not run).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseServeConfig, type ServeConfig } from '../../src/config.js';
import { hadolint, kubernetesValidate, parseHcl, systemdVerify } from '../deploy/validators.js';
import { REPO_ROOT } from '../helpers/plugin.js';

const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
  engines: { node: string };
};
const IMAGE = `rexcsi:${pkg.version}`;
const TEST_ROOT = process.env['REXCSI_TEST_ROOT'] ?? '/tmp/rexcsi-test';

/** A `rexcsi serve ...` command line, checked by the plugin's own parser (as the container would see it). */
function serveConfig(argv: string[], env: Record<string, string> = {}): ServeConfig {
  expect(argv[0]).toBe('serve');
  return parseServeConfig(argv.slice(1), env);
}

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? walk(join(dir, e)) : [join(dir, e)]));

// --- the programs src/ runs ------------------------------------------------------------------------------

export interface ProgramUse {
  program: string;
  file: string;
}

/**
 * Every program a file of src/ runs: the literal first argument of each run(...) / execa(...) call; a name
 * built from a template (`mkfs.${fsType}`) expanded with the keys of its file's lookup tables (`ext4: [`);
 * and the mount helper `mount -t T` runs (mount.T) for each filesystem type a backend declares that rexcsi
 * does not format itself (those are kernel filesystems, mounted without a helper).
 */
export function programsSrcRuns(): ProgramUse[] {
  const files = walk(join(REPO_ROOT, 'src'))
    .filter((f) => f.endsWith('.ts') && !f.includes('/gen'))
    .map((f) => relative(REPO_ROOT, f));
  const uses: ProgramUse[] = [];
  const formatted = new Set<string>();
  const declaredFsTypes: ProgramUse[] = [];
  for (const file of files) {
    const text = read(file);
    for (const m of text.matchAll(/(?<![\w.])(?:run|execa|execaSync)\(\s*(['"`])([^'"`]+)\1/g)) {
      const name = m[2]!;
      if (!name.includes('${')) {
        uses.push({ program: name, file });
        continue;
      }
      const [prefix, suffix] = [name.slice(0, name.indexOf('${')), name.slice(name.indexOf('}') + 1)];
      const keys = [...text.matchAll(/^\s+([a-z0-9]+): \[/gm)].map((k) => k[1]!);
      if (keys.length === 0) throw new Error(`${file}: cannot tell which programs ${name} names (no lookup table beside it)`);
      for (const k of keys) uses.push({ program: `${prefix}${k}${suffix}`, file });
      if (prefix === 'mkfs.') for (const k of keys) formatted.add(k);
    }
    for (const m of text.matchAll(/\bfsTypes: \[([^\]]*)\]/g))
      for (const t of m[1]!.matchAll(/'([a-z0-9]+)'/g)) declaredFsTypes.push({ program: t[1]!, file });
  }
  for (const t of declaredFsTypes) if (!formatted.has(t.program)) uses.push({ program: `mount.${t.program}`, file: t.file });
  return uses;
}

/** The Debian package that provides each program on this machine (one dpkg call); absent when none does. */
function debianOwners(programs: string[]): Map<string, string> {
  const r = spawnSync('dpkg', ['-S', ...programs.map((p) => `*bin/${p}`)], { encoding: 'utf8' });
  const owners = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([^:,]+)(?:, [^:]+)?: .*\/s?bin\/([^/]+)$/.exec(line);
    if (m && programs.includes(m[2]!) && !owners.has(m[2]!)) owners.set(m[2]!, m[1]!);
  }
  return owners;
}

interface DockerStage {
  from: string;
  name?: string;
  lines: string[];
}

function dockerStages(text: string): DockerStage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: DockerStage[] = [];
  for (const l of lines) {
    const from = /^FROM (\S+)(?: AS (\S+))?$/i.exec(l);
    if (from) stages.push({ from: from[1]!, ...(from[2] ? { name: from[2] } : {}), lines: [] });
    else stages.at(-1)!.lines.push(l);
  }
  return stages;
}

/** Packages marked Essential on this Debian machine: every Debian image has them (coreutils: cp). */
function essentialPackages(): Set<string> {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Essential}\\n'], { encoding: 'utf8' });
  return new Set(r.stdout.split('\n').flatMap((l) => (l.endsWith(' yes') ? [l.split(' ')[0]!] : [])));
}

/** Debian packages a stage installs with apt-get install (local .deb files by their package name). */
function aptInstalled(stage: DockerStage): Set<string> {
  const out = new Set<string>();
  for (const l of stage.lines.filter((x) => x.startsWith('RUN '))) {
    for (const part of l.split('&&').filter((p) => /apt-get install/.test(p)))
      for (const w of part.split(/\s+/).slice(part.split(/\s+/).indexOf('install') + 1)) {
        if (w.startsWith('-')) continue;
        const deb = /([a-z0-9.+-]+?)(?:[-_][0-9][^/]*)?\.deb$/.exec(w.slice(w.lastIndexOf('/') + 1));
        out.add(deb ? deb[1]! : w);
      }
  }
  return out;
}

/** The problems with the image's programs, one line each, naming what the Dockerfile lacks. */
export function missingPrograms(dockerfile: string, uses: ProgramUse[]): string[] {
  const runtime = dockerStages(dockerfile).at(-1)!;
  const installed = new Set([...aptInstalled(runtime), ...essentialPackages()]);
  const declared = new Map([...dockerfile.matchAll(/^# program (\S+): (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const programs = [...new Set(uses.map((u) => u.program))].sort();
  const owners = debianOwners(programs);
  const problems: string[] = [];
  for (const program of programs) {
    const by = uses.filter((u) => u.program === program).map((u) => u.file);
    const pkgName = owners.get(program) ?? declared.get(program);
    if (!pkgName)
      problems.push(
        `the Dockerfile lacks ${program} (run by ${by.join(', ')}): no Debian package on this machine provides it; ` +
          `install it in the runtime stage and name its package in a '# program ${program}: PACKAGE' line`,
      );
    else if (!installed.has(pkgName))
      problems.push(
        `the Dockerfile lacks ${program} (run by ${by.join(', ')}): add the Debian package ${pkgName} to the runtime stage's apt-get install`,
      );
  }
  return problems;
}

/** Node.js releases' end of life (nodejs.org release schedule): an even major is an LTS line. */
const NODE_END_OF_LIFE: Record<number, string> = { 20: '2026-04-30', 22: '2027-04-30', 24: '2028-04-30', 26: '2029-04-30' };

describe('Dockerfile', () => {
  const docker = read('Dockerfile');
  const stages = dockerStages(docker);
  const runtime = stages.at(-1)!;

  it('passes hadolint', () => {
    const r = hadolint(join(REPO_ROOT, 'Dockerfile'));
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs on a Node.js LTS line that is still supported, at least the engines minimum', () => {
    const major = Number(/^node:(\d+)-/.exec(runtime.from)?.[1]);
    expect(pkg.engines.node).toBe('>=20');
    expect(major % 2, `${runtime.from} is an LTS line`).toBe(0);
    expect(major).toBeGreaterThanOrEqual(20);
    expect(NODE_END_OF_LIFE[major], `end of life of Node ${major}`).toBeDefined();
    expect(new Date(NODE_END_OF_LIFE[major]!).getTime(), `Node ${major} is past its end of life`).toBeGreaterThan(Date.now());
  });

  it('copies only files that exist, and takes from the build stage what the package ships', () => {
    for (const l of stages.flatMap((s) => s.lines).filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      for (const s of l.split(/\s+/).slice(1, -1)) expect(existsSync(join(REPO_ROOT, s)), `COPY source ${s}`).toBe(true);
    }
    const fromBuild = runtime.lines.filter((l) => l.startsWith('COPY --from=build '));
    expect(fromBuild.length).toBeGreaterThanOrEqual(4);
    for (const l of fromBuild) {
      const src = l.split(/\s+/)[2]!.replace(/^\/src\//, '');
      expect(['package.json', 'node_modules', ...pkg.files], `${src} is part of the package`).toContain(src);
    }
    for (const l of runtime.lines.filter((x) => x.startsWith('COPY --from=')))
      expect(
        stages.map((s) => s.name),
        l,
      ).toContain(/--from=(\S+)/.exec(l)![1]);
  });

  it('starts `rexcsi serve` under tini, which reaps the helpers the plugin leaves', () => {
    expect(pkg.bin.rexcsi).toBe('dist/main.js');
    expect(runtime.lines).toContain('RUN chmod 0755 /opt/rexcsi/dist/main.js && ln -s /opt/rexcsi/dist/main.js /usr/local/bin/rexcsi');
    expect(aptInstalled(runtime).has('tini')).toBe(true);
    expect(runtime.lines).toContain('ENTRYPOINT ["/usr/bin/tini", "--", "rexcsi"]');
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(docker)![1]!) as string[];
    const env = Object.fromEntries([...docker.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(serveConfig(cmd, env).socketPath).toBe('/csi/csi.sock');
  });

  it('installs every program any file of src/ runs (found by scanning src/)', () => {
    const uses = programsSrcRuns();
    // The scan finds what the backends run, not only src/os (these are known to be there today).
    expect(uses.map((u) => u.program)).toEqual(
      expect.arrayContaining(['losetup', 'mkfs.ext4', 'mkfs.xfs', 'gluster', 'getfattr', 'mount.glusterfs', 'mount.nfs4', 'mount.efs']),
    );
    expect(missingPrograms(docker, uses)).toEqual([]);
  });

  it('names exactly which program the image lacks', () => {
    const without = docker.replace(/(apt-get install[^\n]*) glusterfs-cli/, '$1');
    expect(missingPrograms(without, [{ program: 'gluster', file: 'src/backends/glusterfs/cli.ts' }])).toEqual([
      "the Dockerfile lacks gluster (run by src/backends/glusterfs/cli.ts): add the Debian package glusterfs-cli to the runtime stage's apt-get install",
    ]);
    expect(missingPrograms(docker, [{ program: 'no-such-tool-x', file: 'src/os/x.ts' }])[0]).toMatch(
      /^the Dockerfile lacks no-such-tool-x \(run by src\/os\/x.ts\)/,
    );
  });
});

describe('systemd units', () => {
  const unit = read('packaging/systemd/rexcsi-node.service');
  const installs = [...unit.matchAll(/^# Install: (\S+) -> (\S+)$/gm)].map((m) => ({ from: m[1]!, to: m[2]! }));

  /** systemd-analyze verify on a copy whose ExecStart binary is this checkout's (npm install -g links it there). */
  function verifyUnit(rel: string, name: string, edit = (text: string): string => text): { status: number | null; output: string } {
    const dir = join(TEST_ROOT, 'systemd-verify');
    mkdirSync(dir, { recursive: true });
    // npm install -g links an executable dist/main.js at /usr/local/bin/rexcsi; a wrapper stands in here.
    const bin = join(dir, 'rexcsi');
    writeFileSync(bin, `#!/bin/sh\nexec node ${join(REPO_ROOT, pkg.bin.rexcsi!)} "$@"\n`, { mode: 0o755 });
    writeFileSync(join(dir, name), edit(read(rel)).replaceAll('/usr/local/bin/rexcsi', bin));
    return systemdVerify(join(dir, name));
  }

  it('pass systemd-analyze verify (the sidecar unit and the Mesos template unit)', () => {
    expect(readFileSync(join(REPO_ROOT, pkg.bin.rexcsi!), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    for (const [rel, name] of [
      ['packaging/systemd/rexcsi-node.service', 'rexcsi-node.service'],
      ['examples/mesos/rexcsi-node@.service', 'rexcsi-node@.service'],
    ] as const) {
      const r = verifyUnit(rel, name);
      expect(r.output, rel).toBe('');
      expect(r.status, rel).toBe(0);
    }
    // And the verifier does complain about a broken unit (on stderr, with exit status 0: hence the output check).
    const broken = verifyUnit('packaging/systemd/rexcsi-node.service', 'broken.service', (t) => t.replace('Type=simple', 'Type=simplex'));
    expect(broken.output).toContain('Failed to parse service type, ignoring: simplex');
  });

  it('is for the Mesos agent (an unmanaged plugin), not Nomad, and its Mesos config is shipped', () => {
    expect(unit).toMatch(/Not for Nomad/);
    expect(installs.map((i) => i.from)).toContain('packaging/systemd/mesos-csi-plugin.json');
    for (const i of installs) expect(existsSync(join(REPO_ROOT, i.from)), i.from).toBe(true);
  });

  it('starts `rexcsi serve` with a command line and config file the plugin accepts', () => {
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
    expect(exec[0]).toBe('/usr/local/bin/rexcsi'); // where `npm install -g` links package.json's bin
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
    expect(/^EnvironmentFile=-/m.test(unit)).toBe(true); // optional file: its absence must not stop the unit
  });
});

// --- Nomad (job specification fields: developer.hashicorp.com/nomad/docs/job-specification) ----------------
type Hcl = Record<string, unknown>;
/** An HCL block list as python-hcl2 gives it: [{label: body}] for labelled blocks, [body] otherwise. */
const blocks = (x: unknown): Hcl[] => (Array.isArray(x) ? (x as Hcl[]) : []);
const labelled = (x: unknown): [string, Hcl][] => blocks(x).flatMap((b) => Object.entries(b) as [string, Hcl][]);

/** Keys a block may have, per the job specification (the ones these files can use). */
const NOMAD_FIELDS = {
  csi_plugin: ['id', 'type', 'mount_dir', 'stage_publish_base_dir', 'health_timeout'],
  dockerConfig: ['image', 'args', 'command', 'entrypoint', 'privileged', 'mount', 'ports', 'network_mode', 'cap_add', 'devices', 'volumes'],
  mount: ['type', 'source', 'target', 'readonly', 'bind_options', 'volume_options', 'tmpfs_options'],
  volumeFile: [
    'id',
    'namespace',
    'name',
    'type',
    'external_id',
    'plugin_id',
    'snapshot_id',
    'clone_id',
    'capacity_min',
    'capacity_max',
    'capability',
    'mount_options',
    'topology_request',
    'secrets',
    'parameters',
    'context',
  ],
  capability: ['access_mode', 'attachment_mode'],
  mountOptions: ['fs_type', 'mount_flags'],
  dockerPlugin: ['allow_privileged', 'volumes', 'allow_caps', 'auth', 'gc', 'pull_activity_timeout', 'infra_image', 'logging'],
};
const ACCESS_MODES = [
  'single-node-reader-only',
  'single-node-writer',
  'multi-node-reader-only',
  'multi-node-single-writer',
  'multi-node-multi-writer',
];
const unknownKeys = (x: Hcl, allowed: string[]): string[] => Object.keys(x).filter((k) => !allowed.includes(k));

function hclOf(rel: string): Hcl {
  const r = parseHcl(read(rel));
  if (!r.ok) throw new Error(`${rel} is not valid HCL2: ${r.error}`);
  return r.value;
}

describe('Nomad files', () => {
  const dir = 'packaging/nomad';
  const hclFiles = readdirSync(join(REPO_ROOT, dir)).filter((f) => f.endsWith('.hcl'));
  const jobs = hclFiles.filter((f) => f.endsWith('.nomad.hcl')).map((f) => `${dir}/${f}`);

  it('every file parses as HCL2, and no single-line block holds more than one argument (HCL native syntax)', () => {
    for (const f of hclFiles) {
      const text = read(`${dir}/${f}`);
      expect(() => hclOf(`${dir}/${f}`), f).not.toThrow();
      // hclsyntax: a block on one line ("{ a = 1 }") may hold one argument only; comments count, being copied.
      for (const line of text.split('\n')) expect(/\{[^{}]*=[^{}]*=[^{}]*\}/.test(line), `${f}: ${line}`).toBe(false);
      // The usage example in a comment parses too, once uncommented.
      const commented = text
        .split('\n')
        .filter((l) => /^#\s{3,}/.test(l))
        .map((l) => l.replace(/^#/, ''))
        .join('\n');
      if (commented.includes('{')) expect(parseHcl(commented).ok, `${f}: its commented example`).toBe(true);
    }
  });

  it('the loop plugin is one privileged monolith job whose node id is the Nomad node', () => {
    expect(jobs).toEqual(['packaging/nomad/rexcsi-loop.nomad.hcl']);
    for (const job of jobs) {
      const [, body] = labelled(hclOf(job)['job'])[0]!;
      const tasks = labelled(body['group']).flatMap(([, g]) => labelled(g['task']));
      const plugins = tasks.filter(([, t]) => t['csi_plugin'] !== undefined);
      expect(plugins.length, job).toBe(1);
      const [, task] = plugins[0]!;
      const csi = blocks(task['csi_plugin'])[0]!;
      expect(unknownKeys(csi, NOMAD_FIELDS.csi_plugin), job).toEqual([]);
      expect(csi['type']).toBe('monolith');
      expect(task['driver']).toBe('docker');
      const config = blocks(task['config'])[0]!;
      expect(unknownKeys(config, NOMAD_FIELDS.dockerConfig), job).toEqual([]);
      for (const m of blocks(config['mount'])) expect(unknownKeys(m, NOMAD_FIELDS.mount), job).toEqual([]);
      expect(config['privileged']).toBe(true);
      expect(config['image']).toBe(IMAGE);
      const args = config['args'] as string[];
      // Without it rexcsi takes the container's hostname, which no Nomad node has.
      expect(args[args.indexOf('--node-id') + 1]).toBe('${node.unique.name}');
      const parsed = serveConfig(args, { CSI_ENDPOINT: `unix://${String(csi['mount_dir'])}/csi.sock` });
      expect(parsed.mode).toBe('both');
      expect(parsed.nodeId).toBe('${node.unique.name}');
      expect(blocks(config['mount']).map((m) => m['source'])).toEqual(expect.arrayContaining(['/dev', '/var/lib/rexcsi']));
      const volume = hclOf(`${dir}/volume.hcl`);
      expect(unknownKeys(volume, NOMAD_FIELDS.volumeFile)).toEqual([]);
      expect(volume['plugin_id']).toBe(csi['id']);
      for (const c of blocks(volume['capability'])) {
        expect(unknownKeys(c, NOMAD_FIELDS.capability)).toEqual([]);
        expect(ACCESS_MODES).toContain(c['access_mode']);
        expect(['file-system', 'block-device']).toContain(c['attachment_mode']);
      }
      for (const m of blocks(volume['mount_options'])) {
        expect(unknownKeys(m, NOMAD_FIELDS.mountOptions)).toEqual([]);
        expect(parsed.backend.name === 'loop' ? ['ext4', 'xfs'] : []).toContain(m['fs_type']);
      }
    }
  });

  it("the client's Docker driver allows privileged containers and host volumes", () => {
    const [name, plugin] = labelled(hclOf(`${dir}/client.hcl`)['plugin'])[0]!;
    expect(name).toBe('docker');
    const config = blocks(plugin['config'])[0]!;
    expect(unknownKeys(config, NOMAD_FIELDS.dockerPlugin)).toEqual([]);
    expect(config['allow_privileged']).toBe(true);
    expect(blocks(config['volumes'])[0]?.['enabled']).toBe(true);
  });
});

// --- Kubernetes ------------------------------------------------------------------------------------------
type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: object;
  securityContext?: { privileged?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
};
type Volume = { name: string; hostPath?: { path: string } };
type PodSpec = {
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: { operator?: string }[];
  containers: Container[];
  volumes: Volume[];
};
type Obj = { kind: string; metadata: { name: string }; provisioner?: string; driver?: string; spec?: { template?: { spec: PodSpec } } };
const K8S = 'packaging/kubernetes';
const k8sFiles = readdirSync(join(REPO_ROOT, K8S)).filter((f) => f.endsWith('.yaml'));
const docs = (file: string): Obj[] => parseAllDocuments(read(`${K8S}/${file}`)).map((d) => d.toJS() as Obj);
export const kubernetesObjects = (): Obj[] => k8sFiles.flatMap(docs);

describe('Kubernetes manifests', () => {
  const all = kubernetesObjects();
  const driver = all.find((o) => o.kind === 'CSIDriver')!;

  it('pass kubernetes-validate --strict (the API schemas, unknown fields refused), every built-in resource', () => {
    const { status, findings } = kubernetesValidate(k8sFiles.map((f) => `${K8S}/${f}`));
    expect(findings.filter((f) => !f.passed && !/Couldn't find schema for kind VolumeSnapshotClass/.test(f.line))).toEqual([]);
    expect(status).toBe(0);
    expect(findings.filter((f) => f.passed).length).toBe(all.filter((o) => o.kind !== 'VolumeSnapshotClass').length);
    const bad = join(TEST_ROOT, 'bad-csidriver.yaml');
    mkdirSync(TEST_ROOT, { recursive: true });
    writeFileSync(bad, read(`${K8S}/csidriver.yaml`).replace('podInfoOnMount: false', 'podInfoOnMount: false\n  attachRequire: true'));
    const refused = kubernetesValidate([bad]);
    expect(refused.status).not.toBe(0);
    expect(refused.findings.map((f) => f.line).join('\n')).toContain("'attachRequire' was unexpected");
  });

  it('the VolumeSnapshotClass (a CRD the validator has no schema for) has only the v1 fields', () => {
    const classes = all.filter((o) => o.kind === 'VolumeSnapshotClass');
    expect(classes.length).toBe(1);
    for (const c of classes) {
      expect(
        Object.keys(c).filter((k) => !['apiVersion', 'kind', 'metadata', 'driver', 'deletionPolicy', 'parameters'].includes(k)),
      ).toEqual([]);
      expect(c.driver).toBe(driver.metadata.name);
      expect(['Delete', 'Retain']).toContain((c as unknown as { deletionPolicy: string }).deletionPolicy);
    }
  });

  it('loop runs as one privileged DaemonSet in --mode both with every sidecar, tolerations and linux nodes', () => {
    expect(all.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')).toEqual([]);
    const ds = all.filter((o) => o.kind === 'DaemonSet');
    expect(ds.length).toBe(1);
    const pod = ds[0]!.spec!.template!.spec;
    expect(pod.nodeSelector?.['kubernetes.io/os']).toBe('linux');
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    const plugin = pod.containers.find((c) => c.name === 'rexcsi')!;
    expect(plugin.securityContext?.privileged).toBe(true);
    expect(plugin.volumeMounts!.map((m) => m.mountPath)).toContain('/dev');
    const env = Object.fromEntries((plugin.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    expect(serveConfig(plugin.args!, env).mode).toBe('both');
    expect(pod.containers.map((c) => c.name).sort()).toEqual(
      ['rexcsi', 'csi-provisioner', 'csi-resizer', 'csi-snapshotter', 'node-driver-registrar', 'liveness-probe'].sort(),
    );
  });

  it('sidecars have a --timeout longer than a whole-file copy needs, and the liveness probe does not share the metrics port', () => {
    const pod = all.find((o) => o.kind === 'DaemonSet')!.spec!.template!.spec;
    for (const name of ['csi-provisioner', 'csi-resizer', 'csi-snapshotter']) {
      const timeout = pod.containers.find((c) => c.name === name)!.args!.find((a) => a.startsWith('--timeout='));
      expect(timeout, name).toBeDefined();
      expect(Number(/^--timeout=(\d+)s$/.exec(timeout!)?.[1]), name).toBeGreaterThanOrEqual(60);
    }
    const plugin = pod.containers.find((c) => c.name === 'rexcsi')!;
    const probe = pod.containers.find((c) => c.name === 'liveness-probe')!;
    const probePort = Number(/:(\d+)$/.exec(probe.args!.find((a) => a.startsWith('--http-endpoint='))!)![1]);
    const env = Object.fromEntries((plugin.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const metrics = serveConfig(plugin.args!, env).metricsAddress;
    expect(metrics?.port).toBeDefined();
    expect(metrics!.port).not.toBe(probePort);
    expect(plugin.ports).toContainEqual({ name: 'healthz', containerPort: probePort });
    expect(plugin.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'healthz' } });
  });

  it('wires the pod together: driver name, shared socket, volumes, service account, registration path', () => {
    for (const workload of all.filter((o) => o.kind === 'DaemonSet')) {
      const pod = workload.spec!.template!.spec;
      expect(all.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === pod.serviceAccountName)).toBe(true);
      const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
      const plugin = pod.containers.find((c) => c.name === 'rexcsi')!;
      expect(plugin.image).toBe(IMAGE);
      const env = Object.fromEntries((plugin.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      const config = serveConfig(plugin.args!, env);
      expect(config.pluginName).toBe(driver.metadata.name);
      expect(all.find((o) => o.kind === 'StorageClass')?.provisioner).toBe(driver.metadata.name);
      const socketDir = config.socketPath.slice(0, config.socketPath.lastIndexOf('/'));
      const socketVolume = plugin.volumeMounts!.find((m) => m.mountPath === socketDir)!.name;
      expect(volumes.get(socketVolume)!.hostPath!.path).toBe(`/var/lib/kubelet/plugins/${driver.metadata.name}`);
      for (const c of pod.containers) {
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${c.name} mounts ${m.name}`).toBe(true);
        if (c === plugin) continue;
        const address = c.args!.find((a) => a.startsWith('--csi-address='))!.split('=')[1]!;
        const mount = c.volumeMounts!.find((m) => address.startsWith(`${m.mountPath}/`))!;
        expect(mount.name, `${c.name} shares the socket volume`).toBe(socketVolume);
        expect(address.slice(mount.mountPath.length)).toBe(config.socketPath.slice(socketDir.length));
        const registration = c.args!.find((a) => a.startsWith('--kubelet-registration-path='));
        if (registration) expect(registration.split('=')[1]).toBe(`${volumes.get(socketVolume)!.hostPath!.path}/csi.sock`);
      }
    }
  });
});
