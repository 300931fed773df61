// Every file in examples/mesos/ loaded and checked against the field names and shapes Mesos (and Marathon)
// read, written down as small typed checkers. Each checker returns the problems it found, so a failure names
// the file and the field. Where an example starts rexcsi, its command line is parsed by the plugin's own
// configuration parser.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/plugin.js';
import { parseServeConfig } from '../../src/config.js';
import { findBackend } from '../../src/backends/registry.js';

const DIR = join(REPO_ROOT, 'examples', 'mesos');
const BACKENDS = ['loop', 'ebs', 'glusterfs', 'efs'];
const JAVA_TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const CSI_SERVICES = ['CONTROLLER_SERVICE', 'NODE_SERVICE'];
const ACCESS_MODES = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
];

type Json = unknown;
type Problems = string[];

const isObject = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStringMap = (x: Json): boolean => isObject(x) && Object.values(x).every((v) => typeof v === 'string');

/** Fields not in `allowed` are typos Mesos' JSON->protobuf parsing would reject. */
function onlyFields(x: Record<string, Json>, allowed: string[], where: string, out: Problems): void {
  for (const k of Object.keys(x)) if (!allowed.includes(k)) out.push(`${where}: unknown field ${k}`);
}

async function loadJson(file: string): Promise<Json> {
  return JSON.parse(await readFile(join(DIR, file), 'utf8')) as Json;
}

/** CSIVolume.VolumeCapability (mesos.proto), as in disk profiles and static_provisioning. */
export function checkVolumeCapability(x: Json, where: string, out: Problems, opts: { blockAllowed: boolean }): void {
  if (!isObject(x)) return void out.push(`${where}: not an object`);
  onlyFields(x, ['mount', 'block', 'access_mode'], where, out);
  const kinds = ['mount', 'block'].filter((k) => k in x);
  if (kinds.length !== 1) out.push(`${where}: exactly one of mount or block`);
  if ('block' in x && !opts.blockAllowed) out.push(`${where}: BLOCK disks are unsupported by the storage local resource provider`);
  const mount = x['mount'];
  if (mount !== undefined) {
    if (!isObject(mount)) out.push(`${where}.mount: not an object`);
    else {
      onlyFields(mount, ['fs_type', 'mount_flags'], `${where}.mount`, out);
      if (mount['fs_type'] !== undefined && typeof mount['fs_type'] !== 'string') out.push(`${where}.mount.fs_type: not a string`);
      if (
        mount['mount_flags'] !== undefined &&
        !(Array.isArray(mount['mount_flags']) && mount['mount_flags'].every((f) => typeof f === 'string'))
      ) {
        out.push(`${where}.mount.mount_flags: not a list of strings`);
      }
    }
  }
  const am = x['access_mode'];
  if (!isObject(am) || !ACCESS_MODES.includes(String(am['mode']))) out.push(`${where}.access_mode.mode: one of ${ACCESS_MODES.join(', ')}`);
}

/** The URI disk profile adaptor's document (uri_volume_profile.proto). */
export function checkProfileDocument(x: Json): Problems {
  const out: Problems = [];
  if (!isObject(x) || !isObject(x['profile_matrix'])) return ['profile_matrix: missing'];
  onlyFields(x, ['profile_matrix'], 'document', out);
  for (const [name, p] of Object.entries(x['profile_matrix'])) {
    const w = `profile ${name}`;
    if (!isObject(p)) {
      out.push(`${w}: not an object`);
      continue;
    }
    onlyFields(p, ['csi_plugin_type_selector', 'resource_provider_selector', 'volume_capabilities', 'create_parameters'], w, out);
    const selectors = ['csi_plugin_type_selector', 'resource_provider_selector'].filter((k) => k in p);
    if (selectors.length !== 1) out.push(`${w}: exactly one selector`);
    const sel = p['csi_plugin_type_selector'];
    if (sel !== undefined && (!isObject(sel) || typeof sel['plugin_type'] !== 'string' || !JAVA_TYPE.test(sel['plugin_type']))) {
      out.push(`${w}.csi_plugin_type_selector.plugin_type: a java-style type`);
    }
    checkVolumeCapability(p['volume_capabilities'], `${w}.volume_capabilities`, out, { blockAllowed: false });
    if (p['create_parameters'] !== undefined && !isStringMap(p['create_parameters'])) out.push(`${w}.create_parameters: not a string map`);
  }
  return out;
}

/** A `--resource_provider_config_dir` file (ResourceProviderInfo with StorageLocalResourceProvider). */
export function checkResourceProviderConfig(x: Json): Problems {
  const out: Problems = [];
  if (!isObject(x)) return ['not an object'];
  onlyFields(x, ['type', 'name', 'default_reservations', 'storage'], 'provider', out);
  if (x['type'] !== 'org.apache.mesos.rp.local.storage') out.push('type: org.apache.mesos.rp.local.storage');
  if (typeof x['name'] !== 'string' || !/^[a-zA-Z0-9_.-]+$/.test(x['name'])) out.push('name: a plain name');
  for (const [i, r] of ((x['default_reservations'] as Json[] | undefined) ?? []).entries()) {
    if (!isObject(r) || !['DYNAMIC', 'STATIC'].includes(String(r['type'])) || typeof r['role'] !== 'string')
      out.push(`default_reservations[${i}]: {type, role}`);
  }
  const storage = x['storage'];
  if (!isObject(storage)) return [...out, 'storage: missing'];
  onlyFields(storage, ['plugin', 'reconciliation_interval_seconds'], 'storage', out);
  const interval = storage['reconciliation_interval_seconds'];
  if (interval !== undefined && !(typeof interval === 'number' && interval > 0))
    out.push('storage.reconciliation_interval_seconds: a positive number');
  const plugin = storage['plugin'];
  if (!isObject(plugin)) return [...out, 'storage.plugin: missing'];
  onlyFields(plugin, ['type', 'name', 'containers'], 'storage.plugin', out);
  if (typeof plugin['type'] !== 'string' || !JAVA_TYPE.test(plugin['type'])) out.push('storage.plugin.type: a java-style type');
  if (typeof plugin['name'] !== 'string') out.push('storage.plugin.name: missing');
  const containers = plugin['containers'];
  if (!Array.isArray(containers) || containers.length === 0) return [...out, 'storage.plugin.containers: at least one'];
  const services = new Set<string>();
  for (const [i, c] of containers.entries()) {
    const w = `storage.plugin.containers[${i}]`;
    if (!isObject(c)) {
      out.push(`${w}: not an object`);
      continue;
    }
    onlyFields(c, ['services', 'command', 'container', 'resources'], w, out);
    for (const s of (c['services'] as Json[] | undefined) ?? []) {
      if (!CSI_SERVICES.includes(String(s))) out.push(`${w}.services: ${String(s)} is not a CSI service`);
      services.add(String(s));
    }
    const cmd = c['command'];
    if (!isObject(cmd) || typeof cmd['value'] !== 'string') out.push(`${w}.command.value: missing`);
    else if (cmd['shell'] === false && !(Array.isArray(cmd['arguments']) && cmd['arguments'].length > 0))
      out.push(`${w}.command.arguments: argv[0] first when shell is false`);
    for (const [j, r] of ((c['resources'] as Json[] | undefined) ?? []).entries()) {
      if (!isObject(r) || typeof r['name'] !== 'string' || r['type'] !== 'SCALAR' || !isObject(r['scalar']))
        out.push(`${w}.resources[${j}]: {name, type: SCALAR, scalar}`);
    }
  }
  // The SLRP needs both services, and Mesos fails unless GetPluginCapabilities has CONTROLLER_SERVICE.
  for (const s of CSI_SERVICES) if (!services.has(s)) out.push(`storage.plugin.containers: no container provides ${s}`);
  return out;
}

/** A `--csi_plugin_config_dir` file (CSIPluginInfo) for a plugin that runs on its own. */
export function checkCsiPluginConfig(x: Json): Problems {
  const out: Problems = [];
  if (!isObject(x)) return ['not an object'];
  onlyFields(x, ['type', 'name', 'endpoints', 'containers', 'target_path_root', 'target_path_exists'], 'plugin', out);
  if (typeof x['type'] !== 'string' || !JAVA_TYPE.test(x['type'])) out.push('type: a java-style type');
  const endpoints = x['endpoints'];
  if (!Array.isArray(endpoints) || endpoints.length === 0) out.push('endpoints: at least one (or containers for a plugin Mesos launches)');
  else {
    for (const [i, e] of endpoints.entries()) {
      if (
        !isObject(e) ||
        !CSI_SERVICES.includes(String(e['csi_service'])) ||
        typeof e['endpoint'] !== 'string' ||
        !e['endpoint'].startsWith('unix:///')
      ) {
        out.push(`endpoints[${i}]: {csi_service, endpoint: unix:///...}`);
      }
    }
    if (!endpoints.some((e) => isObject(e) && e['csi_service'] === 'NODE_SERVICE'))
      out.push('endpoints: the volume/csi isolator needs NODE_SERVICE');
  }
  if (typeof x['target_path_root'] !== 'string' || !x['target_path_root'].startsWith('/')) out.push('target_path_root: an absolute path');
  if (x['target_path_exists'] !== undefined && typeof x['target_path_exists'] !== 'boolean') out.push('target_path_exists: a boolean');
  return out;
}

/** Volume (mesos.proto) of a task, source CSI_VOLUME with static provisioning. */
export function checkTaskVolume(x: Json, pluginTypes: string[]): Problems {
  const out: Problems = [];
  if (!isObject(x)) return ['not an object'];
  if (!['RW', 'RO'].includes(String(x['mode']))) out.push('mode: RW or RO');
  if (typeof x['container_path'] !== 'string') out.push('container_path: missing');
  const src = x['source'];
  if (!isObject(src) || src['type'] !== 'CSI_VOLUME' || !isObject(src['csi_volume']))
    return [...out, 'source: {type: CSI_VOLUME, csi_volume}'];
  const csi = src['csi_volume'];
  if (!pluginTypes.includes(String(csi['plugin_name'])))
    out.push(`source.csi_volume.plugin_name: one of the configured plugin types (${pluginTypes.join(', ')})`);
  const sp = csi['static_provisioning'];
  if (!isObject(sp) || typeof sp['volume_id'] !== 'string') return [...out, 'source.csi_volume.static_provisioning.volume_id: missing'];
  onlyFields(
    sp,
    ['volume_id', 'volume_capability', 'readonly', 'volume_context', 'node_stage_secrets', 'node_publish_secrets'],
    'static_provisioning',
    out,
  );
  checkVolumeCapability(sp['volume_capability'], 'static_provisioning.volume_capability', out, { blockAllowed: true });
  return out;
}

/** A Marathon app with a CSI external volume (Marathon 1.9+, `provider: csi`). */
export function checkMarathonApp(x: Json, pluginTypes: string[]): Problems {
  const out: Problems = [];
  if (!isObject(x) || typeof x['id'] !== 'string') return ['id: missing'];
  const container = x['container'];
  if (!isObject(container) || container['type'] !== 'MESOS')
    return [...out, 'container.type: MESOS (CSI volumes need the Mesos containerizer)'];
  const volumes = (container['volumes'] as Json[] | undefined) ?? [];
  const csi = volumes.filter((v) => isObject(v) && isObject(v['external']) && v['external']['provider'] === 'csi');
  if (csi.length === 0) out.push('container.volumes: no external volume with provider csi');
  for (const v of csi as Record<string, Record<string, Json>>[]) {
    const ext = v['external']!;
    if (typeof v['containerPath'] !== 'string') out.push('containerPath: missing');
    if (!['RW', 'RO'].includes(String(v['mode']).toUpperCase())) out.push('mode: RW or RO');
    if (typeof ext['name'] !== 'string') out.push('external.name: the volume id');
    const o = ext['options'];
    if (!isObject(o) || !pluginTypes.includes(String(o['pluginName'])))
      out.push(`external.options.pluginName: one of ${pluginTypes.join(', ')}`);
    const cap = isObject(o) ? o['capability'] : undefined;
    if (!isObject(cap) || !['mount', 'block'].includes(String(cap['accessType'])) || !ACCESS_MODES.includes(String(cap['accessMode']))) {
      out.push('external.options.capability: {accessType, accessMode}');
    }
  }
  return out;
}

describe('examples/mesos', () => {
  it('disk-profiles.json is a URI disk profile document with a profile for every backend', async () => {
    const doc = await loadJson('disk-profiles.json');
    expect(checkProfileDocument(doc)).toEqual([]);
    const types = Object.values(
      (doc as { profile_matrix: Record<string, { csi_plugin_type_selector: { plugin_type: string } }> }).profile_matrix,
    ).map((p) => p.csi_plugin_type_selector.plugin_type);
    for (const b of BACKENDS) expect(types, b).toContain(`io.rexcsi.${b}`);
  });

  it('each resource provider config has the SLRP shape and a rexcsi command line the plugin accepts', async () => {
    const files = await readdir(join(DIR, 'resource-providers'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const rp = (await loadJson(join('resource-providers', file))) as {
        storage: { plugin: { type: string; containers: { command: { arguments: string[] } }[] } };
      };
      expect(checkResourceProviderConfig(rp), file).toEqual([]);
      const argv = rp.storage.plugin.containers[0]!.command.arguments;
      expect(argv.slice(0, 2), file).toEqual(['rexcsi', 'serve']);
      const backend = argv[argv.indexOf('--backend') + 1]!;
      expect(rp.storage.plugin.type, file).toBe(`io.rexcsi.${backend}`);
      // Parsed by the plugin's own parser with the environment Mesos gives the container.
      if (findBackend(backend)) {
        const config = parseServeConfig(argv.slice(2), {
          CSI_ENDPOINT: 'unix:///tmp/mesos-csi-XXXXXX/endpoint.sock',
          MESOS_AGENT_ID: 'agent-S1',
        });
        expect(config.nodeId, file).toBe('agent-S1');
        expect(config.socketPath, file).toBe('/tmp/mesos-csi-XXXXXX/endpoint.sock');
      } else {
        // A backend being written on another branch; its options are parsed once it is registered.
        expect(BACKENDS, file).toContain(backend);
      }
    }
  });

  it('each CSI plugin config for external volumes names a rexcsi socket the systemd unit serves', async () => {
    const unit = await readFile(join(DIR, 'rexcsi-node@.service'), 'utf8');
    const endpointTemplate = /^Environment=CSI_ENDPOINT=(.+)$/m.exec(unit)?.[1];
    expect(endpointTemplate).toBeDefined();
    expect(unit).toMatch(/^ExecStart=\S*rexcsi serve --backend %i( |$)/m);
    const files = await readdir(join(DIR, 'csi-plugins'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const cfg = (await loadJson(join('csi-plugins', file))) as { type: string; endpoints: { endpoint: string }[] };
      expect(checkCsiPluginConfig(cfg), file).toEqual([]);
      const backend = cfg.type.replace(/^io\.rexcsi\./, '');
      expect(BACKENDS, file).toContain(backend);
      for (const e of cfg.endpoints) expect(e.endpoint, file).toBe(endpointTemplate!.replace('%i', backend));
    }
  });

  it('agent.flags enables the volume/csi isolator, both config dirs and the URI disk profile adaptor module', async () => {
    const flags = Object.fromEntries(
      (await readFile(join(DIR, 'agent.flags'), 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('--'))
        .map((l) => [l.slice(2, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(flags['isolation']!.split(',')).toEqual(expect.arrayContaining(['filesystem/linux', 'volume/csi']));
    expect(flags['csi_plugin_config_dir']).toMatch(/^\//);
    expect(flags['resource_provider_config_dir']).toMatch(/^\//);
    expect(flags['disk_profile_adaptor']).toBe('org_apache_mesos_UriDiskProfileAdaptor');
    expect(flags['modules']).toMatch(/^file:\/\/\/.*modules\.json$/);
    const modules = (await loadJson('modules.json')) as {
      libraries: { file: string; modules: { name: string; parameters: { key: string; value: string }[] }[] }[];
    };
    const adaptor = modules.libraries.flatMap((l) => l.modules).find((m) => m.name === flags['disk_profile_adaptor']);
    expect(adaptor).toBeDefined();
    expect(adaptor!.parameters.map((p) => p.key).sort()).toEqual(['poll_interval', 'uri']);
    expect(adaptor!.parameters.find((p) => p.key === 'uri')!.value).toMatch(/^(file|https?):\/\//);
  });

  it('task-volume.json and marathon-app.json name a configured plugin and a valid capability', async () => {
    const types = await Promise.all(
      (await readdir(join(DIR, 'csi-plugins'))).map(async (f) => ((await loadJson(join('csi-plugins', f))) as { type: string }).type),
    );
    expect(checkTaskVolume(await loadJson('task-volume.json'), types)).toEqual([]);
    expect(checkMarathonApp(await loadJson('marathon-app.json'), types)).toEqual([]);
  });

  it('the checkers catch what Mesos would reject', () => {
    expect(
      checkProfileDocument({
        profile_matrix: {
          p: {
            csi_plugin_type_selector: { plugin_type: 'io.rexcsi.loop' },
            volume_capabilities: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
          },
        },
      }),
    ).toEqual(['profile p.volume_capabilities: BLOCK disks are unsupported by the storage local resource provider']);
    expect(checkProfileDocument({ profile_matrix: { p: { volume_capability: {} } } })).toContain(
      'profile p: unknown field volume_capability',
    );
    expect(
      checkResourceProviderConfig({
        type: 'org.apache.mesos.rp.local.storage',
        name: 'x',
        storage: { plugin: { type: 'io.rexcsi.loop', name: 'x', containers: [{ services: ['NODE_SERVICE'], command: { value: 'x' } }] } },
      }),
    ).toEqual(['storage.plugin.containers: no container provides CONTROLLER_SERVICE']);
    expect(
      checkCsiPluginConfig({
        type: 'io.rexcsi.ebs',
        endpoints: [{ csi_service: 'NODE_SERVICE', endpoint: 'tcp://x' }],
        target_path_root: '/x',
      }),
    ).toEqual(['endpoints[0]: {csi_service, endpoint: unix:///...}']);
    expect(
      checkTaskVolume(
        {
          mode: 'RW',
          container_path: 'd',
          source: {
            type: 'CSI_VOLUME',
            csi_volume: {
              plugin_name: 'other',
              static_provisioning: { volume_id: 'v', volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } },
            },
          },
        },
        ['io.rexcsi.ebs'],
      ),
    ).toEqual(['source.csi_volume.plugin_name: one of the configured plugin types (io.rexcsi.ebs)']);
  });
});
