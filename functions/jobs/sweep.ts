/**
 * The job sweeper (deployed; an EventBridge schedule runs it every few minutes): sends again to the job
 * queue every open job that no runner has moved for a while, so that a lost message never strands a job:
 *  - `pending` for longer than {@link PENDING_GRACE_SECONDS}: its message was never sent (the send after
 *    the commit failed, or the function died in between) or a runner died between two steps;
 *  - `running` with an expired lease (the runner died or timed out inside a step).
 * A `failed` job is not sent again here: the queue's own redelivery retries it, and after its
 * maxReceiveCount the message waits in the dead-letter queue (alarmed) for an operator, who redrives it
 * once the cause is fixed (or calls DELETE again for an offboarding). A job sent twice runs once
 * (functions/jobs/run.ts).
 */
import { controlSql, type Sql } from '../core/db';
import { jobQueue, type JobQueue } from '../core/job-queue';
import { logger } from '../core/observability';
import { withControl } from '../lifecycle/control';

/** A pending job this old has most likely lost its message. */
export const PENDING_GRACE_SECONDS = 120;
/** The runner's lease (runJob's default): a running job older than this is free to take over. */
export const LEASE_SECONDS = 300;
const BATCH = 100;

const SWEEPER = { userId: '00000000-0000-4000-8000-000000000000', role: 'superadmin', requestId: 'job-sweeper' } as const;

export interface SweepOptions {
  readonly pendingGraceSeconds?: number;
  readonly leaseSeconds?: number;
}

/** Sends every stranded open job to `queue`; answers their ids. */
export async function sweepJobs(db: Sql, queue: JobQueue, options: SweepOptions = {}): Promise<string[]> {
  const grace = options.pendingGraceSeconds ?? PENDING_GRACE_SECONDS;
  const lease = options.leaseSeconds ?? LEASE_SECONDS;
  const stranded = await withControl(db, SWEEPER, (tx) => tx<{ id: string }[]>`
    select id from app.jobs
     where (status = 'pending' and updated_at < now() - make_interval(secs => ${grace}))
        or (status = 'running' and updated_at < now() - make_interval(secs => ${lease}))
     order by updated_at
     limit ${BATCH}`);
  for (const { id } of stranded) await queue.enqueue(id);
  return stranded.map((j) => j.id);
}

/** The scheduled handler. */
export async function handler(): Promise<{ sent: number }> {
  const sent = await sweepJobs(controlSql(), jobQueue());
  logger.info('job sweep', { sent: sent.length, job_ids: sent });
  return { sent: sent.length };
}
