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

export class CsiError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CsiError';
    this.code = code;
  }
}

export const invalidArgument = (msg: string): CsiError => new CsiError('INVALID_ARGUMENT', msg);
export const notFound = (msg: string): CsiError => new CsiError('NOT_FOUND', msg);
export const alreadyExists = (msg: string): CsiError => new CsiError('ALREADY_EXISTS', msg);
export const failedPrecondition = (msg: string): CsiError => new CsiError('FAILED_PRECONDITION', msg);
export const outOfRange = (msg: string): CsiError => new CsiError('OUT_OF_RANGE', msg);
export const resourceExhausted = (msg: string): CsiError => new CsiError('RESOURCE_EXHAUSTED', msg);
export const aborted = (msg: string): CsiError => new CsiError('ABORTED', msg);
export const unavailable = (msg: string): CsiError => new CsiError('UNAVAILABLE', msg);
export const internal = (msg: string, cause?: unknown): CsiError => new CsiError('INTERNAL', msg, { cause });

export function isCsiError(e: unknown, code?: ErrorCode): e is CsiError {
  return e instanceof CsiError && (code === undefined || e.code === code);
}
