import { route, type RouteContext } from '../core/handler';
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
}

/** The tenant's audit trail, newest first. Row-level security limits it to the caller's tenant. */
export async function work({ tx, query, tenantId }: RouteContext): Promise<Reply> {
  const page = keyset(tx, parsePage(query), { at: 'occurred_at', id: 'id', idType: 'uuid', order: 'newest first' });
  const rows = await tx<AuditRow[]>`
    select id, occurred_at, actor_user_id, actor_role, action, resource_type, resource_id, request_id, outcome,
           ${page.position}
      from app.audit_events
     where tenant_id = ${tenantId} and ${page.after}
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
      }),
    ),
  );
}

export const handler = route('listAuditEvents', work);
