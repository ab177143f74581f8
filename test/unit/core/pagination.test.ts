import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../../../functions/core/errors';
import { encodeCursor, isPosition, pageOf, parsePage } from '../../../functions/core/pagination';
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
    Buffer.from('[1e400,"0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b"]').toString('base64url'),
    Buffer.from('[["2026-11-26T07:00:00.000000Z"],"0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b"]').toString('base64url'),
    Buffer.from('["2026-11-26T07:00:00.000000Z",123456789012345678901234567890]').toString('base64url'),
    Buffer.from('["2026-11-26T07:00:00.000000Z","0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b",1]').toString('base64url'),
  ])('refuses a garbage cursor (%#)', (cursor) => {
    expect(() => parsePage({ cursor })).toThrow(BadRequestError);
  });

  it('validates the cursor id with the given check', () => {
    const cursor = encodeCursor('2026-11-26T07:00:00.000000Z', 'acme');
    expect(parsePage({ cursor }, isTenantId).after?.id).toBe('acme');
    expect(() => parsePage({ cursor })).toThrow(BadRequestError);
  });
});

describe('cursor timestamps', () => {
  const id = '0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b';
  const cursorAt = (at: unknown) => Buffer.from(JSON.stringify([at, id])).toString('base64url');

  it.each([
    '0001-01-01T00:00:00.000000Z',
    '9999-12-31T23:59:59.999999Z',
    '2024-02-29T12:00:00.000001Z',
    '2000-02-29T00:00:00.000000Z',
  ])('accepts %s', (at) => {
    expect(parsePage({ cursor: cursorAt(at) }).after).toEqual({ at, id });
  });

  it.each([
    '0000-01-01T00:00:00.000000Z', // there is no year 0: Postgres answers 22008
    '2026-02-29T00:00:00.000000Z', // not a leap year
    '1900-02-29T00:00:00.000000Z', // not a leap year either
    '2026-04-31T00:00:00.000000Z',
    '2026-13-01T00:00:00.000000Z',
    '2026-00-10T00:00:00.000000Z',
    '2026-01-00T00:00:00.000000Z',
    '2026-01-01T24:00:00.000000Z',
    '2026-01-01T23:60:00.000000Z',
    '2026-01-01T23:59:60.000000Z',
    '2026-01-01T00:00:00Z', // not what Postgres printed: microseconds are always there
    '2026-01-01T00:00:00.123Z',
    '2026-01-01T00:00:00.000000+01:00',
    '+012026-01-01T00:00:00.000000Z',
    '12026-01-01T00:00:00.000000Z',
    '2026-01-01 00:00:00.000000Z',
    ' 2026-01-01T00:00:00.000000Z',
    'infinity',
    '-infinity',
    '',
  ])('refuses %j', (at) => {
    expect(isPosition(at)).toBe(false);
    expect(() => parsePage({ cursor: cursorAt(at) })).toThrow(BadRequestError);
  });

  it.each([null, 1, 1e21, true, {}, []])('refuses a cursor timestamp of type %j', (at) => {
    expect(() => parsePage({ cursor: cursorAt(at) })).toThrow(BadRequestError);
  });
});

describe('pageOf', () => {
  const rows = [1, 2, 3].map((n) => ({ n, page_at: `2026-11-26T07:00:0${n}.000000Z`, page_id: `id-${n}` }));
  it('returns a next cursor only when there are more rows than the limit', () => {
    const page = pageOf(rows, 2, (r) => r.n);
    expect(page.items).toEqual([1, 2]);
    expect(page.nextCursor).toBe(encodeCursor(rows[1]!.page_at, 'id-2'));
    expect(pageOf(rows, 3, (r) => r.n).nextCursor).toBeNull();
  });
});
