/**
 * The deployed job runner: a Lambda function triggered by the job queue (SQS, partial batch responses).
 * Each message names one job by id (functions/core/job-queue.ts); the job row says what to do. For each
 * message the runner runs the job from its recorded step as the control-plane role, and reports the
 * message as failed only when the job stopped at a failed step: SQS delivers it again after the
 * visibility timeout (the back-off), and after the queue's maxReceiveCount it moves to the dead-letter
 * queue, whose depth is alarmed. The failure itself stays recorded on the job (step, attempts, error).
 *
 * Delivered twice, a message does nothing the second time: a finished job is not claimed again, and a
 * job whose lease another runner holds is left to it (if that runner dies, the job sweeper re-sends the
 * job once the lease has expired). A message that names no job is dropped with a log line: there is
 * nothing to retry.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { controlSql, type Sql } from '../core/db';
import { parseJobMessage } from '../core/job-queue';
import { logger, metrics, MetricUnit } from '../core/observability';
import type { Job } from '../lifecycle/jobs';
import { withControl } from '../lifecycle/control';
import { containerJobRunners, type JobRunners } from './runners';

/** The EMF metric counted for every job that stopped at a failed step (alarmed in lib/constructs/jobs.ts). */
export const JOB_FAILURE_METRIC = 'JobStepFailures';

/** Who reads a job row before it runs: no person; the runner's own request id. */
const RUNNER = { userId: '00000000-0000-4000-8000-000000000000', role: 'superadmin', requestId: 'job-runner' } as const;

export interface JobHandlerDependencies {
  /** A client of the control-plane role. */
  readonly db: () => Sql;
  readonly runners: (db: Sql) => JobRunners;
}

type Outcome = 'done' | 'failed' | 'held' | 'dropped';

async function runOne(deps: JobHandlerDependencies, body: string): Promise<{ outcome: Outcome; job?: Job }> {
  const message = parseJobMessage(body);
  if (!message) return { outcome: 'dropped' };
  const db = deps.db();
  const kind = await withControl(db, RUNNER, async (tx) => {
    const rows = await tx<{ kind: Job['kind'] }[]>`select kind from app.jobs where id = ${message.jobId}`;
    return rows[0]?.kind;
  });
  if (!kind) return { outcome: 'dropped' };
  const job = await deps.runners(db)[kind](message.jobId);
  if (job.status === 'failed') return { outcome: 'failed', job };
  if (job.status === 'done') return { outcome: 'done', job };
  return { outcome: 'held', job };
}

/** The SQS handler over `deps`: runs each message's job, one after the other; answers the failed messages. */
export function createJobHandler(deps: JobHandlerDependencies): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return async (event) => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    const fail = (messageId: string) => {
      batchItemFailures.push({ itemIdentifier: messageId });
      metrics.addMetric(JOB_FAILURE_METRIC, MetricUnit.Count, 1);
    };
    for (const record of event.Records) {
      logger.appendKeys({ message_id: record.messageId });
      try {
        const { outcome, job } = await runOne(deps, record.body);
        if (job) logger.appendKeys({ job_id: job.id, job_kind: job.kind, tenant_id: job.tenantId });
        if (outcome === 'failed') {
          fail(record.messageId);
          logger.warn('job stopped at a failed step; the queue retries it', { step: job?.step, attempts: job?.attempts, last_error: job?.lastError });
        } else if (outcome === 'dropped') {
          logger.error('message names no job; dropped', { receive_count: record.attributes?.ApproximateReceiveCount });
        } else {
          logger.info(outcome === 'done' ? 'job done' : 'job held by another runner', { step: job?.step, status: job?.status });
        }
      } catch (error) {
        // The runner's own trouble (the database unreachable, an unknown step): the message comes back.
        fail(record.messageId);
        logger.error('job run failed', { error: error as Error });
      } finally {
        logger.removeKeys(['message_id', 'job_id', 'job_kind', 'tenant_id']);
      }
    }
    if (batchItemFailures.length > 0) metrics.publishStoredMetrics();
    return { batchItemFailures };
  };
}

export const handler = createJobHandler({ db: controlSql, runners: (db) => containerJobRunners(db) });
