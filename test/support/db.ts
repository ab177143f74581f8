/**
 * Database handles for tests. Fixtures are written through the superuser URL; everything that tests
 * data access goes through `runtimeSql()`, which logs in as app_runtime, exactly like a Lambda.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import type { RequestContext, Sql, Tx } from '../../functions/core/db';
import type { TenantRole } from '../../functions/core/tenant';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the Jest global setup did not run`);
  return value;
}

export function adminSql(): Sql {
  return postgres(required('TEST_ADMIN_DATABASE_URL'), { max: 2, onnotice: () => undefined });
}

export function runtimeSql(options: postgres.Options<{}> = {}): Sql {
  return postgres(required('TEST_RUNTIME_DATABASE_URL'), { max: 4, onnotice: () => undefined, ...options });
}

export function controlSql(): Sql {
  return postgres(required('TEST_CONTROL_DATABASE_URL'), { max: 2, onnotice: () => undefined });
}

export function billingSql(): Sql {
  return postgres(required('TEST_BILLING_DATABASE_URL'), { max: 2, onnotice: () => undefined });
}

/** A tenant id unique to this test run (slug rule: lower-case, 3–40 characters). */
export function uniqueTenantId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export interface TenantFixture {
  readonly tenantId: string;
  readonly members: Record<TenantRole, string>;
}

/** Creates a tenant with one active member per role, as the superuser (fixtures bypass RLS). */
export async function createTenant(admin: Sql, tenantId: string, planId = 'pro'): Promise<TenantFixture> {
  await admin`insert into app.plans (id, name) values (${planId}, ${planId}) on conflict (id) do nothing`;
  await admin`insert into app.tenants (id, name, plan_id) values (${tenantId}, ${tenantId}, ${planId})`;
  const members = { org_admin: randomUUID(), user: randomUUID(), readonly: randomUUID() };
  for (const [role, userId] of Object.entries(members)) {
    await admin`
      insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
      values (${tenantId}, ${userId}, ${role}, ${Buffer.from('x')}, ${Buffer.from(userId)})`;
  }
  return { tenantId, members };
}

export function contextFor(fixture: TenantFixture, role: TenantRole = 'user'): RequestContext {
  return { tenantId: fixture.tenantId, userId: fixture.members[role], role, requestId: randomUUID() };
}

/** Writes the audit event that an audited change needs to commit. */
export async function audit(tx: Tx, ctx: RequestContext, action: string, resourceId?: string): Promise<void> {
  await tx`
    insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id)
    values (${ctx.tenantId}, ${ctx.userId}, ${ctx.role}, ${action}, 'document', ${resourceId ?? null}, ${ctx.requestId})`;
}

/** Inserts a document (with its audit event) as the runtime role and returns its id. */
export async function insertDocument(tx: Tx, ctx: RequestContext, name = 'report.pdf'): Promise<string> {
  await audit(tx, ctx, 'document.create');
  const [row] = await tx<{ id: string }[]>`
    insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
    values (${ctx.tenantId}, ${name}, 'application/pdf', 10, ${ctx.userId})
    returning id`;
  return row!.id;
}

/**
 * What an in-flight request of the tenant does to its `api_requests` counter row: holds it (`FOR UPDATE`)
 * in a transaction of `holder` until `release()`; `ended` settles when that transaction has. Resolves once
 * the row is held.
 */
export async function holdCounterRow(holder: Sql, tenantId: string): Promise<{ release(): void; readonly ended: Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const rowHeld = new Promise<void>((resolve) => (held = resolve));
  const holding = holder.begin(async (tx) => {
    await tx`select 1 from app.usage_counters where tenant_id = ${tenantId} and metric = 'api_requests' for update`;
    held();
    await released;
  });
  await Promise.race([rowHeld, holding]);
  return { release, ended: holding.then(() => undefined) };
}

/** How many backends named `applicationName` wait on a lock now (`pg_stat_activity`). */
export async function lockWaiters(admin: Sql, applicationName: string): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where application_name = ${applicationName} and wait_event_type = 'Lock'`;
  return row!.n;
}
