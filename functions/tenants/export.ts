/**
 * Tenant data export (portability). POST /api/{tenantId}/exports records an export and its job in the
 * request's transaction; the job writes one JSON-lines bundle under tenants/{id}/exports/{exportId}/
 * with the tenant's own scoped credentials and marks the export ready; GET answers its status and, when
 * ready, a presigned download URL. Another tenant's export id is 404 (row-level security).
 *
 * The bundle, one JSON object per line, each with a `type`: `export` (header), `tenant`, `document`
 * (metadata and the bytes as base64, or null when never uploaded), `member` (email and name decrypted),
 * `usage_counter`, `usage_event`, `invoice`, `audit_event`. JSON lines keep it dependency-free and
 * readable with any tool; the whole bundle is built in memory, which bounds it by the job's memory.
 */
import type { Sql, Tx } from '../core/db';
import { NotFoundError } from '../core/errors';
import type { Pii } from '../core/pii';
import type { TenantObjects } from '../core/tenant-objects';
import { isUuid } from '../core/tenant';
import { recordAudit, withControl, type Actor } from '../lifecycle/control';
import { runJob, type Job, type RunOptions, type StepTable } from '../lifecycle/jobs';
import { auditChange, type MemberContext } from '../members/membership';

export type ExportStatus = 'pending' | 'ready' | 'failed';

export interface ExportView {
  readonly id: string;
  readonly status: ExportStatus;
  readonly download: { readonly url: string; readonly expiresAt: string } | null;
}

/**
 * POST /api/{tenantId}/exports → 202 `{ export: { id, status } }`. Answers the job id too: the route
 * hands it to the runner (in-process locally, the queue deployed).
 */
export async function requestExport(ctx: MemberContext): Promise<{ export: { id: string; status: ExportStatus }; jobId: string }> {
  const [row] = await ctx.tx<{ id: string; status: ExportStatus }[]>`
    insert into app.exports (tenant_id, requested_by) values (${ctx.tenantId}, ${ctx.userId}) returning id, status`;
  await auditChange(ctx, { action: 'export.request', resourceType: 'export', resourceId: row!.id });
  const [job] = await ctx.tx<{ id: string }[]>`
    insert into app.jobs (tenant_id, kind, export_id, requested_by, request_id)
    values (${ctx.tenantId}, 'export', ${row!.id}, ${ctx.userId}, ${ctx.requestId})
    returning id`;
  return { export: { id: row!.id, status: row!.status }, jobId: job!.id };
}

/** GET /api/{tenantId}/exports/{exportId} → 200 `{ export }`; 404 for an unknown or foreign id. */
export async function getExport(ctx: Pick<MemberContext, 'tx' | 'tenantId'>, objects: TenantObjects, exportId: string): Promise<{ export: ExportView }> {
  if (!isUuid(exportId)) throw new NotFoundError('Not found.');
  const [row] = await ctx.tx<{ id: string; status: ExportStatus; object_key: string | null }[]>`
    select id, status, object_key from app.exports where tenant_id = ${ctx.tenantId} and id = ${exportId}`;
  if (!row) throw new NotFoundError('Not found.');
  const download = row.status === 'ready' ? await objects.presignExport(row.id, 'bundle.jsonl') : null;
  return { export: { id: row.id, status: row.status, download } };
}

export interface ExportDependencies {
  /** A client of the control-plane role (app_control). */
  readonly db: Sql;
  readonly pii: Pii;
  readonly objects: (tenantId: string, userId: string) => TenantObjects;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** The bundle's lines for one tenant, read in one control-plane transaction. */
async function bundleLines(tx: Tx, deps: ExportDependencies, job: Job, objects: TenantObjects): Promise<{ lines: string[]; counts: Record<string, number> }> {
  const t = job.tenantId;
  const [tenant] = await tx<{ id: string; name: string; plan_id: string; status: string; created_at: Date; data_key_ciphertext: Buffer | null }[]>`
    select id, name, plan_id, status, created_at, data_key_ciphertext from app.tenants where id = ${t}`;
  if (!tenant?.data_key_ciphertext) throw new NotFoundError('The tenant has no data to export.');
  const keys = await deps.pii.tenantKeys(t, tenant.data_key_ciphertext);
  const lines: string[] = [];
  const push = (value: Record<string, unknown>) => lines.push(JSON.stringify(value));
  push({ type: 'export', format: 'tenant-export/v1', tenantId: t, exportId: job.exportId, createdAt: new Date().toISOString() });
  push({ type: 'tenant', id: tenant.id, name: tenant.name, planId: tenant.plan_id, status: tenant.status, createdAt: iso(tenant.created_at) });

  const documents = await tx<{ id: string; name: string; content_type: string; size_bytes: string; status: string; created_by: string; created_at: Date; uploaded_at: Date | null }[]>`
    select id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at
      from app.documents where tenant_id = ${t} order by created_at, id`;
  for (const d of documents) {
    const bytes = await objects.readDocument(d.id);
    push({
      type: 'document', id: d.id, name: d.name, contentType: d.content_type, sizeBytes: Number(d.size_bytes), status: d.status,
      createdBy: d.created_by, createdAt: iso(d.created_at), uploadedAt: iso(d.uploaded_at), bytesBase64: bytes ? bytes.toString('base64') : null,
    });
  }
  const members = await tx<{ user_id: string; role: string; status: string; email_ciphertext: Buffer; name_ciphertext: Buffer | null; created_at: Date }[]>`
    select user_id, role, status, email_ciphertext, name_ciphertext, created_at from app.members where tenant_id = ${t} order by created_at, user_id`;
  for (const m of members) {
    push({
      type: 'member', userId: m.user_id, email: keys.decrypt('email', m.email_ciphertext),
      name: m.name_ciphertext ? keys.decrypt('name', m.name_ciphertext) : null, role: m.role, status: m.status, createdAt: iso(m.created_at),
    });
  }
  const counters = await tx<{ metric: string; period: string; used: string; updated_at: Date }[]>`
    select metric, period, used, updated_at from app.usage_counters where tenant_id = ${t} order by metric, period`;
  for (const c of counters) push({ type: 'usage_counter', metric: c.metric, period: c.period, used: Number(c.used), updatedAt: iso(c.updated_at) });
  const events = await tx<{ id: string; metric: string; quantity: string; period: string; idempotency_key: string; created_by: string; created_at: Date }[]>`
    select id, metric, quantity, period, idempotency_key, created_by, created_at from app.usage_events where tenant_id = ${t} order by created_at, id`;
  for (const e of events) {
    push({ type: 'usage_event', id: e.id, metric: e.metric, quantity: Number(e.quantity), period: e.period, idempotencyKey: e.idempotency_key, createdBy: e.created_by, createdAt: iso(e.created_at) });
  }
  const invoices = await tx<{ period: string; plan_id: string; currency: string; amount_micros: string; lines: unknown; created_at: Date }[]>`
    select period, plan_id, currency, amount_micros, lines, created_at from app.invoices where tenant_id = ${t} order by period`;
  for (const i of invoices) {
    push({ type: 'invoice', period: i.period, planId: i.plan_id, currency: i.currency, amountMicros: Number(i.amount_micros), lines: i.lines, createdAt: iso(i.created_at) });
  }
  const audit = await tx<{ id: string; occurred_at: Date; actor_user_id: string; actor_role: string; action: string; resource_type: string; resource_id: string | null; request_id: string; outcome: string; detail: unknown }[]>`
    select id, occurred_at, actor_user_id, actor_role, action, resource_type, resource_id, request_id, outcome, detail
      from app.audit_events where tenant_id = ${t} order by occurred_at, id`;
  for (const a of audit) {
    push({
      type: 'audit_event', id: a.id, occurredAt: iso(a.occurred_at), actorUserId: a.actor_user_id, actorRole: a.actor_role, action: a.action,
      resourceType: a.resource_type, resourceId: a.resource_id, requestId: a.request_id, outcome: a.outcome, detail: a.detail,
    });
  }
  return {
    lines,
    counts: { documents: documents.length, members: members.length, usageCounters: counters.length, usageEvents: events.length, invoices: invoices.length, auditEvents: audit.length },
  };
}

/** The export steps: `start` writes the bundle (idempotent: the same key again), `finish` marks it ready. */
export function exportSteps(deps: ExportDependencies): StepTable {
  const actorOf = (job: Job): Actor => ({ userId: job.requestedBy, role: 'org_admin', requestId: job.requestId });
  return {
    async start(job) {
      const objects = deps.objects(job.tenantId, job.requestedBy);
      // A read-only, repeatable-read snapshot: the bundle is one consistent picture of the tenant.
      const { lines, counts } = await deps.db.begin('isolation level repeatable read read only', (tx) =>
        bundleLines(tx as Tx, deps, job, objects),
      );
      const key = await objects.putExport(job.exportId!, 'bundle.jsonl', Buffer.from(`${lines.join('\n')}\n`, 'utf8'), 'application/x-ndjson');
      return { next: 'finish', result: { objectKey: key, counts } };
    },
    async finish(job) {
      return {
        next: 'done',
        commit: async (tx) => {
          const updated = await tx`
            update app.exports set status = 'ready', object_key = ${job.result.objectKey as string}, completed_at = now(), updated_at = now()
             where tenant_id = ${job.tenantId} and id = ${job.exportId} and status = 'pending'
            returning id`;
          if (updated.length > 0) {
            await recordAudit(tx, { tenantId: job.tenantId, actor: actorOf(job), action: 'export.ready', resourceType: 'export', resourceId: job.exportId! });
          }
        },
      };
    },
  };
}

/** After this many failed attempts of one step an export is marked failed (its job stays resumable). */
export const EXPORT_MAX_ATTEMPTS = 3;

/** Runs (or resumes) an export job; answers the job as it stands afterwards. */
export async function runExport(deps: ExportDependencies, jobId: string, options: RunOptions = {}): Promise<Job> {
  const job = await runJob(deps.db, jobId, exportSteps(deps), options);
  if (job.status === 'failed' && job.attempts >= EXPORT_MAX_ATTEMPTS && job.exportId) {
    const actor: Actor = { userId: job.requestedBy, role: 'org_admin', requestId: job.requestId };
    await withControl(deps.db, actor, async (tx) => {
      const rows = await tx`
        update app.exports set status = 'failed', updated_at = now()
         where tenant_id = ${job.tenantId} and id = ${job.exportId} and status = 'pending' returning id`;
      if (rows.length > 0) await recordAudit(tx, { tenantId: job.tenantId, actor, action: 'export.fail', resourceType: 'export', resourceId: job.exportId! });
    });
  }
  return job;
}
