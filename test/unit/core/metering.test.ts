import { quotaError } from '../../../functions/core/db-errors';
import { quotaHeaders, rateLimitHeaders, secondsUntilReset } from '../../../functions/core/metering';

describe('metering headers', () => {
  const now = new Date('2026-11-30T23:59:00Z');

  it('counts seconds to the end of the UTC month, across a year end too', () => {
    expect(secondsUntilReset('2026-11', now)).toBe(60);
    expect(secondsUntilReset('2026-12', new Date('2026-12-31T23:00:00Z'))).toBe(3600);
    expect(secondsUntilReset('total', now)).toBeNull();
  });

  it('sends X-Quota headers naming a limited metric and none for unlimited ones', () => {
    expect(quotaHeaders('api_requests', { used: 4, limit: 10, period: '2026-11' }, now)).toEqual({
      'X-Quota-Metric': 'api_requests',
      'X-Quota-Limit': '10',
      'X-Quota-Remaining': '6',
      'X-Quota-Reset': '60',
    });
    expect(quotaHeaders('api_requests', { used: 4, limit: null, period: '2026-11' }, now)).toEqual({});
  });

  it('gives a standing total (documents, storage) no reset', () => {
    expect(quotaHeaders('documents', { used: 3, limit: 3, period: 'total' }, now)).toEqual({
      'X-Quota-Metric': 'documents',
      'X-Quota-Limit': '3',
      'X-Quota-Remaining': '0',
    });
  });

  it('turns a TS429 quota error into a 429 with Retry-After until the period ends and the quota headers, no RateLimit ones', () => {
    const error = quotaError({ code: 'TS429', detail: '{"metric":"ai_tokens","limit":10,"used":10,"period":"2026-11"}' }, now)!;
    expect(error.status).toBe(429);
    expect(error.headers).toEqual({
      'Retry-After': '60',
      'X-Quota-Metric': 'ai_tokens',
      'X-Quota-Limit': '10',
      'X-Quota-Remaining': '0',
      'X-Quota-Reset': '60',
    });
  });

  it('turns a rate-limit error into Retry-After 1 and the per-second window as IETF RateLimit fields, no quota ones', () => {
    expect(quotaError({ code: 'TS429', detail: '{"metric":"rate","limit":5}' }, now)?.headers).toEqual({
      'Retry-After': '1',
      'RateLimit-Limit': '5',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '1',
      'RateLimit-Policy': '5;w=1',
    });
    expect(rateLimitHeaders(10)['RateLimit-Policy']).toBe('10;w=1');
  });

  it('still answers 429 when the detail is unreadable, and ignores other errors', () => {
    expect(quotaError({ code: 'TS429', detail: 'garbage' }, now)?.status).toBe(429);
    expect(quotaError({ code: '23505' }, now)).toBeUndefined();
    expect(quotaError(new Error('x'), now)).toBeUndefined();
  });
});
