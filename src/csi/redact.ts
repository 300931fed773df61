// Secrets never reach a log: every field whose name ends in "secrets" (the spec marks exactly these
// csi_secret) is replaced before a request is logged.
const REDACTED = '***redacted***';

export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] = /secrets$/i.test(key) && v !== null && typeof v === 'object' ? redactMap(v) : redactSecrets(v);
  }
  return out;
}

function redactMap(map: object): Record<string, string> {
  return Object.fromEntries(Object.keys(map).map((k) => [k, REDACTED]));
}
