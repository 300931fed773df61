// The driver both concurrency suites share: clients take operations off one list; a 'single' is sent
// alone, a 'twin' by two clients at once, a 'conflict' as one request and a different one on the same
// volume 40 ms later. It records every answer, the pairs, how many requests went and the most in flight.

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
