import { describe, expect, it } from 'vitest';
import { encodePageToken, pageOfIds } from '../../src/backends/page-token.js';
import { RexError } from '../../src/errors.js';

const valid = (id: string) => /^v\d+$/.test(id);
const ids = ['v1', 'v2', 'v3', 'v4', 'v5'];

describe('page tokens', () => {
  it('walks every id exactly once, page by page', () => {
    const seen: string[] = [];
    let token = '';
    do {
      const page = pageOfIds(ids, 2, token, valid);
      seen.push(...page.ids);
      token = page.nextToken;
    } while (token !== '');
    expect(seen).toEqual(ids);
  });

  it('returns everything with max_entries 0 and no token at the end', () => {
    expect(pageOfIds(ids, 0, '', valid)).toEqual({ ids, nextToken: '' });
  });

  it('continues after the last id even when that id was deleted between pages', () => {
    const first = pageOfIds(ids, 2, '', valid);
    const after = pageOfIds(['v1', 'v3', 'v4', 'v5'], 2, first.nextToken, valid);
    expect(after.ids).toEqual(['v3', 'v4']);
  });

  it('answers a token it did not issue with ABORTED', () => {
    for (const bad of ['garbage!', 'eyJ2IjoxfQ', encodePageToken('../etc'), 'x'.repeat(600)]) {
      let err: unknown;
      try {
        pageOfIds(ids, 2, bad, valid);
      } catch (e) {
        err = e;
      }
      expect((err as RexError).code, bad).toBe('ABORTED');
    }
  });
});
