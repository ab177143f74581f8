import { route, type PlatformRouteContext } from '../core/handler';
import { accepted, type Reply } from '../core/http';
import { jobQueue } from '../core/job-queue';
import { logger } from '../core/observability';
import { routes } from '../routes';
import { startOffboarding } from '../tenants/offboarding';

/**
 * DELETE /api/tenants/{tenantId} → 202 tenant (`offboarding`; `deleted` once finished). Creates the
 * tenant's offboarding job, or finds it again so that a stopped one resumes, and (deployed) sends its id
 * to the job queue once that transaction committed; locally bin/stack/job-runner.ts runs its steps. A
 * send that fails is logged: the job row stands, and the job sweeper sends it again.
 */
export async function work({ control, params, userId, role, requestId }: PlatformRouteContext): Promise<Reply> {
  const { tenant, jobId } = await startOffboarding(control, { userId, role, requestId }, params.tenantId!);
  if (tenant.status !== 'deleted') {
    await jobQueue()
      .enqueue(jobId)
      .catch((error: unknown) => logger.warn('the offboarding job could not be queued; the sweeper will', { error: error as Error }));
  }
  return accepted(tenant);
}

export const handler = route(routes.deleteTenant, work);
