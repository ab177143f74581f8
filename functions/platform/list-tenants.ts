import { route, type PlatformRouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { pageOf, parsePage } from '../core/pagination';
import { isTenantId } from '../core/tenant';

interface TenantRow {
  id: string;
  name: string;
  plan_id: string;
  status: string;
  created_at: Date;
  cursor_at: string;
}

/**
 * Platform operators list every tenant. Runs with no tenant set: only the `platform_operator_read`
 * policy on app.tenants (app.role = 'superadmin') lets these rows through; tenant tables stay empty.
 */
export async function work({ tx, query }: PlatformRouteContext): Promise<Reply> {
  const page = parsePage(query, isTenantId);
  const rows = await tx<TenantRow[]>`
    select id, name, plan_id, status, created_at,
           to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
      from app.tenants
     where ${page.after ? tx`(created_at, id) > (${page.after.at}::timestamptz, ${page.after.id})` : tx`true`}
     order by created_at, id
     limit ${page.limit + 1}`;
  return ok(
    pageOf(
      rows,
      page.limit,
      (r) => ({ at: r.cursor_at, id: r.id }),
      (r) => ({ id: r.id, name: r.name, planId: r.plan_id, status: r.status, createdAt: r.created_at.toISOString() }),
    ),
  );
}

export const handler = route(routes.listTenants, work);
