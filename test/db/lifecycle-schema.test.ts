/**
 * The lifecycle schema against a real Postgres: the last-admin rule for any runtime SQL and under
 * concurrency, the members columns the runtime may change, tenant ids never reused, final statuses,
 * exports and jobs isolation, the catalog-driven purge of a tenant's rows, and what app_control may not do.
 */
import { randomUUID } from 'node:crypto';
import { withTenant, type RequestContext, type Sql, type Tx } from '../../functions/core/db';
import { adminSql, contextFor, controlSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

async function auditFor(tx: Tx, ctx: RequestContext, action: string): Promise<void> {
  await tx`
    insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, request_id)
    values (${ctx.tenantId}, ${ctx.userId}, ${ctx.role}, ${action}, 'member', ${ctx.requestId})`;
}

/** Adds a second org_admin to a fixture (as the superuser) and answers its user id. */
async function addAdmin(admin: Sql, tenantId: string): Promise<string> {
  const userId = randomUUID();
  await admin`
    insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
    values (${tenantId}, ${userId}, 'org_admin', ${Buffer.from('x')}, ${Buffer.from(userId)})`;
  return userId;
}

function demote(db: Sql, ctx: RequestContext, target: string): Promise<unknown> {
  return withTenant(db, ctx, async (tx) => {
    await auditFor(tx, ctx, 'member.update');
    return tx`update app.members set role = 'user' where tenant_id = ${ctx.tenantId} and user_id = ${target}`;
  });
}

describe('lifecycle schema', () => {
  let admin: Sql;
  let db: Sql;
  let control: Sql;

  beforeAll(() => {
    admin = adminSql();
    db = runtimeSql({ max: 10 });
    control = controlSql();
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end(), control.end()]);
  });

  describe('the last active org_admin', () => {
    let t: TenantFixture;
    beforeEach(async () => {
      t = await createTenant(admin, uniqueTenantId('last-admin'));
    });

    it.each([
      ['demoted', (tx: Tx, id: string) => tx`update app.members set role = 'readonly' where user_id = ${id}`],
      ['deactivated', (tx: Tx, id: string) => tx`update app.members set status = 'inactive' where user_id = ${id}`],
      ['removed', (tx: Tx, id: string) => tx`delete from app.members where user_id = ${id}`],
    ])('cannot be %s by runtime SQL (TS409), while one of two admins can', async (_label, change) => {
      const ctx = contextFor(t, 'org_admin');
      await expect(
        withTenant(db, ctx, async (tx) => {
          await auditFor(tx, ctx, 'member.change');
          await change(tx, t.members.org_admin);
        }),
      // TS409, as the one database error map gives it to a request: 409 naming the rule.
      ).rejects.toMatchObject({ status: 409, detail: expect.stringMatching(/last active org_admin/) });
      // Positive control: with a second admin the same change commits.
      const second = await addAdmin(admin, t.tenantId);
      await withTenant(db, ctx, async (tx) => {
        await auditFor(tx, ctx, 'member.change');
        await change(tx, second);
      });
      const [left] = await admin<{ n: number }[]>`
        select count(*)::int as n from app.members where tenant_id = ${t.tenantId} and role = 'org_admin' and status = 'active'`;
      expect(left!.n).toBe(1);
    });

    it('leaves one admin when two admins demote each other at the same time', async () => {
      for (let round = 0; round < 8; round++) {
        const tenant = await createTenant(admin, uniqueTenantId('duel'));
        const a = tenant.members.org_admin;
        const b = await addAdmin(admin, tenant.tenantId);
        const ctxA = { ...contextFor(tenant, 'org_admin'), userId: a };
        const ctxB = { ...contextFor(tenant, 'org_admin'), userId: b };
        const results = await Promise.allSettled([demote(db, ctxA, b), demote(db, ctxB, a)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { status: 409, detail: expect.stringMatching(/last active org_admin/) } });
        const [left] = await admin<{ n: number }[]>`
          select count(*)::int as n from app.members where tenant_id = ${tenant.tenantId} and role = 'org_admin' and status = 'active'`;
        expect(left!.n).toBe(1);
      }
    });

    it('lets the runtime change only role, status and name of a member', async () => {
      const ctx = contextFor(t, 'org_admin');
      for (const change of [
        (tx: Tx) => tx`update app.members set email_hmac = ${Buffer.from('other')} where user_id = ${t.members.user}`,
        (tx: Tx) => tx`update app.members set user_id = ${randomUUID()} where user_id = ${t.members.user}`,
        (tx: Tx) => tx`update app.members set tenant_id = tenant_id where user_id = ${t.members.user}`,
      ]) {
        await expect(
          withTenant(db, ctx, async (tx) => {
            await auditFor(tx, ctx, 'member.change');
            await change(tx);
          }),
        ).rejects.toMatchObject({ code: '42501' });
      }
      await withTenant(db, ctx, async (tx) => {
        await auditFor(tx, ctx, 'member.change');
        await tx`update app.members set role = 'readonly', status = 'inactive', updated_at = now() where user_id = ${t.members.user}`;
      });
      const [row] = await admin`select role, status from app.members where user_id = ${t.members.user}`;
      expect(row).toEqual({ role: 'readonly', status: 'inactive' });
    });
  });

  describe('tenants', () => {
    it('never reuses a deleted tenant id, keeps deleted final and without a data key', async () => {
      const t = await createTenant(admin, uniqueTenantId('gone'));
      await admin`update app.tenants set status = 'offboarding' where id = ${t.tenantId}`;
      await expect(admin`update app.tenants set status = 'deleted' where id = ${t.tenantId} and data_key_ciphertext is null`).resolves.toBeDefined();
      await expect(admin`update app.tenants set status = 'active' where id = ${t.tenantId}`).rejects.toMatchObject({ code: 'TS409' });
      await expect(control`insert into app.tenants (id, name, plan_id) values (${t.tenantId}, 'again', 'pro')`).rejects.toMatchObject({
        code: '23505',
      });
      const other = await createTenant(admin, uniqueTenantId('keyed'));
      await admin`update app.tenants set status = 'offboarding', data_key_ciphertext = ${Buffer.from('k')} where id = ${other.tenantId}`;
      await expect(admin`update app.tenants set status = 'deleted' where id = ${other.tenantId}`).rejects.toMatchObject({ code: '23514' });
      await expect(admin`update app.tenants set status = 'active' where id = ${other.tenantId}`).rejects.toMatchObject({ code: 'TS409' });
    });
  });

  describe('exports and jobs', () => {
    it('shows a tenant only its own exports and export jobs, and lets it create no other job', async () => {
      const a = await createTenant(admin, uniqueTenantId('exp-a'));
      const b = await createTenant(admin, uniqueTenantId('exp-b'));
      const ctxA = contextFor(a, 'org_admin');
      const exportId = await withTenant(db, ctxA, async (tx) => {
        await auditFor(tx, ctxA, 'export.request');
        const [row] = await tx<{ id: string }[]>`insert into app.exports (tenant_id, requested_by) values (${a.tenantId}, ${ctxA.userId}) returning id`;
        await tx`insert into app.jobs (tenant_id, kind, export_id, requested_by, request_id) values (${a.tenantId}, 'export', ${row!.id}, ${ctxA.userId}, ${ctxA.requestId})`;
        return row!.id;
      });
      const seenByA = await withTenant(db, ctxA, (tx) => tx`select id from app.exports`);
      expect(seenByA.map((r) => r.id)).toEqual([exportId]);
      const ctxB = contextFor(b, 'org_admin');
      expect(await withTenant(db, ctxB, (tx) => tx`select id from app.exports where id = ${exportId}`)).toHaveLength(0);
      expect(await withTenant(db, ctxB, (tx) => tx`select id from app.jobs where tenant_id = ${a.tenantId}`)).toHaveLength(0);
      await expect(
        withTenant(db, ctxA, (tx) => tx`insert into app.jobs (tenant_id, kind, requested_by, request_id) values (${a.tenantId}, 'offboard', ${ctxA.userId}, 'r')`),
      ).rejects.toMatchObject({ code: '42501' });
      await expect(
        withTenant(db, ctxA, (tx) => tx`insert into app.jobs (tenant_id, kind, step, requested_by, request_id) values (${a.tenantId}, 'export', 'finish', ${ctxA.userId}, 'r')`),
      ).rejects.toMatchObject({ code: '42501' });
      await expect(withTenant(db, ctxA, (tx) => tx`update app.exports set status = 'ready', object_key = 'x'`)).rejects.toMatchObject({ code: '42501' });
    });
  });

  describe('purging a tenant', () => {
    it("deletes the tenant's rows in every table with tenant_id (from the catalog), only while it is offboarding", async () => {
      const t = await createTenant(admin, uniqueTenantId('purge'));
      const keep = await createTenant(admin, uniqueTenantId('keep'));
      for (const f of [t, keep]) {
        const ctx = contextFor(f, 'org_admin');
        await withTenant(db, ctx, async (tx) => {
          await auditFor(tx, ctx, 'document.create');
          await tx`insert into app.documents (tenant_id, name, content_type, size_bytes, created_by) values (${f.tenantId}, 'a', 'text/plain', 1, ${ctx.userId})`;
          await tx`insert into app.exports (tenant_id, requested_by) values (${f.tenantId}, ${ctx.userId})`;
        });
        await admin`insert into app.usage_counters (tenant_id, metric, period, used) values (${f.tenantId}, 'documents', 'total', 1)`;
        await admin`insert into app.invoices (tenant_id, period, plan_id, currency, amount_micros, lines) values (${f.tenantId}, '2026-01', 'pro', 'USD', 1, '[]')`;
        await admin`insert into app.jobs (tenant_id, kind, requested_by, request_id) values (${f.tenantId}, 'offboard', ${ctx.userId}, 'r')`;
      }
      await expect(control`select app.purge_tenant_rows(${t.tenantId})`).rejects.toMatchObject({ code: 'TS409' });

      await control`update app.tenants set status = 'offboarding' where id = ${t.tenantId}`;
      const [purged] = await control<{ counts: Record<string, number> }[]>`select app.purge_tenant_rows(${t.tenantId}) as counts`;
      expect(purged!.counts).toMatchObject({ members: 3, documents: 1, exports: 1, usage_counters: 1, invoices: 1, audit_events: 1 });

      const tables = await admin<{ table: string }[]>`
        select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'app' and c.relkind = 'r'
           and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)`;
      expect(tables.length).toBeGreaterThan(7);
      for (const { table } of tables) {
        const [left] = await admin<{ n: number }[]>`select count(*)::int as n from ${admin('app.' + table)} where tenant_id = ${t.tenantId}`;
        const [other] = await admin<{ n: number }[]>`select count(*)::int as n from ${admin('app.' + table)} where tenant_id = ${keep.tenantId}`;
        // The job row stays (the record of the offboarding); the other tenant keeps everything.
        expect({ table, left: left!.n }).toEqual({ table, left: table === 'jobs' ? 1 : 0 });
        if (['members', 'documents', 'exports', 'usage_counters', 'invoices', 'audit_events', 'jobs'].includes(table)) {
          expect({ table, other: other!.n > 0 }).toEqual({ table, other: true });
        }
      }
      // Idempotent: a second run finds nothing.
      const [again] = await control<{ counts: Record<string, number> }[]>`select app.purge_tenant_rows(${t.tenantId}) as counts`;
      expect(Object.values(again!.counts).every((n) => n === 0)).toBe(true);
    });
  });

  it('gives app_control no write on platform_operators and no way to skip the tenant status rules', async () => {
    await expect(control`insert into app.platform_operators (user_id) values (${randomUUID()})`).rejects.toMatchObject({ code: '42501' });
    await expect(control`update app.platform_operators set status = 'active'`).rejects.toMatchObject({ code: '42501' });
    await expect(control`delete from app.platform_operators`).rejects.toMatchObject({ code: '42501' });
    // Positive control: it reads them (to check that an operator is active).
    await expect(control`select count(*) from app.platform_operators`).resolves.toHaveLength(1);
  });
});
