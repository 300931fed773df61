import { describe, expect, it } from 'vitest';
import { sliceAfter, type ListRange } from '../../src/backends/backend.js';
import { encodePageToken, pageOf } from '../../src/csi/page.js';
import { CsiError } from '../../src/errors.js';

const valid = (id: string) => /^v\d+$/.test(id);
const ids = ['v1', 'v2', 'v3', 'v4', 'v5'];
/** A backend's listing over these ids, recording what it was asked for. */
function lister(current: string[], asked: ListRange[] = []) {
  return (range: ListRange) => {
    asked.push(range);
    return Promise.resolve(
      sliceAfter(
        current.map((id) => ({ id })),
        range,
      ),
    );
  };
}
const idsOf = (page: { entries: { id: string }[] }) => page.entries.map((e) => e.id);

describe('page tokens', () => {
  it('walks every id exactly once, page by page', async () => {
    const seen: string[] = [];
    let token = '';
    do {
      const page = await pageOf(lister(ids), 2, token, valid);
      seen.push(...idsOf(page));
      token = page.nextToken;
    } while (token !== '');
    expect(seen).toEqual(ids);
  });

  it('returns everything with max_entries 0 and no token at the end', async () => {
    const page = await pageOf(lister(ids), 0, '', valid);
    expect({ ids: idsOf(page), nextToken: page.nextToken }).toEqual({ ids, nextToken: '' });
  });

  it('continues after the last id even when that id was deleted between pages', async () => {
    const first = await pageOf(lister(ids), 2, '', valid);
    const after = await pageOf(lister(['v1', 'v3', 'v4', 'v5']), 2, first.nextToken, valid);
    expect(idsOf(after)).toEqual(['v3', 'v4']);
  });

  it('answers a token it did not issue with ABORTED', async () => {
    for (const bad of ['garbage!', 'eyJ2IjoxfQ', encodePageToken('../etc'), 'x'.repeat(600)]) {
      let err: unknown;
      try {
        await pageOf(lister(ids), 2, bad, valid);
      } catch (e) {
        err = e;
      }
      expect((err as CsiError).code, bad).toBe('ABORTED');
    }
  });

  it('asks the backend for one entry more than the page, after the token id, and no token when nothing follows', async () => {
    const asked: ListRange[] = [];
    const first = await pageOf(lister(ids, asked), 2, '', valid);
    await pageOf(lister(ids, asked), 3, first.nextToken, valid);
    expect(asked).toEqual([
      { afterId: '', limit: 3 },
      { afterId: 'v2', limit: 4 },
    ]);
    const last = await pageOf(lister(ids), 3, first.nextToken, valid);
    expect([idsOf(last), last.nextToken]).toEqual([['v3', 'v4', 'v5'], '']);
  });
});
