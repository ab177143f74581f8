import { route, type PlatformRouteContext } from '../core/handler';
import { ok, type Reply } from '../core/http';
import { routes } from '../routes';
import { updateTenant } from '../tenants/tenant-admin';

/** The body, as the manifest's schema admits it. */
export interface UpdateTenantBody {
  readonly name?: string;
  readonly planId?: string;
  readonly status?: 'active' | 'suspended';
}

/**
 * PATCH /api/tenants/{tenantId} → 200 tenant. The change, with its audit event in the tenant, is one
 * control-plane transaction; members see it at their next request (the request guard reads the tenant).
 */
export async function work({ control, params, body, userId, role, requestId }: PlatformRouteContext<UpdateTenantBody>): Promise<Reply> {
  return ok(await updateTenant(control, { userId, role, requestId }, params.tenantId!, body));
}

export const handler = route<typeof routes.updateTenant, UpdateTenantBody>(routes.updateTenant, work);
