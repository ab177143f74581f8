import type { Tx } from '../core/db';
import { route, type PlatformRouteContext } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { keyset, parsePage, type PositionColumns } from '../core/pagination';
import { isTenantId } from '../core/tenant';
import { assertOperator, withControl } from '../lifecycle/control';

interface TenantRow extends PositionColumns {
  id: string;
  name: string;
  plan_id: string;
  status: string;
  created_at: Date;
}

/**
 * Platform operators list every tenant, in one control-plane transaction (app_control) that first checks
 * the caller is an active platform operator.
 */
export function work({ control, query, userId, role, requestId }: PlatformRouteContext): Promise<Reply> {
  return withControl(control, { userId, role, requestId }, async (tx) => {
    await assertOperator(tx, { userId, role, requestId });
    return listPage(tx, query);
  });
}

async function listPage(tx: Tx, query: PlatformRouteContext['query']): Promise<Reply> {
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
