// Named fault points for the reliability tests: the mechanism only. Each part of the code lists the points
// it reaches beside it (src/node/faults.ts, src/backends/<name>/faults.ts); the registry gathers them
// (src/backends/registry.ts FAULT_POINTS) for docs/reliability.md and the tests. Unset in production, a
// point costs one comparison.
//   REXCSI_FAULT_POINT=<name>          the process dies with SIGKILL the first time it reaches <name>.
//   REXCSI_FAULT_DELAY=<name>:<ms>[,<name>:<ms>...]
//                                      reaching <name> waits <ms> milliseconds first (a slow backend, so a
//                                      test can let a caller's deadline pass while the operation runs on).
const armed = process.env.REXCSI_FAULT_POINT ?? '';
const delays = parseDelays(process.env.REXCSI_FAULT_DELAY ?? '');

/** A point's name is `<part>.<operation>.<where>`, listed in its part's faults.ts. */
export async function faultPoint(name: string): Promise<void> {
  const ms = delays.get(name);
  if (ms !== undefined) await new Promise<void>((resolve) => setTimeout(resolve, ms));
  if (armed !== '' && armed === name) {
    process.kill(process.pid, 'SIGKILL');
  }
}

function parseDelays(spec: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of spec.split(',')) {
    const at = item.lastIndexOf(':');
    if (at <= 0) continue;
    const ms = Number(item.slice(at + 1));
    if (Number.isFinite(ms) && ms >= 0) out.set(item.slice(0, at), ms);
  }
  return out;
}
