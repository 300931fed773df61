import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isCsiError, CsiError, type ErrorCode } from '../errors.js';
import type { DockerDriver } from './driver.js';

// The Docker volume plugin protocol (HTTP/1.1 over a unix socket, every call a POST with a JSON body),
// as Docker and dvdcli speak it. A failure is {"Err": "..."}: 400 for a malformed request, 404 for an
// unknown endpoint, 413 for an oversized body, 500 when the operation itself failed. The header
// X-Rexcsi-Code names the error's gRPC code, for scripts (rexcsi docker) and tests.

export const MAX_BODY_BYTES = 64 * 1024;
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

type Body = Record<string, unknown>;

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: ErrorCode = status === 404 || status === 405
      ? 'UNIMPLEMENTED'
      : status === 413
        ? 'RESOURCE_EXHAUSTED'
        : 'INVALID_ARGUMENT',
  ) {
    super(message);
  }
}

type Handler = (driver: DockerDriver, body: Body) => unknown;

const ROUTES: Record<string, Handler> = {
  '/Plugin.Activate': () => ({ Implements: ['VolumeDriver'] }),
  '/VolumeDriver.Capabilities': (d) => ({ Capabilities: { Scope: d.scope } }),
  '/VolumeDriver.Create': async (d, b) => {
    await d.create(b.Name, opts(b.Opts));
    return {};
  },
  '/VolumeDriver.Remove': async (d, b) => {
    await d.remove(b.Name);
    return {};
  },
  '/VolumeDriver.Mount': async (d, b) => ({ Mountpoint: await d.mount(b.Name, b.ID) }),
  '/VolumeDriver.Unmount': async (d, b) => {
    await d.unmount(b.Name, b.ID);
    return {};
  },
  '/VolumeDriver.Path': (d, b) => ({ Mountpoint: d.path(b.Name) }),
  '/VolumeDriver.Get': async (d, b) => ({ Volume: await d.get(b.Name) }),
  '/VolumeDriver.List': async (d) => ({ Volumes: await d.list() }),
};

/** Opts is a map of strings, or absent (null). */
function opts(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new BadRequest(400, `Opts must be an object of strings, not ${kind(value)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new BadRequest(400, `Opts.${k} must be a string, not ${kind(v)}`);
    out[k] = v;
  }
  return out;
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

async function readBody(req: IncomingMessage): Promise<Body> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new BadRequest(413, `request body of ${declared} bytes is over the limit of ${MAX_BODY_BYTES}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(413, `request body is over the limit of ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '' || text === 'null') return {}; // Docker's Plugin.Activate sends null
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BadRequest(400, `request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadRequest(400, `request body must be a JSON object, not ${kind(parsed)}`);
  }
  return parsed as Body;
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = { INVALID_ARGUMENT: 400 };

function send(res: ServerResponse, status: number, body: unknown, code?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(text),
    ...(code ? { 'X-Rexcsi-Code': code } : {}),
  });
  res.end(text);
}

/** A message a person can act on; never a stack trace. */
function errText(e: unknown): string {
  if (e instanceof CsiError || e instanceof BadRequest) return e.message;
  const first = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0]!.slice(0, 500);
  return `internal error: ${first} (the plugin's log has the details)`;
}

export function dockerApiServer(driver: DockerDriver, log: Logger): Server {
  const server = createServer((req, res) => void handle(driver, log, req, res));
  server.requestTimeout = 60_000; // receiving one request; the operation itself may take longer
  server.headersTimeout = 30_000;
  return server;
}

async function handle(driver: DockerDriver, log: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  const path = (req.url ?? '').split('?', 1)[0]!;
  let name: unknown;
  const finish = (status: number, error?: string, code?: string): void => {
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3;
    const level = status === 200 ? (path === '/VolumeDriver.Get' || path === '/VolumeDriver.List' ? 'debug' : 'info') : 'warn';
    log[level](
      {
        api: 'docker',
        method: path.slice(1, 80),
        volume: typeof name === 'string' ? name.slice(0, 200) : undefined,
        status,
        ms,
        code,
        error,
      },
      path.slice(1, 80),
    );
  };
  const handler = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  try {
    if (!handler)
      throw new BadRequest(
        404,
        `unknown endpoint ${JSON.stringify(path.slice(0, 200))}; this plugin implements ${Object.keys(ROUTES).join(', ')}`,
      );
    if (req.method !== 'POST') throw new BadRequest(405, `${path} takes POST, not ${req.method}`);
    const body = await readBody(req);
    name = body.Name;
    const result: unknown = await handler(driver, body);
    send(res, 200, result);
    finish(200);
  } catch (e) {
    const status = e instanceof BadRequest ? e.status : isCsiError(e) ? (HTTP_STATUS[e.code] ?? 500) : 500;
    const code = isCsiError(e) ? e.code : e instanceof BadRequest ? e.code : 'INTERNAL';
    if (code === 'INTERNAL') log.error({ api: 'docker', method: path.slice(1, 80), err: e }, 'unexpected failure');
    const text = errText(e);
    if (status === 413) {
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.destroy()); // the rest of an oversized body is not read
    }
    send(res, status, { Err: text }, code);
    finish(status, text, code);
  }
}
