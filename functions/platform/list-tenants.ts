import { route, type PlatformRouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { keyset, parsePage, type PositionColumns } from '../core/pagination';
import { isTenantId } from '../core/tenant';

interface TenantRow extends PositionColumns {
  id: string;
  name: string;
  plan_id: string;
  status: string;
  created_at: Date;
}

/**
 * Platform operators list every tenant. Runs with no tenant set: only the `platform_operator_read`
 * policy on app.tenants (app.role = 'superadmin') lets these rows through; tenant tables stay empty.
 */
export async function work({ tx, query }: PlatformRouteContext): Promise<Reply> {
  const page = keyset(tx, parsePage(query, isTenantId), { at: 'created_at', id: 'id', idType: 'text', order: 'oldest first' });
  const rows = await tx<TenantRow[]>`
    select id, name, plan_id, status, created_at, ${page.position}
      from app.tenants
     where ${page.after}
     order by ${page.orderBy}
     limit ${page.fetch}`;
  return ok(
    page.page(
      rows,
      (r) => ({ id: r.id, name: r.name, planId: r.plan_id, status: r.status, createdAt: r.created_at.toISOString() }),
    ),
  );
}

export const handler = route(routes.listTenants, work);
