/**
 * Long work as jobs: a row in app.jobs names the next step; the runner runs one step at a time and
 * records each outcome before the next (step, attempts, last_error, result). Every step is idempotent,
 * so a job that stopped (a dependency down, the process gone) resumes where it stopped: the same runner
 * called again (locally in-process; deployed, the queue's redelivery) continues from the recorded step.
 *
 * No lock is held while a step talks to S3, KMS or Cognito: a runner claims a job with a short lease
 * (status `running`, `updated_at`), and another runner may take it over only after the lease expired.
 * A step that must change rows together with its own completion (deleting a tenant's rows, shredding
 * its key) returns a `commit` function that runs in the same transaction as the step's advance.
 */
import type { Sql, Tx } from '../core/db';
import { NotFoundError } from '../core/errors';
import { withControl, type Actor } from './control';

export type JobKind = 'export' | 'offboard';
export type JobStatus = 'pending' | 'running' | 'failed' | 'done';

export interface Job {
  readonly id: string;
  readonly tenantId: string;
  readonly kind: JobKind;
  readonly step: string;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly exportId: string | null;
  readonly requestedBy: string;
  readonly requestId: string;
  readonly result: Record<string, unknown>;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

/** What a step did: the next step (or 'done'), what to merge into the job's result, and row work to commit with it. */
export interface StepOutcome {
  readonly next: string;
  readonly result?: Record<string, unknown>;
  readonly commit?: (tx: Tx) => Promise<Record<string, unknown> | void>;
}

/** One step of a kind of job; `job` is the row as it was when the step started. */
export type Step = (job: Job) => Promise<StepOutcome>;

export type StepTable = Readonly<Record<string, Step>>;

interface JobRow {
  id: string;
  tenant_id: string;
  kind: JobKind;
  step: string;
  status: JobStatus;
  attempts: number;
  last_error: string | null;
  export_id: string | null;
  requested_by: string;
  request_id: string;
  result: Record<string, unknown>;
  created_at: Date;
  finished_at: Date | null;
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: row.kind,
    step: row.step,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    exportId: row.export_id,
    requestedBy: row.requested_by,
    requestId: row.request_id,
    result: row.result,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** The job row (control plane). */
export async function readJob(tx: Tx, jobId: string): Promise<Job> {
  const [row] = await tx<JobRow[]>`select * from app.jobs where id = ${jobId}`;
  if (!row) throw new NotFoundError('Not found.');
  return toJob(row);
}

/** A safe, bounded description of why a step failed (error names and messages; no PII is put in errors). */
function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; cause?: { name?: string; message?: string } };
  const parts = [e?.name, e?.code, e?.message, e?.cause ? `cause: ${e.cause.name ?? ''} ${e.cause.message ?? ''}` : undefined];
  return parts.filter(Boolean).join(': ').slice(0, 2000) || 'unknown error';
}

export interface RunOptions {
  /** A running job whose lease is older than this may be taken over. @default 300 */
  readonly leaseSeconds?: number;
  /** Called when a step fails after its failure was recorded (metrics, logs). */
  readonly onFailure?: (job: Job, error: unknown) => void;
}

/**
 * Runs `jobId` from its recorded step until it is done or a step fails. Answers the job as it stands
 * afterwards: `done`, or `failed` with `lastError` (the caller, or the queue, retries later), or
 * unchanged when another runner holds a live lease on it.
 */
export async function runJob(db: Sql, jobId: string, steps: StepTable, options: RunOptions = {}): Promise<Job> {
  const lease = options.leaseSeconds ?? 300;
  const system = (job: Job): Actor => ({ userId: job.requestedBy, role: 'superadmin', requestId: job.requestId });
  const bootstrap: Actor = { userId: '00000000-0000-4000-8000-000000000000', role: 'superadmin', requestId: `job:${jobId}` };

  for (;;) {
    const claimed = await withControl(db, bootstrap, async (tx) => {
      const [row] = await tx<JobRow[]>`
        update app.jobs set status = 'running', attempts = attempts + 1, updated_at = now()
         where id = ${jobId}
           and (status in ('pending', 'failed') or (status = 'running' and updated_at < now() - make_interval(secs => ${lease})))
        returning *`;
      return row ? toJob(row) : undefined;
    });
    if (!claimed) return withControl(db, bootstrap, (tx) => readJob(tx, jobId));
    const step = steps[claimed.step];
    if (!step) throw new Error(`job ${jobId} (${claimed.kind}) is at an unknown step ${claimed.step}`);

    let outcome: StepOutcome;
    try {
      outcome = await step(claimed);
      const after = await withControl(db, system(claimed), async (tx) => {
        const extra = (await outcome.commit?.(tx)) ?? {};
        const [row] = await tx<JobRow[]>`
          update app.jobs
             set step = ${outcome.next},
                 status = ${outcome.next === 'done' ? 'done' : 'pending'},
                 attempts = 0,
                 last_error = null,
                 result = result || ${tx.json({ ...(outcome.result ?? {}), ...extra } as never)},
                 updated_at = now(),
                 finished_at = ${outcome.next === 'done' ? tx`now()` : null}
           where id = ${jobId} and status = 'running' and step = ${claimed.step}
          returning *`;
        if (!row) throw new Error(`job ${jobId} was taken over while at step ${claimed.step}`);
        return toJob(row);
      });
      if (after.status === 'done') return after;
    } catch (error) {
      const failed = await withControl(db, system(claimed), async (tx) => {
        const [row] = await tx<JobRow[]>`
          update app.jobs set status = 'failed', last_error = ${describe(error)}, updated_at = now()
           where id = ${jobId} and status = 'running' and step = ${claimed.step}
          returning *`;
        return row ? toJob(row) : readJob(tx, jobId);
      });
      options.onFailure?.(failed, error);
      return failed;
    }
  }
}

/** Merges `values` into a job's result at once (progress of a long step, e.g. object counts per page). */
export async function addToResult(db: Sql, job: Job, key: string, values: Record<string, number>): Promise<void> {
  await withControl(db, { userId: job.requestedBy, role: 'superadmin', requestId: job.requestId }, async (tx) => {
    const [row] = await tx<{ result: Record<string, unknown> }[]>`select result from app.jobs where id = ${job.id} for update`;
    const current = (row?.result[key] ?? {}) as Record<string, number>;
    const merged = Object.fromEntries(
      [...new Set([...Object.keys(current), ...Object.keys(values)])].map((k) => [k, (current[k] ?? 0) + (values[k] ?? 0)]),
    );
    await tx`update app.jobs set result = result || ${tx.json({ [key]: merged } as never)}, updated_at = now() where id = ${job.id}`;
  });
}
