import { route, type PlatformRouteContext } from '../core/handler';
import { accepted, type Reply } from '../core/http';
import { routes } from '../routes';
import { startOffboarding } from '../tenants/offboarding';

/**
 * DELETE /api/tenants/{tenantId} → 202 tenant (`offboarding`; `deleted` once finished). Creates the
 * tenant's offboarding job, or finds it again so that a stopped one resumes: the job runner
 * (bin/stack/job-runner.ts locally) runs its steps.
 */
export async function work({ control, params, userId, role, requestId }: PlatformRouteContext): Promise<Reply> {
  const { tenant } = await startOffboarding(control, { userId, role, requestId }, params.tenantId!);
  return accepted(tenant);
}

export const handler = route(routes.deleteTenant, work);
