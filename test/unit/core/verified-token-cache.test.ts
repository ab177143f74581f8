/**
 * The verified-token cache on its own clock: entries live until the token's exp and not a millisecond
 * longer, the bound evicts the least recently used, and keys are whole tokens (a changed character is
 * another key).
 */
import { createVerifiedTokenCache } from '../../../functions/core/verified-token-cache';

const EXP = 1_900_000_000; // epoch seconds

describe('createVerifiedTokenCache', () => {
  it('serves an entry until its exp and drops it at exp', () => {
    let now = EXP * 1000 - 2;
    const cache = createVerifiedTokenCache<string>({ now: () => now });
    cache.set('a.b.c', EXP, 'caller');
    expect(cache.get('a.b.c')).toBe('caller');
    now = EXP * 1000 - 1;
    expect(cache.get('a.b.c')).toBe('caller');
    now = EXP * 1000;
    expect(cache.get('a.b.c')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not cache a token that has already expired', () => {
    const cache = createVerifiedTokenCache<string>({ now: () => EXP * 1000 });
    cache.set('a.b.c', EXP, 'caller');
    expect(cache.size).toBe(0);
    expect(cache.get('a.b.c')).toBeUndefined();
  });

  it('keys by the whole token: a token differing in one character misses', () => {
    const cache = createVerifiedTokenCache<string>({ now: () => 0 });
    cache.set('header.payload.signature', EXP, 'caller');
    expect(cache.get('header.payload.signaturf')).toBeUndefined();
    expect(cache.get('header.payload.signature')).toBe('caller');
  });

  it('holds at most maxEntries, evicting the least recently used first', () => {
    const cache = createVerifiedTokenCache<number>({ maxEntries: 3, now: () => 0 });
    for (const n of [1, 2, 3]) cache.set(`t${n}`, EXP, n);
    expect(cache.get('t1')).toBe(1); // t1 is now the most recently used; t2 the least
    cache.set('t4', EXP, 4);
    expect(cache.size).toBe(3);
    expect(cache.get('t2')).toBeUndefined();
    expect([cache.get('t1'), cache.get('t3'), cache.get('t4')]).toEqual([1, 3, 4]);
  });

  it('stays bounded under a flood of distinct tokens', () => {
    const cache = createVerifiedTokenCache<number>({ maxEntries: 1000, now: () => 0 });
    for (let i = 0; i < 5000; i++) cache.set(`token-${i}`, EXP, i);
    expect(cache.size).toBe(1000);
    expect(cache.get('token-3999')).toBeUndefined();
    expect(cache.get('token-4999')).toBe(4999);
  });

  it('caches nothing when maxEntries is 0', () => {
    const cache = createVerifiedTokenCache<string>({ maxEntries: 0, now: () => 0 });
    cache.set('a.b.c', EXP, 'caller');
    expect(cache.get('a.b.c')).toBeUndefined();
  });
});
