import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { keyset, parsePage, type PositionColumns } from '../core/pagination';

interface AuditRow extends PositionColumns {
  id: string;
  occurred_at: Date;
  actor_user_id: string;
  actor_role: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  request_id: string;
  outcome: string;
  seq: string | null;
  prev_hash: string | null;
  hash: string | null;
}

/**
 * The tenant's audit trail, newest first, with each event's link in the hash chain (null until the
 * sealer has chained it; migration 0008). Row-level security limits it to the caller's tenant.
 */
export async function work({ tx, query, tenantId }: RouteContext): Promise<Reply> {
  const page = keyset(tx, parsePage(query), { at: 'e.occurred_at', id: 'e.id', idType: 'uuid', order: 'newest first' });
  const rows = await tx<AuditRow[]>`
    select e.id, e.occurred_at, e.actor_user_id, e.actor_role, e.action, e.resource_type, e.resource_id, e.request_id,
           e.outcome, c.seq, encode(c.prev_hash, 'hex') as prev_hash, encode(c.hash, 'hex') as hash,
           ${page.position}
      from app.audit_events e
      left join app.audit_chain c on c.tenant_id = e.tenant_id and c.event_id = e.id
     where e.tenant_id = ${tenantId} and ${page.after}
     order by ${page.orderBy}
     limit ${page.fetch}`;
  return ok(
    page.page(
      rows,
      (r) => ({
        id: r.id,
        occurredAt: r.occurred_at.toISOString(),
        actorUserId: r.actor_user_id,
        actorRole: r.actor_role,
        action: r.action,
        resourceType: r.resource_type,
        resourceId: r.resource_id,
        requestId: r.request_id,
        outcome: r.outcome,
        seq: r.seq === null ? null : Number(r.seq),
        prevHash: r.prev_hash,
        hash: r.hash,
      }),
    ),
  );
}

export const handler = route(routes.listAuditEvents, work);
