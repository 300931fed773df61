// Runs the built `rexcsi` client (node dist/main.js ...) and captures its exit code and output.
import { spawn } from 'node:child_process';
import { PLUGIN_MAIN, REPO_ROOT } from './plugin.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    if (!opts.env?.CSI_ENDPOINT) delete env.CSI_ENDPOINT; // the tests name the endpoint on the command line
    const child = spawn(process.execPath, [PLUGIN_MAIN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A cleanup step that accepts finding the volume already gone (NOT_FOUND): the test got that far. */
export function unlessGone(call: () => Promise<unknown>): () => Promise<void> {
  return () =>
    call().then(
      () => undefined,
      (e: { code?: number }) => {
        if (e.code !== 5) throw e;
      },
    );
}
