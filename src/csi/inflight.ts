import { aborted } from '../errors.js';

// Per-volume operation guard, written once for every RPC. While an operation holds a key (a volume id,
// a volume name), a *different* request on that key gets ABORTED, as the spec asks. An *identical*
// request (a CO retry after its deadline, a duplicate in flight) joins the running one and gets the same
// result, so a slow CreateVolume is never started twice.

interface Running {
  fingerprint: string;
  method: string;
  promise: Promise<unknown>;
}

export class Inflight {
  private readonly byKey = new Map<string, Running>();
  private readonly byFingerprint = new Map<string, Running>();

  get size(): number {
    return this.byFingerprint.size;
  }

  run<T>(method: string, keys: string[], fingerprint: string, fn: () => Promise<T>): Promise<T> {
    const twin = this.byFingerprint.get(fingerprint);
    if (twin) return twin.promise as Promise<T>;
    for (const key of keys) {
      const holder = this.byKey.get(key);
      if (holder) {
        throw aborted(`an operation (${holder.method}) on ${key} is already in progress; retry when it has finished`);
      }
    }
    const running: Running = { fingerprint, method, promise: Promise.resolve() };
    const release = (): void => {
      this.byFingerprint.delete(fingerprint);
      for (const key of keys) if (this.byKey.get(key) === running) this.byKey.delete(key);
    };
    running.promise = (async () => {
      try {
        return await fn();
      } finally {
        release();
      }
    })();
    this.byFingerprint.set(fingerprint, running);
    for (const key of keys) this.byKey.set(key, running);
    return running.promise as Promise<T>;
  }
}

/** A stable string for a request: same request, same fingerprint, whatever the key order. */
export function fingerprint(method: string, request: unknown): string {
  return `${method} ${stableJson(request)}`;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
