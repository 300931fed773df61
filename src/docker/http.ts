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
    /**
     * For a body over the limit: settles once the rest of it has been read and thrown away (true), or
     * has been found too large to read (false: answer, then close the connection).
     */
    readonly rest?: Promise<boolean>,
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

/**
 * Past MAX_BODY_BYTES a request gets 413, but only once the rest of its body, up to DRAIN_BYTES, has been
 * read and thrown away: a client still writing its body then reads the answer, where a connection closed
 * under it would fail its write (EPIPE) before it read anything. Past DRAIN_BYTES the answer goes out at
 * once and the connection is closed. (Node's server stops reading a request once its answer is sent, so
 * the answer has to wait.)
 */
const DRAIN_BYTES = 8 * 1024 * 1024;

function discardRest(req: IncomingMessage, alreadyRead: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  return new Promise((resolve) => {
    let size = alreadyRead;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_BYTES) resolve(false);
    });
    req.once('end', () => resolve(true));
    req.once('error', () => resolve(false));
    req.once('close', () => resolve(req.complete));
    req.resume();
  });
}

function tooLarge(message: string, rest: Promise<boolean>): BadRequest {
  return new BadRequest(413, message, undefined, rest);
}

function readBody(req: IncomingMessage): Promise<Body> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    const rest = declared <= DRAIN_BYTES ? discardRest(req, 0) : Promise.resolve(false);
    return Promise.reject(tooLarge(`request body of ${declared} bytes is over the limit of ${MAX_BODY_BYTES}`, rest));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.off('end', onEnd);
      reject(tooLarge(`request body is over the limit of ${MAX_BODY_BYTES} bytes`, discardRest(req, size)));
    };
    const onEnd = (): void => {
      try {
        resolve(parseBody(Buffer.concat(chunks).toString('utf8').trim()));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

function parseBody(text: string): Body {
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
    if (e instanceof BadRequest && e.rest && !(await e.rest)) {
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.destroy()); // the rest of a body this large is not read
    }
    send(res, status, { Err: text }, code);
    finish(status, text, code);
  }
}
