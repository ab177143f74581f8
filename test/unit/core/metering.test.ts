import { quotaError, rateLimitHeaders, secondsUntilReset } from '../../../functions/core/metering';

describe('metering headers', () => {
  const now = new Date('2026-11-30T23:59:00Z');

  it('counts seconds to the end of the UTC month, across a year end too', () => {
    expect(secondsUntilReset('2026-11', now)).toBe(60);
    expect(secondsUntilReset('2026-12', new Date('2026-12-31T23:00:00Z'))).toBe(3600);
    expect(secondsUntilReset('total', now)).toBeNull();
  });

  it('sends RateLimit headers for limited metrics and none for unlimited ones', () => {
    expect(rateLimitHeaders({ used: 4, limit: 10, period: '2026-11' }, now)).toEqual({
      'RateLimit-Limit': '10',
      'RateLimit-Remaining': '6',
      'RateLimit-Reset': '60',
    });
    expect(rateLimitHeaders({ used: 4, limit: null, period: '2026-11' }, now)).toEqual({});
  });

  it('turns a TS429 quota error into a 429 with Retry-After until the period ends', () => {
    const error = quotaError({ code: 'TS429', detail: '{"metric":"ai_tokens","limit":10,"used":10,"period":"2026-11"}' }, now)!;
    expect(error.status).toBe(429);
    expect(error.headers).toEqual({ 'Retry-After': '60', 'RateLimit-Limit': '10', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '60' });
  });

  it('turns a rate-limit error into Retry-After 1', () => {
    expect(quotaError({ code: 'TS429', detail: '{"metric":"rate","limit":5}' }, now)?.headers['Retry-After']).toBe('1');
  });

  it('still answers 429 when the detail is unreadable, and ignores other errors', () => {
    expect(quotaError({ code: 'TS429', detail: 'garbage' }, now)?.status).toBe(429);
    expect(quotaError({ code: '23505' }, now)).toBeUndefined();
    expect(quotaError(new Error('x'), now)).toBeUndefined();
  });
});
