// The real validators the deployment files are checked with, each run as its own program (installed by
// scripts/install-deps.sh): Mesos 1.11's protobuf messages through MesosChecker.java, kubernetes-validate
// --strict, python-hcl2, systemd-analyze verify and hadolint. Each returns what it found, never throws on a
// finding, so a test can name the file and the problem; a validator that cannot run at all throws.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/plugin.js';

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runTool(cmd: string, args: string[], input?: string): Ran {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): run scripts/install-deps.sh`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// --- Mesos --------------------------------------------------------------------------------------------------
export type MesosMessage = 'ResourceProviderInfo' | 'CSIPluginInfo' | 'Volume' | 'DiskProfileMapping' | 'Modules';
export interface MesosRequest {
  id: string;
  type: MesosMessage;
  json: string;
}
export type MesosResult = { id: string; ok: true; message: Record<string, unknown> } | { id: string; ok: false; error: string };

const MESOS_CLASSPATH = join(REPO_ROOT, '.cache', 'mesos-checker.classpath');

/** The classpath install-deps.sh resolved; resolved here on a first run without it (Maven, into .cache/m2). */
function mesosClasspath(): string {
  if (!existsSync(MESOS_CLASSPATH)) {
    const r = runTool('mvn', [
      '-q',
      '-B',
      `-Dmaven.repo.local=${join(REPO_ROOT, '.cache', 'm2')}`,
      '-f',
      'test/deploy/mesos/pom.xml',
      'dependency:build-classpath',
      `-Dmdep.outputFile=${MESOS_CLASSPATH}`,
    ]);
    if (r.status !== 0) throw new Error(`mvn could not resolve the Mesos checker's classpath: ${r.stdout}${r.stderr}`);
  }
  return readFileSync(MESOS_CLASSPATH, 'utf8').trim();
}

/** Parses each JSON text into its Mesos 1.11 message, strictly; one JVM for the whole batch. */
export function parseMesosMessages(requests: MesosRequest[]): Map<string, MesosResult> {
  const r = runTool('java', ['-cp', mesosClasspath(), 'test/deploy/mesos/MesosChecker.java'], JSON.stringify(requests));
  if (r.status !== 0) throw new Error(`MesosChecker failed (exit ${r.status}): ${r.stderr}`);
  return new Map((JSON.parse(r.stdout) as MesosResult[]).map((x) => [x.id, x]));
}

// --- Kubernetes ---------------------------------------------------------------------------------------------
export interface KubernetesFinding {
  file: string;
  passed: boolean;
  line: string;
}

/** kubernetes-validate --strict (the API's OpenAPI schemas, unknown fields refused); one line per resource. */
export function kubernetesValidate(files: string[], version?: string): { status: number | null; findings: KubernetesFinding[] } {
  const r = runTool('kubernetes-validate', ['--strict', ...(version ? ['-k', version] : []), ...files]);
  const findings = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .filter((l) => /^(INFO|WARN|ERROR)/.test(l))
    .map((line) => ({ file: files.find((f) => line.includes(f)) ?? '', passed: /passed for resource/.test(line), line }));
  return { status: r.status, findings };
}

export function kubernetesValidateVersion(): string {
  return runTool('kubernetes-validate', ['--version']).stdout.trim();
}

// --- HCL ----------------------------------------------------------------------------------------------------
/** An HCL2 file as python-hcl2 reads it: blocks are lists of objects, labels are keys, strings unquoted. */
export function parseHcl(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  const script = [
    'import hcl2, json, sys',
    'o = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)',
    'print(json.dumps(hcl2.loads(sys.stdin.read(), serialization_options=o)))',
  ].join('\n');
  const r = runTool('python3', ['-c', script], text);
  if (r.status !== 0) return { ok: false, error: r.stderr.trim().split('\n').slice(-3).join(' ') };
  return { ok: true, value: JSON.parse(r.stdout) as Record<string, unknown> };
}

export function pythonPackageVersion(name: string): string {
  return runTool('python3', ['-c', `from importlib.metadata import version; print(version(${JSON.stringify(name)}))`]).stdout.trim();
}

// --- systemd, Dockerfile ------------------------------------------------------------------------------------
/** systemd-analyze verify: its complaints about the unit (empty when it has none). */
export function systemdVerify(unitPath: string): { status: number | null; output: string } {
  const r = runTool('systemd-analyze', ['verify', '--man=no', unitPath]);
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

export function hadolint(dockerfile: string): { status: number | null; output: string } {
  const r = runTool('hadolint', ['--no-color', dockerfile]);
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

export function toolVersion(cmd: string, args: string[]): string {
  const r = runTool(cmd, args);
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
}
