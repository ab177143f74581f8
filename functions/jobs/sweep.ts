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
 *
 * The same run deletes expired Idempotency-Key answers ({@link sweepExpiredKeys}), which the local job
 * runner does too: a lookup ignores them already, so this only keeps the table small.
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

/** Expired answers deleted per statement, and statements per sweep at most (the rest waits for the next). */
const KEY_BATCH = 1_000;
const KEY_BATCHES = 20;

/**
 * Deletes expired Idempotency-Key answers, in batches of {@link KEY_BATCH} (each its own short
 * transaction), at most {@link KEY_BATCHES} of them; answers how many went. As app_control, which may
 * delete an expired answer without an audit event and no live one (migration 0010).
 */
export async function sweepExpiredKeys(db: Sql, batches = KEY_BATCHES): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < batches; i++) {
    const { count } = await db`
      delete from app.idempotency_keys
       where (tenant_id, id) in (select tenant_id, id from app.idempotency_keys where expires_at <= now() limit ${KEY_BATCH})`;
    deleted += count;
    if (count < KEY_BATCH) break;
  }
  return deleted;
}

/** The scheduled handler. */
export async function handler(): Promise<{ sent: number; expiredKeys: number }> {
  const db = controlSql();
  const sent = await sweepJobs(db, jobQueue());
  const expiredKeys = await sweepExpiredKeys(db);
  logger.info('job sweep', { sent: sent.length, job_ids: sent, expired_keys_deleted: expiredKeys });
  return { sent: sent.length, expiredKeys };
}
