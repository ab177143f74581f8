import { rateLimitHeaders, secondsUntilReset } from '../../../functions/core/metering';

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
});
