// One error type for every layer. Backends and the OS layer throw it with the code whose meaning they
// know (NOT_FOUND, FAILED_PRECONDITION, ...); the protocol layer turns the code into a gRPC status.
// The names are gRPC's, so no layer below the protocol needs to import grpc-js.

export type ErrorCode =
  | 'CANCELLED'
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE';

export class RexError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RexError';
    this.code = code;
  }
}

export const invalidArgument = (msg: string): RexError => new RexError('INVALID_ARGUMENT', msg);
export const notFound = (msg: string): RexError => new RexError('NOT_FOUND', msg);
export const alreadyExists = (msg: string): RexError => new RexError('ALREADY_EXISTS', msg);
export const failedPrecondition = (msg: string): RexError => new RexError('FAILED_PRECONDITION', msg);
export const outOfRange = (msg: string): RexError => new RexError('OUT_OF_RANGE', msg);
export const resourceExhausted = (msg: string): RexError => new RexError('RESOURCE_EXHAUSTED', msg);
export const aborted = (msg: string): RexError => new RexError('ABORTED', msg);
export const unavailable = (msg: string): RexError => new RexError('UNAVAILABLE', msg);
export const internal = (msg: string, cause?: unknown): RexError => new RexError('INTERNAL', msg, { cause });

export function isRexError(e: unknown, code?: ErrorCode): e is RexError {
  return e instanceof RexError && (code === undefined || e.code === code);
}
