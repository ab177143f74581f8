/**
 * The local stack's job runner: what the queue does in a deployment, in this process. Every `everyMs`
 * it picks up jobs that are pending (or failed and due for a retry) and runs each through the handler
 * for its kind (functions/lifecycle/jobs.ts underneath: claimed with a lease, one recorded step at a
 * time), so several stacks on one database never run one job twice at once. Generic: any job kind runs
 * once a handler for it is registered.
 */
import postgres from 'postgres';
import type { Sql } from '../../functions/core/db';
import { withControl } from '../../functions/lifecycle/control';
import type { Job, JobKind } from '../../functions/lifecycle/jobs';

/** Runs (or resumes) one job of a kind to its end or its next failure. */
export type JobHandler = (db: Sql, jobId: string) => Promise<Job>;

export interface JobRunnerOptions {
  /** A login of the control-plane role (app_control). */
  readonly controlUrl: string;
  readonly handlers: Partial<Record<JobKind, JobHandler>>;
  /** @default 500 */
  readonly everyMs?: number;
  /** A failed job is tried again this long after its failure, until it has failed `maxAttempts` times. @default 2000 */
  readonly retryAfterMs?: number;
  /** @default 3 */
  readonly maxAttempts?: number;
  readonly onError?: (error: unknown) => void;
}

export interface JobRunner {
  /** Stops polling, waits for the job in flight, and closes the connection. */
  stop(): Promise<void>;
}

const RUNNER: { userId: string; role: 'superadmin'; requestId: string } = {
  userId: '00000000-0000-4000-8000-000000000000',
  role: 'superadmin',
  requestId: 'local-job-runner',
};

export function startJobRunner(options: JobRunnerOptions): JobRunner {
  const db = postgres(options.controlUrl, { max: 2, onnotice: () => undefined }) as unknown as Sql;
  const kinds = Object.keys(options.handlers) as JobKind[];
  const retryAfter = `${(options.retryAfterMs ?? 2000) / 1000} seconds`;
  const maxAttempts = options.maxAttempts ?? 3;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const due = () =>
    withControl(db, RUNNER, (tx) => tx<{ id: string; kind: JobKind }[]>`
      select id, kind from app.jobs
       where kind in ${tx(kinds)}
         and (status = 'pending'
              or (status = 'failed' and attempts < ${maxAttempts} and updated_at < now() - ${retryAfter}::interval))
       order by created_at
       limit 20`);

  const run = async () => {
    try {
      for (const job of kinds.length > 0 ? await due() : []) {
        if (stopped) break;
        await options.handlers[job.kind]!(db, job.id).catch((error: unknown) => options.onError?.(error));
      }
    } catch (error) {
      if (!stopped) options.onError?.(error);
    }
    if (!stopped) timer = setTimeout(() => (running = run()), options.everyMs ?? 500);
  };
  running = run();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
      await db.end({ timeout: 2 });
    },
  };
}
