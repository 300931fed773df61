import { aborted } from '../errors.js';

// Opaque pagination tokens that name the last entry returned ("continue after id X"), not an offset, so a
// listing stays correct while volumes are created and deleted between pages. A token we did not issue is
// ABORTED, as the spec asks for ListVolumes and ListSnapshots.

export function encodePageToken(afterId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: afterId }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string, validId: (id: string) => boolean): string {
  const bad = () => aborted(`starting_token ${JSON.stringify(token.slice(0, 64))} was not issued by this plugin; start the listing again`);
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(token)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const after = (parsed as { v?: unknown; after?: unknown } | null)?.after;
  if ((parsed as { v?: unknown }).v !== 1 || typeof after !== 'string' || !validId(after)) throw bad();
  return after;
}

/** One page of ids (sorted ascending) after the token; 0 entries means "as many as there are". */
export function pageOfIds(
  sortedIds: string[],
  maxEntries: number,
  startingToken: string,
  validId: (id: string) => boolean,
): { ids: string[]; nextToken: string } {
  let start = 0;
  if (startingToken !== '') {
    const after = decodePageToken(startingToken, validId);
    start = upperBound(sortedIds, after);
  }
  const end = maxEntries > 0 ? Math.min(sortedIds.length, start + maxEntries) : sortedIds.length;
  const ids = sortedIds.slice(start, end);
  const nextToken = end < sortedIds.length && ids.length > 0 ? encodePageToken(ids[ids.length - 1]!) : '';
  return { ids, nextToken };
}

function upperBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
