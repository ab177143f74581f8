/**
 * Usage metering inside the request's transaction. The counting itself is SQL (migration 0005:
 * `app.meter_request()` and `app.consume()`): a conditional increment that can never overshoot a quota
 * under concurrency. Over a limit, the SQL raises TS429, the transaction rolls back, nothing is recorded,
 * and this module turns the error into a 429 with `Retry-After`.
 *
 * Two families of headers, each meaning one thing on every answer:
 * - `RateLimit-Limit`, `-Remaining`, `-Reset` and `RateLimit-Policy` (the IETF RateLimit header fields
 *   draft, its `RateLimit-*` form) describe only the tenant's per-second request window. They are sent on
 *   the 429 that window causes; successes do not carry them, because `app.meter_request()` does not
 *   report the bucket's level.
 * - `X-Quota-Metric`, `X-Quota-Limit`, `X-Quota-Remaining` and `X-Quota-Reset` describe a plan quota:
 *   on a metered success the monthly `api_requests` quota; on a quota 429 the quota that was used up
 *   (`X-Quota-Metric` names it). `X-Quota-Reset` is the seconds until a monthly quota starts over; a
 *   standing total (`documents`, `storage_bytes`) has none.
 */
import type { Metric } from '../routes';
import type { Tx } from './db';
import { QuotaExceededError } from './errors';

export interface MeterReading {
  readonly used: number;
  /** null: unlimited. */
  readonly limit: number | null;
  /** 'YYYY-MM' (UTC) or 'total'. */
  readonly period: string;
}

interface ReadingRow {
  used: string | number;
  quota: string | number | null;
  period: string;
}

function reading(row: ReadingRow | undefined): MeterReading {
  if (!row) throw new Error('metering returned no row');
  return { used: Number(row.used), limit: row.quota === null ? null : Number(row.quota), period: row.period };
}

/** Seconds until the period that `period` names ends (monthly metrics), from `now`. */
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

/**
 * Counts one request against the rate limit and the monthly api_requests quota. Returned unawaited-safe:
 * it is sent at once so that it travels in the same round trip as the request's work.
 */
export function meterRequest(tx: Tx): Promise<MeterReading> {
  const query = tx<ReadingRow[]>`select used, quota, period from app.meter_request()`.execute();
  return query.then(([row]) => reading(row));
}

/** Moves `metric` by `quantity` (negative gives quota back). Throws QuotaExceededError over the limit. */
export async function consume(tx: Tx, metric: Metric, quantity: number): Promise<MeterReading> {
  try {
    const [row] = await tx<ReadingRow[]>`select used, quota, period from app.consume(${metric}, ${quantity})`;
    return reading(row);
  } catch (error) {
    throw quotaError(error) ?? error;
  }
}

/** The 429 for a TS429 raised by the metering SQL, or undefined for any other error. */
export function quotaError(error: unknown, now = new Date()): QuotaExceededError | undefined {
  const e = error as { code?: unknown; detail?: unknown } | null;
  if (e?.code !== 'TS429') return undefined;
  let detail: { metric?: string; limit?: number | null; used?: number; period?: string } = {};
  try {
    detail = JSON.parse(String(e.detail)) as typeof detail;
  } catch {
    // keep the defaults: still a 429
  }
  if (detail.metric === 'rate') {
    return new QuotaExceededError('Too many requests for this tenant; slow down.', {
      'Retry-After': '1',
      ...(typeof detail.limit === 'number' ? rateLimitHeaders(detail.limit) : {}),
    });
  }
  const reset = detail.period ? secondsUntilReset(detail.period, now) : null;
  const headers: Record<string, string> = {
    // Standing totals (documents, storage) free up only when something is deleted: ask to retry later.
    'Retry-After': String(reset ?? 3600),
  };
  if (typeof detail.limit === 'number' && detail.metric) {
    Object.assign(headers, quotaHeaders(detail.metric, { used: detail.used ?? 0, limit: detail.limit, period: detail.period ?? 'total' }, now));
  }
  return new QuotaExceededError(`The plan's ${detail.metric ?? 'usage'} quota is used up.`, headers);
}
