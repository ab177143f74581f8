import { route, type RouteContext } from '../core/handler';
import { accepted, type Reply } from '../core/http';
import { routes } from '../routes';
import { requestExport } from '../tenants/export';

/**
 * Records the export and its job in the request's transaction → 202. The job runs after the commit:
 * locally the stack's in-process job runner picks pending jobs up; deployed, see docs/ARCHITECTURE.md.
 */
export async function work(ctx: RouteContext): Promise<Reply> {
  const requested = await requestExport(ctx);
  return accepted({ export: requested.export });
}

export const handler = route(routes.createExport, work);
