import { request } from 'node:http';

// A client of the Docker volume plugin protocol over its unix socket, as Docker's own plugin client
// calls it (POST, JSON body, the plugins Accept header): for `rexcsi docker ...` and the tests.

export interface DockerApiAnswer {
  status: number;
  /** the parsed JSON body ({} when the body was empty or not JSON) */
  body: Record<string, unknown>;
  /** the raw body */
  text: string;
  /** X-Rexcsi-Code: the gRPC code name of a failure */
  code?: string | undefined;
}

export class DockerApiUnreachable extends Error {}

export function callDockerApi(socketPath: string, method: string, body: unknown, timeoutMs = 300_000): Promise<DockerApiAnswer> {
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path: `/${method}`,
        method: 'POST',
        headers: {
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(payload),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = {};
          }
          const code = res.headers['x-rexcsi-code'];
          resolve({
            status: res.statusCode ?? 0,
            body: parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {},
            text,
            code: typeof code === 'string' ? code : undefined,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new DockerApiUnreachable(`no answer from ${socketPath} within ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e instanceof DockerApiUnreachable
          ? e
          : new DockerApiUnreachable(`cannot reach the Docker API at ${socketPath}: ${e.code ?? e.message}`),
      ),
    );
    req.end(payload);
  });
}
