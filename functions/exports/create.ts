import { route, type RouteContext } from '../core/handler';
import { accepted, type Reply } from '../core/http';
import { jobQueue } from '../core/job-queue';
import { logger } from '../core/observability';
import { routes } from '../routes';
import { requestExport } from '../tenants/export';
import { idempotency } from '../core/idempotency';

/**
 * Records the export and its job in the request's transaction → 202. The job runs after the commit:
 * deployed, its id is sent to the job queue once the transaction committed (a lost message is sent
 * again by the job sweeper); locally the stack's in-process runner picks pending jobs up.
 */
export async function work(ctx: RouteContext): Promise<Reply> {
  const requested = await requestExport(ctx);
  ctx.afterCommit(() =>
    jobQueue()
      .enqueue(requested.jobId)
      .catch((error: unknown) => logger.warn('the export job could not be queued; the sweeper will', { error: error as Error })),
  );
  return accepted({ export: requested.export });
}

export const handler = route(routes.createExport, work, { idempotency });
