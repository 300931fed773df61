// The value of --metrics-address, parsed apart from src/metrics.ts so reading the configuration does not load prom-client.

export interface MetricsAddress {
  host: string;
  port: number;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). Returns a message on failure. */
export function parseMetricsAddress(value: string): MetricsAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) return 'expected host:port, e.g. 127.0.0.1:9808 or :9808';
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
