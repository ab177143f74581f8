import { route, type PlatformRouteContext } from '../core/handler';
import { ok, type Reply } from '../core/http';
import { routes } from '../routes';
import { readTenant } from '../tenants/tenant-admin';

/** GET /api/tenants/{tenantId} → 200 tenant; a deleted one with its deletion report; none → 404. */
export async function work({ control, params, userId, role, requestId }: PlatformRouteContext): Promise<Reply> {
  return ok(await readTenant(control, { userId, role, requestId }, params.tenantId!));
}

export const handler = route(routes.getTenant, work);
