/**
 * The local stack's job runner: what the queue-triggered function does in a deployment, in this process.
 * Every `everyMs` it picks the jobs that can run (pending; failed, after a back-off that grows with the
 * attempts; running with an expired lease) and runs each through functions/lifecycle/jobs.ts by its kind,
 * as the control-plane role (app_control). A failed step stays recorded on its job (step, attempts,
 * last error) and is retried by a later run, so a stopped offboarding or export resumes by itself.
 * It also deletes expired Idempotency-Key answers (functions/core/idempotency.ts), once a minute.
 */
import type { Sql } from '../../functions/core/db';
import type { Job, JobKind } from '../../functions/lifecycle/jobs';
import { sweepExpiredKeys } from '../../functions/jobs/sweep';

/** Runs (or resumes) one job of a kind. */
export type JobRunners = Readonly<Record<JobKind, (jobId: string) => Promise<Job>>>;

export interface JobRunner {
  /** Runs the runnable jobs now (also what the timer does); resolves when this pass is over. */
  runNow(): Promise<void>;
  /** Stops the timer and waits for a pass in flight. */
  stop(): Promise<void>;
}

export interface JobRunnerOptions {
  /** A client of the control-plane role. */
  readonly db: Sql;
  readonly runners: JobRunners;
  /** @default 500 */
  readonly everyMs?: number;
  /** A failed job waits this many seconds per attempt before it is retried. @default 2 */
  readonly backoffSeconds?: number;
  /** Must match the lease of runJob. @default 300 */
  readonly leaseSeconds?: number;
  readonly onError?: (error: unknown) => void;
}

/** Starts the runner. */
export function startJobRunner(options: JobRunnerOptions): JobRunner {
  const { db, runners } = options;
  const backoff = options.backoffSeconds ?? 2;
  const lease = options.leaseSeconds ?? 300;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  let swept = 0;
  const pass = async () => {
    // Expired Idempotency-Key answers go once a minute (a lookup ignores them before that anyway).
    if (Date.now() - swept > 60_000) {
      swept = Date.now();
      await sweepExpiredKeys(db);
    }
    const due = await db<{ id: string; kind: JobKind }[]>`
      select id, kind from app.jobs
       where status = 'pending'
          or (status = 'failed' and updated_at < now() - make_interval(secs => ${backoff} * attempts))
          or (status = 'running' and updated_at < now() - make_interval(secs => ${lease}))
       order by updated_at
       limit 20`;
    for (const job of due) {
      if (stopped) return;
      const run = runners[job.kind];
      // A job's failure is recorded on its row by runJob; only the runner's own trouble is reported.
      if (run) await run(job.id).catch((error: unknown) => options.onError?.(error));
    }
  };
  const loop = async () => {
    try {
      await pass();
    } catch (error) {
      if (!stopped) options.onError?.(error);
    }
    if (!stopped) timer = setTimeout(() => (running = loop()), options.everyMs ?? 500);
  };
  running = loop();
  return {
    runNow: async () => {
      await running;
      await pass();
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
