/**
 * The audit hash chain, checked from outside the database (migration 0008 writes it). The hash is
 * recomputed here with Node's SHA-256 from the fields as text, so a replaced SQL function cannot vouch
 * for itself. Encoding `audit-chain-v1`: for each field in order, the 4-byte big-endian length of its
 * UTF-8 bytes then the bytes (NULL: length 0xFFFFFFFF, no bytes); fields: 'audit-chain-v1', tenant_id,
 * seq (decimal), id, occurred_at (UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`), actor_user_id, actor_role, action,
 * resource_type, resource_id, request_id, outcome, detail (Postgres' jsonb text), prev_hash (hex).
 */
import { createHash } from 'node:crypto';
import type postgres from 'postgres';

/** The fields of one sealed event, as the hash covers them (all text). */
export interface ChainedEvent {
  readonly tenantId: string;
  readonly seq: string;
  readonly id: string;
  readonly occurredAt: string;
  readonly actorUserId: string;
  readonly actorRole: string;
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string | null;
  readonly requestId: string;
  readonly outcome: string;
  readonly detail: string;
}

const NULL_FIELD = Buffer.from([0xff, 0xff, 0xff, 0xff]);

function field(value: string | null): Buffer {
  if (value === null) return NULL_FIELD;
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** SHA-256 (hex) of one chain link, as app.audit_chain_hash computes it. */
export function chainHash(event: ChainedEvent, prevHash: string | null): string {
  const fields = [
    'audit-chain-v1', event.tenantId, event.seq, event.id, event.occurredAt, event.actorUserId, event.actorRole,
    event.action, event.resourceType, event.resourceId, event.requestId, event.outcome, event.detail, prevHash,
  ];
  const hash = createHash('sha256');
  for (const value of fields) hash.update(field(value));
  return hash.digest('hex');
}

/** The outcome for one tenant. `failure` names the first link that does not verify. */
export interface TenantVerification {
  readonly tenantId: string;
  /** Links verified before the first failure (all of them when there is none). */
  readonly verified: number;
  /** Hash of the last verified link, hex; null for an empty chain. */
  readonly head: string | null;
  /** Events written but not sealed yet (the sealer's window). */
  readonly unsealed: number;
  readonly failure?: { readonly seq: string; readonly eventId: string; readonly reason: string };
}

interface LinkRow {
  seq: string;
  event_id: string;
  prev_hash: string | null;
  hash: string;
  present: boolean;
  tenant_id: string | null;
  id: string | null;
  occurred_at: string | null;
  actor_user_id: string | null;
  actor_role: string | null;
  action: string | null;
  resource_type: string | null;
  resource_id: string | null;
  request_id: string | null;
  outcome: string | null;
  detail: string | null;
}

type Reader = postgres.TransactionSql<{}>;

async function verifyTenant(tx: Reader, tenantId: string, sealedBelow: string): Promise<TenantVerification> {
  let verified = 0;
  let head: string | null = null;
  let failure: TenantVerification['failure'];
  const links = tx<LinkRow[]>`
    select c.seq::text as seq, c.event_id::text as event_id, encode(c.prev_hash, 'hex') as prev_hash,
           encode(c.hash, 'hex') as hash, e.id is not null as present, e.tenant_id, e.id::text as id,
           to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at,
           e.actor_user_id::text as actor_user_id, e.actor_role, e.action, e.resource_type, e.resource_id,
           e.request_id, e.outcome, e.detail::text as detail
      from app.audit_chain c
      left join app.audit_events e on e.tenant_id = c.tenant_id and e.id = c.event_id
     where c.tenant_id = ${tenantId}
     order by c.seq`.cursor(500);
  scan: for await (const rows of links) {
    for (const row of rows) {
      const expected = String(verified + 1);
      const bad = (reason: string) => ({ seq: row.seq, eventId: row.event_id, reason });
      if (row.seq !== expected) failure = bad(`expected seq ${expected}: a link was deleted`);
      else if (row.prev_hash !== head) failure = bad('does not link to the event before it: the trail was reordered or cut');
      else if (!row.present) failure = bad('the event was deleted');
      else {
        const event: ChainedEvent = {
          tenantId: row.tenant_id!, seq: row.seq, id: row.id!, occurredAt: row.occurred_at!, actorUserId: row.actor_user_id!,
          actorRole: row.actor_role!, action: row.action!, resourceType: row.resource_type!, resourceId: row.resource_id,
          requestId: row.request_id!, outcome: row.outcome!, detail: row.detail!,
        };
        const hash = chainHash(event, head);
        if (hash !== row.hash) failure = bad('the event was changed after it was sealed');
        else {
          verified += 1;
          head = hash;
        }
      }
      if (failure) break scan;
    }
  }
  // Events without a link. Those the sealer has already passed (below its watermark, or written
  // without a transaction id) were kept out of the chain: that is a failure, not the window.
  const [tail] = await tx<{ unsealed: number; skipped: string | null }[]>`
    select count(*)::int as unsealed,
           (array_agg(e.id::text order by e.occurred_at, e.id)
              filter (where ${sealedBelow}::xid8 > '0'::xid8 and (e.xact is null or e.xact < ${sealedBelow}::xid8)))[1] as skipped
      from app.audit_events e
     where e.tenant_id = ${tenantId}
       and not exists (select 1 from app.audit_chain c where c.tenant_id = e.tenant_id and c.event_id = e.id)`;
  if (!failure && tail?.skipped) failure = { seq: '-', eventId: tail.skipped, reason: 'the event was never sealed into the chain' };
  return { tenantId, verified, head, unsealed: tail?.unsealed ?? 0, ...(failure ? { failure } : {}) };
}

/** Thrown for a `tenantId` that has neither a tenant row nor audit events. */
export class UnknownTenantError extends Error {
  constructor(readonly tenantId: string) {
    super(`Unknown tenant "${tenantId}".`);
    this.name = 'UnknownTenantError';
  }
}

/**
 * Verifies every tenant's chain (or one), in one read-only snapshot so that a concurrent sealer run is
 * seen whole or not at all. Needs a role that reads every tenant's events and links (the owner or
 * master user, or app_control). Seals nothing.
 */
export async function verifyAuditChains(sql: postgres.Sql<{}>, options: { tenantId?: string } = {}): Promise<TenantVerification[]> {
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    const [mark] = await tx<{ sealed_below: string }[]>`select sealed_below::text from app.audit_seal_watermark`;
    const tenants = (
      await tx<{ id: string }[]>`
        select id from app.tenants where ${options.tenantId ?? null}::text is null or id = ${options.tenantId ?? null}
        union
        select distinct tenant_id from app.audit_chain where tenant_id = ${options.tenantId ?? null}
        order by 1`
    ).map((t) => t.id);
    if (options.tenantId !== undefined && !tenants.includes(options.tenantId)) throw new UnknownTenantError(options.tenantId);
    const results: TenantVerification[] = [];
    for (const tenantId of tenants) results.push(await verifyTenant(tx, tenantId, mark?.sealed_below ?? '0'));
    return results;
  });
}

/** The line `npm run audit:verify` prints for a tenant. */
export function verificationLine(v: TenantVerification): string {
  const counts = `${v.verified} events verified, head ${v.head ?? '-'}, ${v.unsealed} unsealed`;
  if (!v.failure) return `ok    ${v.tenantId}: ${counts}`;
  return `FAIL  ${v.tenantId}: event ${v.failure.eventId} (seq ${v.failure.seq}) ${v.failure.reason}; ${counts}`;
}
