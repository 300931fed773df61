// The driver (and the checks) both concurrency suites share: clients take operations off one list; a 'single' is sent
// alone, a 'twin' by two clients at once, a 'conflict' as one request and a different one on the same
// volume 40 ms later. It records every answer, the pairs, how many requests went and the most in flight.
import { status } from '@grpc/grpc-js';

export interface LoadOp<K> {
  kind: K;
  volume: number;
  /** 'twin': an identical request in flight at once; 'conflict': a different one 40 ms after it. */
  shape: 'single' | 'twin' | 'conflict';
  conflictKind: K;
}

export interface LoadResult<O> {
  outcomes: O[];
  twins: [O, O][];
  conflicts: [O, O][];
  requests: number;
  maxInFlight: number;
}

export async function runMixedLoad<C, K, O>(
  clients: C[],
  ops: LoadOp<K>[],
  send: (client: C, kind: K, volume: number) => Promise<O>,
): Promise<LoadResult<O>> {
  const result: LoadResult<O> = { outcomes: [], twins: [], conflicts: [], requests: 0, maxInFlight: 0 };
  let inFlight = 0;
  let next = 0;
  const track = async (p: Promise<O>): Promise<O> => {
    result.requests++;
    result.maxInFlight = Math.max(result.maxInFlight, ++inFlight);
    try {
      return await p;
    } finally {
      inFlight--;
    }
  };
  await Promise.all(
    clients.map(async (c, i) => {
      const other = clients[(i + 1) % clients.length]!;
      for (let op = ops[next++]; op; op = ops[next++]) {
        if (op.shape === 'twin') {
          const pair = await Promise.all([track(send(c, op.kind, op.volume)), track(send(other, op.kind, op.volume))]);
          result.twins.push(pair);
          result.outcomes.push(...pair);
        } else if (op.shape === 'conflict') {
          const first = track(send(c, op.kind, op.volume));
          await new Promise((r) => setTimeout(r, 40));
          const pair = await Promise.all([first, track(send(other, op.conflictKind, op.volume))]);
          result.conflicts.push(pair);
          result.outcomes.push(...pair);
        } else {
          result.outcomes.push(await track(send(c, op.kind, op.volume)));
        }
      }
    }),
  );
  return result;
}

// ---- the checks both concurrency suites make on what the load answered

/** One answered request, timed (performance.now()). */
export interface TimedOutcome<K> {
  kind: K;
  volume: number;
  code: status;
  answer: string;
  start: number;
  end: number;
}

const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(status).map(([k, v]) => [v, k]));
const codeName = (c: status) => CODE_NAMES[c] ?? String(c);

/** Answers no request may get: an internal failure, or a deadline the plugin let pass. */
export function internalFailures<K>(outcomes: TimedOutcome<K>[]): string[] {
  return outcomes
    .filter((o) => o.code === status.INTERNAL || o.code === status.UNKNOWN || o.code === status.DEADLINE_EXCEEDED)
    .map((o) => `${String(o.kind)} v${o.volume}: ${codeName(o.code)} ${o.answer}`);
}

/** Twins that were in flight together and are the same request (`same` says when two are). */
export function overlappingTwins<O extends TimedOutcome<unknown>>(twins: [O, O][], same: (a: O, b: O) => boolean): [O, O][] {
  return twins.filter(([a, b]) => a.start < b.end && b.start < a.end && same(a, b));
}

/** Each overlapping twin pair's answers, side by side, for an equality check per pair. */
export function twinAnswers<K>(pairs: [TimedOutcome<K>, TimedOutcome<K>][]): { first: string; second: string }[] {
  return pairs.map(([a, b]) => ({ first: `${codeName(a.code)} ${a.answer}`, second: `${codeName(b.code)} ${b.answer}` }));
}

/**
 * A different request on the same lock key, answered well before the first one finished, met it running and
 * must have been ABORTED (unless the first was NOT_FOUND). Returns those that were not, and how many were.
 */
export function conflictOutcomes<O extends TimedOutcome<unknown>>(
  conflicts: [O, O][],
  sameKey: (first: O, second: O) => boolean,
): { notAborted: string[]; aborted: number } {
  const notAborted: string[] = [];
  let aborted = 0;
  for (const [first, second] of conflicts) {
    if (!sameKey(first, second) || first.kind === second.kind || first.code === status.NOT_FOUND) continue;
    if (second.end + 20 < first.end && second.code !== status.ABORTED)
      notAborted.push(`${String(first.kind)} then ${String(second.kind)} on v${first.volume}: ${codeName(second.code)} ${second.answer}`);
    if (second.code === status.ABORTED) aborted++;
  }
  return { notAborted, aborted };
}

/**
 * The end states a volume may be in: its successful state-changing calls replayed in the order they
 * finished, and also with the last two swapped when they overlapped (two calls on different lock keys).
 */
export function allowedEndStates<O extends TimedOutcome<unknown>, S>(changes: O[], replay: (calls: O[]) => S): S[] {
  const sorted = [...changes].sort((a, b) => a.end - b.end);
  const allowed = new Set<S>([replay(sorted)]);
  const [prev, last] = sorted.slice(-2);
  if (prev && last && prev.end > last.start) allowed.add(replay([...sorted.slice(0, -2), last, prev]));
  return [...allowed];
}

/** What a volume went through, for a failure message. */
export function history<K>(outcomes: TimedOutcome<K>[], v: number, extra: (o: TimedOutcome<K>) => string = () => ''): string {
  return outcomes
    .filter((o) => o.volume === v)
    .map((o) => `${String(o.kind)}${extra(o)}:${codeName(o.code)}`)
    .join(' ');
}
