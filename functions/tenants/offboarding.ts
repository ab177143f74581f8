/**
 * Offboarding a tenant (DELETE /api/tenants/{tenantId}): a job of idempotent steps, each recorded in its
 * job row before the next starts, so a stopped offboarding resumes where it stopped (DELETE again, or
 * the runner's retry):
 *
 *   suspend  the tenant is `offboarding` (set when the job is created): its members are refused at once
 *   objects  every object version and delete marker under tenants/{id}/, with the tenant's own scoped
 *            credentials (ListObjectVersions + DeleteObjects, a page at a time, counted as it goes)
 *   rows     every row of every tenant-owned table, found from the catalog, children first, in one
 *            transaction with the step's completion; the member ids are kept for the users step
 *   key      the wrapped data key is deleted: crypto-shredding, no copy of the member rows decrypts
 *   users    the tenant's Cognito users are deleted (by user id; a missing user counts as deleted)
 *   finish   status `deleted` with the deletion report (counts per table, objects, users, timestamps;
 *            no PII). The tenant row stays, so its id is never reused.
 *
 * The tenant's audit trail is deleted with its rows; what stays is the deletion report and the job row.
 */
import type { Sql } from '../core/db';
import { NotFoundError } from '../core/errors';
import type { UserDirectory } from '../core/cognito';
import type { Pii } from '../core/pii';
import type { TenantObjects } from '../core/tenant-objects';
import { isTenantId } from '../core/tenant';
import { assertOperator, recordAudit, withControl, type Actor } from '../lifecycle/control';
import { addToResult, runJob, type Job, type RunOptions, type StepTable } from '../lifecycle/jobs';
import { getTenant, type Tenant } from './tenant-admin';

export interface OffboardingDependencies {
  /** A client of the control-plane role (app_control). */
  readonly db: Sql;
  readonly pii: Pii;
  readonly directory: UserDirectory;
  /** The tenant's scoped objects, acting for `userId` (the operator who asked). */
  readonly objects: (tenantId: string, userId: string) => TenantObjects;
}

/** The steps in order; `done` after the last. */
export const OFFBOARDING_STEPS = ['suspend', 'objects', 'rows', 'key', 'users', 'finish'] as const;

/**
 * DELETE /api/tenants/{tenantId} → 202 tenant (status `offboarding`, or `deleted` once finished): creates
 * the tenant's one offboarding job (or finds it: calling again resumes), sets the tenant `offboarding`
 * and writes the audit event, in one transaction. Run the job with {@link runOffboarding}.
 */
export async function startOffboarding(db: Sql, actor: Actor, tenantId: string): Promise<{ tenant: Tenant; jobId: string }> {
  if (!isTenantId(tenantId)) throw new NotFoundError('Not found.');
  return withControl(db, actor, async (tx) => {
    await assertOperator(tx, actor);
    const before = await getTenant(tx, tenantId);
    await tx`
      insert into app.jobs (tenant_id, kind, step, requested_by, request_id)
      values (${tenantId}, 'offboard', 'suspend', ${actor.userId}, ${actor.requestId})
      on conflict (tenant_id) where kind = 'offboard' do nothing`;
    const [job] = await tx<{ id: string }[]>`select id from app.jobs where tenant_id = ${tenantId} and kind = 'offboard'`;
    if (before.status === 'active' || before.status === 'suspended') {
      await tx`update app.tenants set status = 'offboarding', updated_at = now() where id = ${tenantId}`;
      await recordAudit(tx, { tenantId, actor, action: 'tenant.offboard', resourceType: 'tenant', resourceId: tenantId, detail: { from: before.status } });
    }
    return { tenant: await getTenant(tx, tenantId), jobId: job!.id };
  });
}

/** The offboarding steps over `deps`. */
export function offboardingSteps(deps: OffboardingDependencies): StepTable {
  return {
    async suspend() {
      // startOffboarding set the status in the job's own transaction; this records when the work began.
      return { next: 'objects', result: { startedAt: new Date().toISOString() } };
    },

    async objects(job) {
      const counts = await deps.objects(job.tenantId, job.requestedBy).purge((page) => addToResult(deps.db, job, 'objects', { ...page }));
      return { next: 'rows', result: { objectsDeletedAt: new Date().toISOString(), objectsLastRun: counts } };
    },

    async rows(job) {
      return {
        next: 'key',
        commit: async (tx) => {
          // The ids (never emails) of the users to delete later, taken in the same transaction as the purge.
          const members = await tx<{ user_id: string }[]>`select user_id from app.members where tenant_id = ${job.tenantId}`;
          const [purged] = await tx<{ counts: Record<string, number> }[]>`select app.purge_tenant_rows(${job.tenantId}) as counts`;
          return { rows: purged!.counts, userIds: members.map((m) => m.user_id), rowsDeletedAt: new Date().toISOString() };
        },
      };
    },

    async key(job) {
      deps.pii.forgetTenantKey(job.tenantId);
      return {
        next: 'users',
        commit: async (tx) => {
          await tx`update app.tenants set data_key_ciphertext = null, updated_at = now() where id = ${job.tenantId}`;
          return { keyDestroyedAt: new Date().toISOString() };
        },
      };
    },

    async users(job) {
      const ids = Array.isArray(job.result.userIds) ? (job.result.userIds as string[]) : [];
      let deleted = 0;
      for (const id of ids) if (await deps.directory.deleteUser(id)) deleted++;
      // A retried step finds some users gone already: they were deleted by an earlier attempt.
      return { next: 'finish', result: { users: { total: ids.length, deletedNow: deleted }, usersDeletedAt: new Date().toISOString() } };
    },

    async finish(job) {
      const r = job.result as {
        startedAt?: string;
        objects?: { versions?: number; deleteMarkers?: number };
        rows?: Record<string, number>;
        users?: { total?: number };
        objectsDeletedAt?: string;
        rowsDeletedAt?: string;
        keyDestroyedAt?: string;
        usersDeletedAt?: string;
      };
      const report = {
        requestedAt: job.createdAt.toISOString(),
        startedAt: r.startedAt,
        finishedAt: new Date().toISOString(),
        rows: r.rows ?? {},
        objects: { versions: r.objects?.versions ?? 0, deleteMarkers: r.objects?.deleteMarkers ?? 0 },
        users: r.users?.total ?? 0,
        dataKey: 'destroyed',
        steps: { objects: r.objectsDeletedAt, rows: r.rowsDeletedAt, key: r.keyDestroyedAt, users: r.usersDeletedAt },
      };
      return {
        next: 'done',
        commit: async (tx) => {
          await tx`
            update app.tenants set status = 'deleted', deletion_report = ${tx.json(report as never)}, updated_at = now()
             where id = ${job.tenantId} and status = 'offboarding'`;
          // The job keeps no member ids once the users are gone.
          await tx`update app.jobs set result = result - 'userIds' where id = ${job.id}`;
          return {};
        },
      };
    },
  };
}

/** Runs (or resumes) the tenant's offboarding job; answers the job as it stands afterwards. */
export function runOffboarding(deps: OffboardingDependencies, jobId: string, options?: RunOptions): Promise<Job> {
  return runJob(deps.db, jobId, offboardingSteps(deps), options);
}
