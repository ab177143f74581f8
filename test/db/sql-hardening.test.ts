/**
 * The security review's SQL reproductions, run as the roles it named: an audited change cannot borrow an
 * old audit event's request id, whichever role writes; app_runtime cannot reset or lock the usage
 * counters nor call the contended metering function, and the meter refuses a context without a known
 * tenant; app_control cannot mint platform operators, change plans or write invoices; app_billing
 * reads and inserts invoices and writes nothing else; the runtime role has statement and idle timeouts.
 */
import { randomUUID } from 'node:crypto';
import { withTenant, type Sql } from '../../functions/core/db';
import {
  adminSql,
  audit,
  billingSql,
  contextFor,
  controlSql,
  createTenant,
  insertDocument,
  runtimeSql,
  uniqueTenantId,
  type TenantFixture,
} from '../support/db';

const PERMISSION_DENIED = '42501';

describe('SQL hardening', () => {
  let admin: Sql;
  let runtime: Sql;
  let control: Sql;
  let billing: Sql;
  let t: TenantFixture;

  beforeAll(async () => {
    admin = adminSql();
    runtime = runtimeSql();
    control = controlSql();
    billing = billingSql();
    t = await createTenant(admin, uniqueTenantId('harden'));
  });
  afterAll(async () => {
    await Promise.all([admin.end(), runtime.end(), control.end(), billing.end()]);
  });

  /** A committed request with a document and its audit event; returns the request id and the document. */
  async function earlierRequest(): Promise<{ requestId: string; documentId: string }> {
    const ctx = contextFor(t, 'user');
    const documentId = await withTenant(runtime, ctx, (tx) => insertDocument(tx, ctx, 'earlier'));
    return { requestId: ctx.requestId, documentId };
  }

  describe('audit trail', () => {
    it('refuses at commit an app_runtime insert into documents whose request id names an old audit event', async () => {
      // Prepare
      const { requestId } = await earlierRequest();
      const ctx = { ...contextFor(t, 'user'), requestId };
      const name = `reused-${randomUUID()}`;
      // Act
      const insert = withTenant(runtime, ctx, (tx) => tx`
        insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
        values (${t.tenantId}, ${name}, 'text/plain', 1, ${ctx.userId})`);
      // Assess
      await expect(insert).rejects.toMatchObject({ code: 'TS500' });
      expect(await admin`select 1 from app.documents where tenant_id = ${t.tenantId} and name = ${name}`).toHaveLength(0);
      // Positive control: a new audit event in the same transaction, even with the reused id, commits.
      await expect(
        withTenant(runtime, ctx, async (tx) => {
          await audit(tx, ctx, 'document.create');
          await tx`
            insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
            values (${t.tenantId}, ${name}, 'text/plain', 1, ${ctx.userId})`;
        }),
      ).resolves.toBeUndefined();
    });

    it('refuses an app_runtime change whose audit event another transaction wrote, even one still open', async () => {
      // Prepare: another session writes the event of this request id and keeps its transaction open.
      const ctx = contextFor(t, 'user');
      const name = `concurrent-${randomUUID()}`;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let written!: () => void;
      const eventWritten = new Promise<void>((resolve) => (written = resolve));
      const other = withTenant(runtime, ctx, async (tx) => {
        await audit(tx, ctx, 'document.create');
        written();
        await released;
      });
      await eventWritten;
      // Act
      const insert = withTenant(runtime, ctx, (tx) => tx`
        insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
        values (${t.tenantId}, ${name}, 'text/plain', 1, ${ctx.userId})`);
      // Assess
      await expect(insert).rejects.toMatchObject({ code: 'TS500' });
      release();
      await other;
    });

    it('refuses at commit an app_control delete of a document without an audit event of its own transaction', async () => {
      // Prepare
      const { requestId, documentId } = await earlierRequest();
      // Act
      const remove = control.begin((tx) => [
        tx`select set_config('app.request_id', ${requestId}, true)`,
        tx`delete from app.documents where tenant_id = ${t.tenantId} and id = ${documentId}`,
      ]);
      // Assess
      await expect(remove).rejects.toMatchObject({ code: 'TS500' });
      expect(await admin`select 1 from app.documents where tenant_id = ${t.tenantId} and id = ${documentId}`).toHaveLength(1);
      // Positive control: with its own audit event the control plane's delete commits.
      await control.begin((tx) => [
        tx`select set_config('app.request_id', ${requestId}, true)`,
        tx`insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id)
           values (${t.tenantId}, ${t.members.org_admin}, 'superadmin', 'document.delete', 'document', ${documentId}, ${requestId})`,
        tx`delete from app.documents where tenant_id = ${t.tenantId} and id = ${documentId}`,
      ]);
      expect(await admin`select 1 from app.documents where tenant_id = ${t.tenantId} and id = ${documentId}`).toHaveLength(0);
    });
  });

  describe('app_runtime', () => {
    const asRuntime = (work: string) => {
      const ctx = contextFor(t, 'org_admin');
      return withTenant(runtime, ctx, (tx) => {
        switch (work) {
          case 'reset':
            return tx`update app.usage_counters set used = 0`;
          case 'delete':
            return tx`delete from app.usage_counters`;
          case 'insert':
            return tx`insert into app.usage_counters (tenant_id, metric, period, used) values (${t.tenantId}, 'ai_tokens', 'total', 0)`;
          default:
            return tx`lock table app.usage_counters in access exclusive mode`;
        }
      });
    };

    it.each(['reset', 'delete', 'insert', 'lock'])('cannot %s the usage counters directly', async (work) => {
      await expect(asRuntime(work)).rejects.toMatchObject({ code: PERMISSION_DENIED });
    });

    it('still moves its counters through the metering functions', async () => {
      const ctx = contextFor(t, 'user');
      const [row] = await withTenant(runtime, ctx, (tx) => tx<{ used: string }[]>`select used from app.consume('ai_tokens', 3)`);
      expect(Number(row!.used)).toBeGreaterThanOrEqual(3);
    });

    it('cannot call the contended metering function, which only app.meter_request() runs', async () => {
      const ctx = contextFor(t, 'user');
      await expect(withTenant(runtime, ctx, (tx) => tx`select * from app.meter_request_contended()`)).rejects.toMatchObject({
        code: PERMISSION_DENIED,
      });
    });

    it.each([
      ['no tenant in the request context', ''],
      ['a tenant that does not exist', 'no-such-tenant'],
    ])('is refused by app.meter_request() with TS403 for %s, and nothing is counted', async (_case, tenantId) => {
      const metered = runtime.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenantId}, true)`;
        return tx`select * from app.meter_request()`;
      });
      await expect(metered).rejects.toMatchObject({ code: 'TS403' });
      const [row] = await admin<{ n: number }[]>`select count(*)::int as n from app.usage_counters where tenant_id = ${tenantId}`;
      expect(row!.n).toBe(0);
    });

    it('runs with a statement timeout and an idle-in-transaction timeout', async () => {
      const [settings] = await runtime<{ statement: string; idle: string }[]>`
        select current_setting('statement_timeout') as statement,
               current_setting('idle_in_transaction_session_timeout') as idle`;
      expect(settings).toEqual({ statement: '5s', idle: '5s' });
    });
  });

  describe('app_control', () => {
    it.each([
      ['insert a platform operator', (sql: Sql) => sql`insert into app.platform_operators (user_id) values (${randomUUID()})`],
      ['update a platform operator', (sql: Sql) => sql`update app.platform_operators set status = 'active'`],
      ['change plan limits', (sql: Sql) => sql`update app.plans set limits = '{}'::jsonb where id = 'free'`],
      ['create a plan', (sql: Sql) => sql`insert into app.plans (id, name) values (${`p-${randomUUID().slice(0, 8)}`}, 'x')`],
      ['write an invoice', (sql: Sql) => sql`
        insert into app.invoices (tenant_id, period, plan_id, currency, amount_micros, lines)
        values (${t.tenantId}, '2020-01', 'pro', 'USD', 0, '[]'::jsonb)`],
    ])('cannot %s', async (_name, write) => {
      await expect(write(control)).rejects.toMatchObject({ code: PERMISSION_DENIED });
    });

    it('still reads tenants and plans (positive control)', async () => {
      const rows = await control`select t.id from app.tenants t join app.plans p on p.id = t.plan_id where t.id = ${t.tenantId}`;
      expect(rows).toHaveLength(1);
    });
  });

  describe('app_billing', () => {
    it.each([
      ['change a counter', (sql: Sql) => sql`update app.usage_counters set updated_at = now() where tenant_id = ${t.tenantId}`, undefined],
      ['reset a counter', (sql: Sql) => sql`update app.usage_counters set used = 0`, PERMISSION_DENIED],
      ['insert a platform operator', (sql: Sql) => sql`insert into app.platform_operators (user_id) values (${randomUUID()})`, PERMISSION_DENIED],
      ['change plan limits', (sql: Sql) => sql`update app.plans set limits = '{}'::jsonb where id = 'free'`, PERMISSION_DENIED],
      ['change a tenant', (sql: Sql) => sql`update app.tenants set status = 'suspended' where id = ${t.tenantId}`, PERMISSION_DENIED],
      ['delete a document', (sql: Sql) => sql`delete from app.documents`, PERMISSION_DENIED],
      ['forge an audit event', (sql: Sql) => sql`
        insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, request_id)
        values (${t.tenantId}, ${randomUUID()}, 'org_admin', 'forged', 'x', 'forged')`, PERMISSION_DENIED],
      ['lock the counters', (sql: Sql) => sql.begin((tx) => tx`lock table app.usage_counters in access exclusive mode`), PERMISSION_DENIED],
    ])('cannot %s', async (_name, write, code) => {
      // A counter row for the update to find (the refusal must come from the policy, not from no rows).
      await admin`
        insert into app.usage_counters (tenant_id, metric, period, used) values (${t.tenantId}, 'documents', 'total', 1)
        on conflict do nothing`;
      await expect(write(billing)).rejects.toMatchObject(code ? { code } : { message: expect.stringMatching(/row-level security/) });
      expect(await admin`select 1 from app.tenants where id = ${t.tenantId} and status = 'active'`).toHaveLength(1);
    });
  });
});
