import { route, type RouteContext } from '../core/handler';
import { ok, type Reply } from '../core/http';
import { tenantObjects as containerObjects, type TenantObjectsProvider } from '../core/tenant-objects';
import { storage as containerStorage } from '../core/storage';
import { routes } from '../routes';
import { getExport } from '../tenants/export';

/**
 * An export's status and, once ready, a presigned download signed with the tenant's own scoped
 * credentials (the manifest's `usesStorage` gives this function the tenant-access role). Another
 * tenant's export id → 404 (the row is not visible).
 */
export function work(objects: () => TenantObjectsProvider) {
  return async (ctx: RouteContext): Promise<Reply> =>
    ok(await getExport(ctx, objects().forTenant(ctx.tenantId, ctx.userId), ctx.params.exportId!));
}

// The wrapper's document storage is not used here; it is what `usesStorage` routes are given.
export const handler = route(routes.getExport, work(containerObjects), { storage: containerStorage });
