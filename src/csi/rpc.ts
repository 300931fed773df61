import { status as Status, Metadata, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CsiError, type ErrorCode } from '../errors.js';
import { redactSecrets } from './redact.js';

// Everything every RPC needs, written once: error mapping to a precise gRPC status, one log line per
// call (method, volume id, code, duration), and no stack trace ever sent to a client.

export interface RpcObserver {
  (method: string, code: Status, durationMs: number): void;
}

export interface RpcContext {
  log: Logger;
  observe?: RpcObserver;
}

const CODE: Record<ErrorCode, Status> = {
  CANCELLED: Status.CANCELLED,
  UNKNOWN: Status.UNKNOWN,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ABORTED: Status.ABORTED,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  INTERNAL: Status.INTERNAL,
  UNAVAILABLE: Status.UNAVAILABLE,
};

export function toStatus(err: unknown): { code: Status; details: string } {
  if (err instanceof CsiError) return { code: CODE[err.code], details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: Status.INTERNAL, details: `internal error: ${firstLine(message)}` };
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0] ?? '';
  return line.length > 500 ? `${line.slice(0, 500)}...` : line;
}

/** The volume (or snapshot) a request is about, for logs. */
function subjectOf(req: unknown): string | undefined {
  if (req === null || typeof req !== 'object') return undefined;
  const r = req as Record<string, unknown>;
  for (const key of ['volume_id', 'name', 'snapshot_id', 'source_volume_id', 'group_snapshot_id']) {
    const v = r[key];
    if (typeof v === 'string' && v !== '') return v.slice(0, 200);
  }
  return undefined;
}

let requestCounter = 0;

/** Wraps an async handler as a grpc-js unary handler. */
export function unary<Req, Res>(
  ctx: RpcContext,
  method: string,
  impl: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  opts: { quiet?: boolean } = {},
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const requestId = ++requestCounter;
    const finish = (code: Status, details?: string): void => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      ctx.observe?.(method, code, ms);
      const level = code === Status.OK ? (opts.quiet ? 'debug' : 'info') : code === Status.INTERNAL ? 'error' : 'warn';
      if (ctx.log.isLevelEnabled(level)) {
        ctx.log[level](
          {
            method,
            volume: subjectOf(call.request),
            code: Status[code],
            ms: Math.round(ms * 1000) / 1000,
            req: requestId,
            ...(details ? { error: details } : {}),
          },
          method,
        );
      }
    };
    if (ctx.log.isLevelEnabled('debug')) ctx.log.debug({ method, req: requestId, request: redactSecrets(call.request) }, 'request');
    impl(call.request, call).then(
      (res) => {
        finish(Status.OK);
        callback(null, res);
      },
      (err: unknown) => {
        const { code, details } = toStatus(err);
        if (code === Status.INTERNAL) ctx.log.error({ method, req: requestId, err }, 'unexpected failure');
        finish(code, details);
        const e: Partial<ServiceError> = { code, details, metadata: new Metadata() };
        callback(e, null);
      },
    );
  };
}
