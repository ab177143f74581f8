/**
 * Usage metering inside the request's transaction. The counting itself is SQL (migration 0005:
 * `app.meter_request()` and `app.consume()`): a conditional increment that can never overshoot a quota
 * under concurrency. Over a limit, the SQL raises TS429, the transaction rolls back, nothing is recorded,
 * and core/db-errors.ts turns the error into a 429 with `Retry-After` and the headers of
 * core/metering-period.ts (`RateLimit-*` for the per-second window, `X-Quota-*` for plan quotas).
 */
import type { Metric } from './metrics';
import type { Tx } from './db';
import { tenantContentionError } from './db-errors';
import { quotaHeaders, rateLimitHeaders, secondsUntilReset, type MeterReading } from './metering-period';

interface ReadingRow {
  used: string | number;
  quota: string | number | null;
  period: string;
}

/** A lock wait on these statements is on the tenant's own counter row: 429, not 503 (core/db-errors.ts). */
function ownRowContention(error: unknown): never {
  throw tenantContentionError(error) ?? error;
}

function reading(row: ReadingRow | undefined): MeterReading {
  if (!row) throw new Error('metering returned no row');
  return { used: Number(row.used), limit: row.quota === null ? null : Number(row.quota), period: row.period };
}

export { quotaHeaders, rateLimitHeaders, secondsUntilReset, type MeterReading };

/**
 * Counts one request against the rate limit and the monthly api_requests quota. Returned unawaited-safe:
 * it is sent at once so that it travels in the same round trip as the request's work.
 */
export function meterRequest(tx: Tx): Promise<MeterReading> {
  const query = tx<ReadingRow[]>`select used, quota, period from app.meter_request()`.execute();
  return query.then(([row]) => reading(row), ownRowContention);
}

/**
 * Moves `metric` by `quantity` (negative gives quota back). Over the limit the SQL raises TS429, which
 * `withTenant` turns into a QuotaExceededError (core/db-errors.ts) with the whole transaction rolled back.
 */
export async function consume(tx: Tx, metric: Metric, quantity: number): Promise<MeterReading> {
  const [row] = await tx<ReadingRow[]>`select used, quota, period from app.consume(${metric}, ${quantity})`.catch(ownRowContention);
  return reading(row);
}
