import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../../../functions/core/errors';
import { encodeCursor, pageOf, parsePage } from '../../../functions/core/pagination';
import { isTenantId } from '../../../functions/core/tenant';

describe('parsePage', () => {
  it('defaults to 20 and accepts 1 to 100', () => {
    expect(parsePage(undefined)).toEqual({ limit: 20 });
    expect(parsePage({ limit: '1' }).limit).toBe(1);
    expect(parsePage({ limit: '100' }).limit).toBe(100);
  });

  it.each(['0', '101', 'abc', '-1', '1.5', '', '1e2', ' 5'])('refuses limit %j', (limit) => {
    expect(() => parsePage({ limit })).toThrow(BadRequestError);
  });

  it('round-trips a cursor and keeps microseconds', () => {
    const id = randomUUID();
    const cursor = encodeCursor('2026-11-26T07:00:00.123456Z', id);
    expect(parsePage({ cursor })).toEqual({ limit: 20, after: { at: '2026-11-26T07:00:00.123456Z', id } });
  });

  it.each([
    'garbage!',
    'x'.repeat(600),
    Buffer.from('not json').toString('base64url'),
    Buffer.from('["2026-11-26T07:00:00Z"]').toString('base64url'),
    Buffer.from('["yesterday","0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b"]').toString('base64url'),
    Buffer.from('["2026-11-26T07:00:00Z","../../etc"]').toString('base64url'),
    Buffer.from('{"at":1}').toString('base64url'),
  ])('refuses a garbage cursor (%#)', (cursor) => {
    expect(() => parsePage({ cursor })).toThrow(BadRequestError);
  });

  it('validates the cursor id with the given check', () => {
    const cursor = encodeCursor('2026-11-26T07:00:00Z', 'acme');
    expect(parsePage({ cursor }, isTenantId).after?.id).toBe('acme');
    expect(() => parsePage({ cursor })).toThrow(BadRequestError);
  });
});

describe('pageOf', () => {
  const rows = [1, 2, 3].map((n) => ({ n, at: `2026-11-26T07:00:0${n}Z`, id: `id-${n}` }));
  it('returns a next cursor only when there are more rows than the limit', () => {
    const page = pageOf(rows, 2, (r) => ({ at: r.at, id: r.id }), (r) => r.n);
    expect(page.items).toEqual([1, 2]);
    expect(page.nextCursor).toBe(encodeCursor(rows[1]!.at, 'id-2'));
    expect(pageOf(rows, 3, (r) => ({ at: r.at, id: r.id }), (r) => r.n).nextCursor).toBeNull();
  });
});
