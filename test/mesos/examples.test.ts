// Every Mesos file rexcsi ships (examples/mesos, and the Mesos config of the systemd sidecar in packaging/)
// parsed into Mesos 1.11's own protobuf messages by test/deploy/mesos/MesosChecker.java (the generated classes
// of org.apache.mesos:mesos:1.11.0 and protobuf-java-util's JsonFormat; strict: an unknown field fails, which
// is stricter than the agent, which ignores it), then held to the rules Mesos applies in its source, each
// written below as a fact with the file it comes from. Rules that are this project's own (not Mesos') say so.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findBackend } from '../../src/backends/registry.js';
import { parseServeConfig } from '../../src/config.js';
import { parseMesosMessages, type MesosMessage, type MesosResult } from '../deploy/validators.js';
import { REPO_ROOT } from '../helpers/plugin.js';

const EXAMPLES = join(REPO_ROOT, 'examples', 'mesos');
const SIDECAR_PLUGIN_CONFIG = 'packaging/systemd/mesos-csi-plugin.json';
const BACKENDS = ['loop', 'ebs', 'glusterfs', 'efs'];

type Json = Record<string, unknown>;
const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');
const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? walk(join(dir, e)) : [join(dir, e)]));
const exampleFiles = walk(EXAMPLES).map((f) => relative(REPO_ROOT, f));

/** The message each JSON file is read into by the agent (or sent as, for a task's volume). */
function messageOf(file: string): MesosMessage | 'marathon' | undefined {
  if (/\/resource-providers\/[^/]+\.json$/.test(file)) return 'ResourceProviderInfo';
  if (/\/csi-plugins\/[^/]+\.json$/.test(file) || file === SIDECAR_PLUGIN_CONFIG) return 'CSIPluginInfo';
  if (file.endsWith('/disk-profiles.json')) return 'DiskProfileMapping';
  if (file.endsWith('/modules.json')) return 'Modules';
  if (file.endsWith('/task-volume.json')) return 'Volume';
  if (file.endsWith('/marathon-app.json')) return 'marathon'; // Marathon's API, not a Mesos message
  return undefined;
}

// --- Mesos' rules, as facts (Mesos 1.11 sources) ---------------------------------------------------------

/** src/resource_provider/storage/provider.cpp, isValidName: non-empty, only letters, digits and '_'. */
export const isValidName = (s: string): boolean => /^[A-Za-z0-9_]+$/.test(s);
/** provider.cpp, isValidType: '.'-separated tokens, each a valid name. */
export const isValidType = (s: string): boolean => s.split('.').every(isValidName);

/** src/resource_provider/storage/provider.cpp, StorageLocalResourceProvider::validate (and local.cpp's type). */
export function slrpProblems(rp: Json): string[] {
  const out: string[] = [];
  // src/resource_provider/local.cpp: the only local resource provider type the agent can create.
  if (rp['type'] !== 'org.apache.mesos.rp.local.storage') out.push(`type ${String(rp['type'])} is not org.apache.mesos.rp.local.storage`);
  if (rp['id'] !== undefined) out.push("'ResourceProviderInfo.id' must not be set");
  if (typeof rp['name'] !== 'string' || !isValidName(rp['name']))
    out.push(`name '${String(rp['name'])}' is not letters, digits and _ only`);
  const storage = rp['storage'] as Json | undefined;
  if (!storage) return [...out, "'ResourceProviderInfo.storage' must be set"];
  const plugin = storage['plugin'] as Json;
  if (!isValidType(String(plugin['type'])) || typeof plugin['name'] !== 'string' || !isValidName(plugin['name']))
    out.push(`plugin type '${String(plugin['type'])}' and name '${String(plugin['name'])}' do not follow Java package naming`);
  const containers = (plugin['containers'] as Json[] | undefined) ?? [];
  if (!containers.some((c) => ((c['services'] as string[] | undefined) ?? []).includes('NODE_SERVICE'))) out.push('NODE_SERVICE not found');
  return out;
}

/** src/resource_provider/storage/disk_profile_utils.cpp, validate(DiskProfileMapping) and validate(VolumeCapability). */
export function profileProblems(mapping: Json): string[] {
  const out: string[] = [];
  for (const [name, p] of Object.entries((mapping['profile_matrix'] as Record<string, Json> | undefined) ?? {})) {
    const byType = p['csi_plugin_type_selector'] as Json | undefined;
    const byProvider = p['resource_provider_selector'] as { resource_providers?: Json[] } | undefined;
    if (!byType && !byProvider) out.push(`profile ${name}: no selector`);
    if (byType && !byType['plugin_type']) out.push(`profile ${name}: 'plugin_type' is required`);
    for (const rp of byProvider?.resource_providers ?? [])
      if (!rp['type'] || !rp['name']) out.push(`profile ${name}: type and name are required`);
    const cap = p['volume_capabilities'] as Json | undefined;
    if (!cap) {
      out.push(`profile ${name}: 'volume_capabilities' is required`);
      continue;
    }
    const flags = ((cap['mount'] as Json | undefined)?.['mount_flags'] as string[] | undefined) ?? [];
    if (flags.join('').length > 4096) out.push(`profile ${name}: mount_flags over 4 KB`);
    const mode = (cap['access_mode'] as Json | undefined)?.['mode'];
    if (mode === undefined || mode === 'UNKNOWN') out.push(`profile ${name}: 'access_mode.mode' is unknown or not set`);
  }
  return out;
}

/** src/slave/csi_server.cpp (CSIServer::create, extractServices): what the agent needs of a plugin config. */
export function csiPluginProblems(info: Json): string[] {
  const out: string[] = [];
  const endpoints = (info['endpoints'] as Json[] | undefined) ?? [];
  const containers = (info['containers'] as Json[] | undefined) ?? [];
  // Without containers the server CHECKs that endpoints are given (the agent aborts otherwise).
  if (containers.length === 0 && endpoints.length === 0) out.push('neither containers nor endpoints');
  // v1_volume_manager.cpp: the services listed are required of the plugin at start-up, and the isolator
  // publishes through NODE_SERVICE.
  const services =
    containers.length > 0 ? containers.flatMap((c) => c['services'] as string[]) : endpoints.map((e) => String(e['csi_service']));
  if (!services.includes('NODE_SERVICE')) out.push('no NODE_SERVICE');
  return out;
}

/** A task's Volume with a CSI source: include/mesos/v1/mesos.proto and the volume/csi isolator (1.11). */
export function taskVolumeProblems(volume: Json, pluginTypes: string[]): string[] {
  const source = volume['source'] as Json | undefined;
  const csi = source?.['csi_volume'] as Json | undefined;
  if (source?.['type'] !== 'CSI_VOLUME' || !csi) return ['source is not a CSI_VOLUME with csi_volume'];
  const out: string[] = [];
  // volume/csi/isolator.cpp: only pre-provisioned volumes (static_provisioning) are supported.
  if (!csi['static_provisioning']) out.push('static_provisioning is required');
  // csi_server.cpp publishVolume: an unknown plugin_name is "Invalid CSI plugin".
  if (!pluginTypes.includes(String(csi['plugin_name'])))
    out.push(`plugin_name ${String(csi['plugin_name'])} is not a configured plugin type`);
  return out;
}

/** The flags of a flags file (comments and blank lines skipped). */
export function parseFlags(text: string): Map<string, string> {
  const flags = new Map<string, string>();
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    // stout's flags: --name=value, or a boolean as --name / --no-name.
    const m = /^--((?:no-)?[a-z0-9_]+)(?:=(.*))?$/.exec(line);
    if (!m) throw new Error(`not a --name=value flag: ${line}`);
    if (m[2] !== undefined) flags.set(m[1]!, m[2]);
    else if (m[1]!.startsWith('no-')) flags.set(m[1]!.slice(3), 'false');
    else flags.set(m[1]!, 'true');
  }
  return flags;
}

/** Agent start-up rules for the flags a file sets. */
export function agentFlagProblems(flags: Map<string, string>, docs: string): string[] {
  const out: string[] = [];
  const isolation = (flags.get('isolation') ?? '').split(',');
  // src/slave/csi_server.cpp CSIServer::create: a CSI plugin config dir needs the volume/csi isolator.
  if (flags.has('csi_plugin_config_dir') && !isolation.includes('volume/csi'))
    out.push("--csi_plugin_config_dir without isolator 'volume/csi'");
  // volume/csi/isolator.cpp and docker/volume/isolator.cpp: both need the filesystem/linux isolator.
  for (const i of ['volume/csi', 'docker/volume'])
    if (isolation.includes(i) && !isolation.includes('filesystem/linux')) out.push(`${i} needs filesystem/linux`);
  // A missing directory stops (csi_server.cpp) or aborts (resource_provider/daemon.cpp) the agent: the
  // guide must say how to create each one the file names (the project's rule for its docs).
  for (const dir of ['csi_plugin_config_dir', 'resource_provider_config_dir']) {
    const path = flags.get(dir);
    if (path && !new RegExp(`mkdir -p [^\\n]*${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(\\s|$)`, 'm').test(docs))
      out.push(`no 'mkdir -p ${path}' in docs/*.md for --${dir}`);
  }
  return out;
}

/** Documents Mesos' parser must refuse, parsed in the same batch as the files. */
const BAD_MESSAGES: { id: string; type: MesosMessage; json: string }[] = [
  { id: 'typo', type: 'CSIPluginInfo', json: '{"type":"io.rexcsi.loop","endpoint":[]}' },
  { id: 'readonly', type: 'Volume', json: read('examples/mesos/task-volume.json').replace('"volume_id"', '"readonly": true, "volume_id"') },
  { id: 'mode', type: 'DiskProfileMapping', json: '{"profile_matrix":{"p":{"volume_capabilities":{"access_mode":{"mode":"RW"}}}}}' },
  { id: 'required', type: 'ResourceProviderInfo', json: '{"type":"org.apache.mesos.rp.local.storage"}' },
];

// --- the tests ---------------------------------------------------------------------------------------------

describe('examples/mesos parsed as Mesos 1.11 parses them', () => {
  const jsonFiles = [...exampleFiles.filter((f) => f.endsWith('.json')), SIDECAR_PLUGIN_CONFIG];
  const parsed = new Map<string, MesosResult>();
  const message = (file: string): Json => {
    const r = parsed.get(file)!;
    if (!r.ok) throw new Error(`${file}: ${r.error}`);
    return r.message;
  };
  const filesOf = (type: MesosMessage): string[] => jsonFiles.filter((f) => messageOf(f) === type);
  const pluginTypes = (): string[] => [...filesOf('CSIPluginInfo')].map((f) => String(message(f)['type']));

  beforeAll(() => {
    const requests = jsonFiles.flatMap((file) => {
      const type = messageOf(file);
      return type && type !== 'marathon' ? [{ id: file, type, json: read(file) }] : [];
    });
    for (const [id, r] of parseMesosMessages([...requests, ...BAD_MESSAGES])) parsed.set(id, r); // one JVM
  }, 180_000);

  it('every JSON file is one of the messages the agent reads, and parses strictly into it', () => {
    for (const file of jsonFiles) {
      const type = messageOf(file);
      expect(type, `${file}: which Mesos message is it?`).toBeDefined();
      if (type === 'marathon') continue;
      const r = parsed.get(file)!;
      expect(r.ok ? '' : r.error, file).toBe('');
    }
    for (const type of ['ResourceProviderInfo', 'CSIPluginInfo', 'DiskProfileMapping', 'Modules', 'Volume'] as const)
      expect(filesOf(type).length, type).toBeGreaterThan(0);
  });

  it('resource providers pass the storage local resource provider validation and start rexcsi with a command line it accepts', () => {
    for (const file of filesOf('ResourceProviderInfo')) {
      const rp = message(file);
      expect(slrpProblems(rp), file).toEqual([]);
      const plugin = (rp['storage'] as Json)['plugin'] as { type: string; containers: { command: { arguments: string[] } }[] };
      const argv = plugin.containers[0]!.command.arguments;
      expect(argv.slice(0, 2), file).toEqual(['rexcsi', 'serve']); // shell: false, so argv[0] comes first
      const backend = argv[argv.indexOf('--backend') + 1]!;
      expect(plugin.type, file).toBe(`io.rexcsi.${backend}`);
      if (!findBackend(backend)) throw new Error(`${file}: no backend ${backend}`);
      // Mesos starts the plugin container with CSI_ENDPOINT and MESOS_AGENT_ID.
      const config = parseServeConfig(argv.slice(2), { CSI_ENDPOINT: 'unix:///tmp/mesos-csi-XXXXXX/endpoint.sock', MESOS_AGENT_ID: 'S1' });
      expect(config.socketPath, file).toBe('/tmp/mesos-csi-XXXXXX/endpoint.sock');
      if (backend !== 'ebs') expect(config.nodeId, file).toBe('S1'); // ebs: the EC2 instance id
    }
  });

  it('the disk profile document passes the adaptor validation and has a profile for every backend, BLOCK included', () => {
    const [file] = filesOf('DiskProfileMapping');
    const doc = message(file!);
    expect(profileProblems(doc)).toEqual([]);
    const profiles = Object.values(doc['profile_matrix'] as Record<string, Json>);
    const types = profiles.map((p) => (p['csi_plugin_type_selector'] as Json)['plugin_type']);
    for (const b of BACKENDS) expect(types, b).toContain(`io.rexcsi.${b}`);
    // The SLRP creates BLOCK disks too (only persistent volumes on them are unsupported).
    expect(profiles.some((p) => (p['volume_capabilities'] as Json)['block'] !== undefined)).toBe(true);
  });

  it('CSI plugin configs for external volumes are node-only and name the socket their systemd unit serves', () => {
    const types = new Set<string>();
    for (const file of filesOf('CSIPluginInfo')) {
      const info = message(file);
      expect(csiPluginProblems(info), file).toEqual([]);
      // csi_server.cpp: a second config of the same type is skipped.
      expect(types.has(String(info['type'])), `${file}: duplicate type`).toBe(false);
      types.add(String(info['type']));
      const endpoints = info['endpoints'] as { csi_service: string; endpoint: string }[];
      // The project's rule: the isolator uses only the node service, and a listed CONTROLLER_SERVICE would
      // make the agent's start-up depend on the plugin reporting one.
      expect(
        endpoints.map((e) => e.csi_service),
        file,
      ).toEqual(['NODE_SERVICE']);
      const unitFile = file === SIDECAR_PLUGIN_CONFIG ? 'packaging/systemd/rexcsi-node.service' : 'examples/mesos/rexcsi-node@.service';
      const unit = read(unitFile);
      const template = /^Environment=CSI_ENDPOINT=(\S+)$/m.exec(unit)?.[1];
      const backend = String(info['type']).replace(/^io\.rexcsi\./, '');
      expect(BACKENDS, file).toContain(backend);
      expect(endpoints[0]!.endpoint, file).toBe(template?.replace('%i', backend));
    }
  });

  it('modules.json loads the URI disk profile adaptor from a default build (--prefix=/usr/local) with its uri', () => {
    const [file] = filesOf('Modules');
    const libraries = message(file!)['libraries'] as {
      file: string;
      modules: { name: string; parameters: { key: string; value: string }[] }[];
    }[];
    const lib = libraries.find((l) => l.modules.some((m) => m.name === 'org_apache_mesos_UriDiskProfileAdaptor'))!;
    expect(lib.file).toBe('/usr/local/lib/mesos/modules/liburi_disk_profile_adaptor.so');
    const params = new Map(lib.modules[0]!.parameters.map((p) => [p.key, p.value]));
    // uri_disk_profile_adaptor.hpp: 'uri' is required (file:// or http(s)://).
    expect(params.get('uri')).toMatch(/^(file|https?):\/\//);
  });

  it('task-volume.json names a configured plugin with static provisioning, and marathon-app.json does too', () => {
    const [file] = filesOf('Volume');
    expect(taskVolumeProblems(message(file!), pluginTypes())).toEqual([]);
    const app = JSON.parse(read('examples/mesos/marathon-app.json')) as {
      container: { type: string; volumes: { external?: { provider: string; options: { pluginName: string } } }[] };
    };
    expect(app.container.type).toBe('MESOS'); // CSI volumes need the Mesos containerizer
    const csi = app.container.volumes.filter((v) => v.external?.provider === 'csi');
    expect(csi.length).toBeGreaterThan(0);
    for (const v of csi) expect(pluginTypes()).toContain(v.external!.options.pluginName);
  });

  it('the checker refuses what Mesos refuses, and unknown fields (stricter than the agent)', () => {
    const refusal = (id: string): string => {
      const r = parsed.get(id)!;
      return r.ok ? 'accepted' : r.error;
    };
    expect(refusal('typo')).toContain('Cannot find field: endpoint');
    expect(refusal('readonly')).toContain('Cannot find field: readonly'); // not in the 1.11 proto
    expect(refusal('mode')).toContain('Invalid enum value: RW');
    expect(refusal('required')).toContain('missing required fields: name');
    const rp = (name: string, services: string[]): Json => ({
      type: 'org.apache.mesos.rp.local.storage',
      name,
      storage: { plugin: { type: 'io.rexcsi.loop', name, containers: [{ services }] } },
    });
    expect(slrpProblems(rp('rexcsi-loop', ['NODE_SERVICE']))).toEqual([
      "name 'rexcsi-loop' is not letters, digits and _ only",
      "plugin type 'io.rexcsi.loop' and name 'rexcsi-loop' do not follow Java package naming",
    ]);
    expect(slrpProblems(rp('rexcsi_loop', ['NODE_SERVICE']))).toEqual([]); // CONTROLLER_SERVICE is not required
    expect(slrpProblems(rp('rexcsi_loop', ['CONTROLLER_SERVICE']))).toEqual(['NODE_SERVICE not found']);
    expect(
      profileProblems({ profile_matrix: { p: { csi_plugin_type_selector: { plugin_type: 'x' }, volume_capabilities: { block: {} } } } }),
    ).toEqual(["profile p: 'access_mode.mode' is unknown or not set"]);
    expect([...parseFlags('# c\n--work_dir=/w\n--hostname_lookup\n--no-systemd_enable_support\n')]).toEqual([
      ['work_dir', '/w'],
      ['hostname_lookup', 'true'],
      ['systemd_enable_support', 'false'],
    ]);
    expect(agentFlagProblems(new Map([['csi_plugin_config_dir', '/x']]), '')).toEqual([
      "--csi_plugin_config_dir without isolator 'volume/csi'",
      "no 'mkdir -p /x' in docs/*.md for --csi_plugin_config_dir",
    ]);
  });
});

describe('examples/mesos/*.flags', () => {
  const flagFiles = exampleFiles.filter((f) => f.endsWith('.flags'));
  const docs = readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => read(join('docs', f)))
    .join('\n');

  it('each flags file passes the agent start-up rules, and its modules and adaptor are shipped', () => {
    expect(flagFiles.length).toBeGreaterThan(0);
    for (const file of flagFiles) {
      const flags = parseFlags(read(file));
      expect(agentFlagProblems(flags, docs), file).toEqual([]);
      const modules = flags.get('modules');
      if (modules) {
        // The guide copies examples/mesos/<basename> there.
        const shipped = `examples/mesos/${modules.slice(modules.lastIndexOf('/') + 1)}`;
        expect(exampleFiles, `${file}: --modules ${modules}`).toContain(shipped);
        const adaptor = flags.get('disk_profile_adaptor');
        if (adaptor) expect(read(shipped), `${file}: ${adaptor} in ${shipped}`).toContain(`"name": "${adaptor}"`);
      }
    }
  });

  it('the two modes come as separate files, so neither makes the other mode its directory mandatory', () => {
    const sets = flagFiles.map((f) => parseFlags(read(f)));
    expect(sets.some((s) => s.has('resource_provider_config_dir') && !s.has('csi_plugin_config_dir'))).toBe(true);
    expect(sets.some((s) => s.has('csi_plugin_config_dir') && !s.has('resource_provider_config_dir'))).toBe(true);
  });

  it('no file or guide asks for --enable-grpc (removed in Mesos 1.7: gRPC is always built)', () => {
    for (const file of [...exampleFiles, 'docs/mesos.md']) expect(read(file), file).not.toContain('enable-grpc');
  });
});
