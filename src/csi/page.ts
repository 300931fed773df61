import type { ListRange } from '../backends/backend.js';
import { aborted } from '../errors.js';

// Pagination of ListVolumes and ListSnapshots, for every backend: a backend lists in ascending id order
// after an id, and this module makes and checks the tokens. A token names the last entry returned
// ("continue after id X"), not an offset, so a listing stays correct while volumes are created and deleted
// between pages. A token we did not issue is ABORTED, as the spec asks.

export interface Page<T> {
  entries: T[];
  /** opaque; '' when there is no further page */
  nextToken: string;
}

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

/**
 * One page after the token; maxEntries 0 means "as many as there are". The backend is asked for one entry
 * more than the page holds, so a next token is issued only when something follows.
 */
export async function pageOf<T extends { id: string }>(
  list: (range: ListRange) => Promise<T[]>,
  maxEntries: number,
  startingToken: string,
  validId: (id: string) => boolean,
): Promise<Page<T>> {
  const afterId = startingToken === '' ? '' : decodePageToken(startingToken, validId);
  const found = await list({ afterId, limit: maxEntries > 0 ? maxEntries + 1 : 0 });
  if (maxEntries <= 0 || found.length <= maxEntries) return { entries: found, nextToken: '' };
  const entries = found.slice(0, maxEntries);
  return { entries, nextToken: encodePageToken(entries[entries.length - 1]!.id) };
}
