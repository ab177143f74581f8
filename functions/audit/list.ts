import { route, type RouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { pageOf, parsePage } from '../core/pagination';

interface AuditRow {
  id: string;
  occurred_at: Date;
  actor_user_id: string;
  actor_role: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  request_id: string;
  outcome: string;
  cursor_at: string;
}

/** The tenant's audit trail, newest first. Row-level security limits it to the caller's tenant. */
export async function work({ tx, query, tenantId }: RouteContext): Promise<Reply> {
  const page = parsePage(query);
  const rows = await tx<AuditRow[]>`
    select id, occurred_at, actor_user_id, actor_role, action, resource_type, resource_id, request_id, outcome,
           to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
      from app.audit_events
     where tenant_id = ${tenantId}
       and ${page.after ? tx`(occurred_at, id) < (${page.after.at}::timestamptz, ${page.after.id}::uuid)` : tx`true`}
     order by occurred_at desc, id desc
     limit ${page.limit + 1}`;
  return ok(
    pageOf(
      rows,
      page.limit,
      (r) => ({ at: r.cursor_at, id: r.id }),
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

export const handler = route(routes.listAuditEvents, work);
