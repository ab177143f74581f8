import { createHash } from 'node:crypto';
import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { ConflictError } from '../core/errors';
import { accepted, type Reply } from '../core/http';
import { consume } from '../core/metering';
import type { Metric } from '../core/metrics';
import { idempotency } from '../core/idempotency';

/** The body, as validated against `routes.recordUsageEvent.body` by the wrapper before this runs. */
export interface UsageEventBody {
  /** Client-reported metrics only (the manifest's enum): the API meters requests, documents and storage itself. */
  readonly metric: Extract<Metric, 'ai_tokens'>;
  readonly quantity: number;
  readonly idempotencyKey: string;
}

/**
 * Records metered usage once per idempotency key (unique per tenant). The same key with the same
 * payload answers 202 again and counts nothing; with another payload, 409. Over quota: 429, nothing kept.
 */
export async function work({ tx, body, tenantId, userId, audit }: RouteContext<UsageEventBody>): Promise<Reply> {
  const { metric, quantity, idempotencyKey } = body;
  const payload = createHash('sha256').update(JSON.stringify([metric, quantity])).digest();

  // A concurrent request with the same key waits on the unique index, then finds the committed row.
  const [inserted] = await tx<{ id: string }[]>`
    insert into app.usage_events (tenant_id, metric, quantity, period, idempotency_key, payload_sha256, created_by)
    values (${tenantId}, ${metric}, ${quantity}, app.metric_period(${metric}, now()), ${idempotencyKey}, ${payload}, ${userId})
    on conflict (tenant_id, idempotency_key) do nothing
    returning id`;
  if (inserted) {
    audit({ id: inserted.id, detail: { metric, quantity } });
    const reading = await consume(tx, metric, quantity);
    return accepted({ id: inserted.id, metric, quantity, duplicate: false, used: reading.used, limit: reading.limit });
  }
  const [existing] = await tx<{ id: string; payload_sha256: Buffer }[]>`
    select id, payload_sha256 from app.usage_events where tenant_id = ${tenantId} and idempotency_key = ${idempotencyKey}`;
  if (!existing || !existing.payload_sha256.equals(payload)) {
    throw new ConflictError('This idempotencyKey was already used with another payload.');
  }
  audit({ id: existing.id, detail: { duplicate: true } });
  return accepted({ id: existing.id, metric, quantity, duplicate: true });
}

export const handler = route(routes.recordUsageEvent, work, { idempotency });
