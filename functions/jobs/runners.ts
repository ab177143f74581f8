/**
 * Which steps run a job of each kind, over the container's providers: the control-plane client
 * (app_control), the KMS-wrapped tenant keys, the user directory and each tenant's scoped objects. The
 * deployed queue runner (functions/jobs/run.ts) and the local stack's in-process runner
 * (bin/stack/job-runner.ts) run jobs through the same table.
 */
import { directory } from '../core/cognito';
import type { Sql } from '../core/db';
import { pii } from '../core/pii';
import { tenantObjects } from '../core/tenant-objects';
import type { Job, JobKind, RunOptions } from '../lifecycle/jobs';
import { runExport } from '../tenants/export';
import { runOffboarding } from '../tenants/offboarding';

/** Runs (or resumes) one job of a kind; answers the job as it stands afterwards. */
export type JobRunners = Readonly<Record<JobKind, (jobId: string) => Promise<Job>>>;

/** The runners over the container's providers; `db` is a client of the control-plane role. */
export function containerJobRunners(db: Sql, options: RunOptions = {}): JobRunners {
  const objects = (tenantId: string, userId: string) => tenantObjects().forTenant(tenantId, userId);
  return {
    offboard: (jobId) => runOffboarding({ db, pii: pii(), directory: directory(), objects }, jobId, options),
    export: (jobId) => runExport({ db, pii: pii(), objects }, jobId, options),
  };
}
