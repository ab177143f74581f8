/**
 * Metering periods (`'YYYY-MM'`, the UTC calendar month, for monthly metrics; `'total'` for standing
 * totals) and the response headers that describe a reading. Two families, each meaning one thing on every
 * answer:
 * - `RateLimit-Limit`, `-Remaining`, `-Reset` and `RateLimit-Policy` (the IETF RateLimit header fields
 *   draft, its `RateLimit-*` form) describe only the tenant's per-second request window. They are sent on
 *   the 429 that window causes; successes do not carry them, because `app.meter_request()` does not
 *   report the bucket's level.
 * - `X-Quota-Metric`, `X-Quota-Limit`, `X-Quota-Remaining` and `X-Quota-Reset` describe a plan quota:
 *   on a metered success the monthly `api_requests` quota; on a quota 429 the quota that was used up
 *   (`X-Quota-Metric` names it). `X-Quota-Reset` is the seconds until a monthly quota starts over; a
 *   standing total (`documents`, `storage_bytes`) has none.
 */

export interface MeterReading {
  readonly used: number;
  /** null: unlimited. */
  readonly limit: number | null;
  /** 'YYYY-MM' (UTC) or 'total'. */
  readonly period: string;
}

/** Seconds until the period that `period` names ends (monthly metrics), from `now`; null for `'total'`. */
export function secondsUntilReset(period: string, now: Date): number | null {
  const match = /^(\d{4})-(\d{2})$/.exec(period);
  if (!match) return null;
  const end = Date.UTC(Number(match[1]), Number(match[2]), 1); // month index is 0-based: this is the next month
  return Math.max(0, Math.ceil((end - now.getTime()) / 1000));
}

/** `X-Quota-*` headers of a reading of `metric` (none for an unlimited one). */
export function quotaHeaders(metric: string, r: MeterReading, now = new Date()): Record<string, string> {
  if (r.limit === null) return {};
  const reset = secondsUntilReset(r.period, now);
  return {
    'X-Quota-Metric': metric,
    'X-Quota-Limit': String(r.limit),
    'X-Quota-Remaining': String(Math.max(0, r.limit - r.used)),
    ...(reset === null ? {} : { 'X-Quota-Reset': String(reset) }),
  };
}

/** The per-second window's headers on the 429 it causes (IETF RateLimit header fields, `RateLimit-*` form). */
export function rateLimitHeaders(requestsPerSecond: number): Record<string, string> {
  return {
    'RateLimit-Limit': String(requestsPerSecond),
    'RateLimit-Remaining': '0',
    'RateLimit-Reset': '1',
    'RateLimit-Policy': `${requestsPerSecond};w=1`,
  };
}
