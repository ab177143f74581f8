import { withTenant, type Sql } from '../../functions/core/db';
import {
  adminSql,
  audit,
  contextFor,
  createTenant,
  insertDocument,
  runtimeSql,
  uniqueTenantId,
  type TenantFixture,
} from '../support/db';

describe('row-level security on tenant tables (as app_runtime)', () => {
  let admin: Sql;
  let db: Sql;
  let a: TenantFixture;
  let b: TenantFixture;
  let docA: string;
  let docB: string;

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql();
    a = await createTenant(admin, uniqueTenantId('rls-a'));
    b = await createTenant(admin, uniqueTenantId('rls-b'));
    const ctxA = contextFor(a);
    const ctxB = contextFor(b);
    docA = await withTenant(db, ctxA, (tx) => insertDocument(tx, ctxA));
    docB = await withTenant(db, ctxB, (tx) => insertDocument(tx, ctxB));
  });

  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  it('shows a tenant its own rows and none of another tenant', async () => {
    const rows = await withTenant(db, contextFor(a), (tx) => tx<{ id: string; tenant_id: string }[]>`select id, tenant_id from app.documents`);
    // Positive control: A's own document is visible.
    expect(rows.map((r) => r.id)).toContain(docA);
    // Negative: nothing of B's.
    expect(rows.map((r) => r.id)).not.toContain(docB);
    expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([a.tenantId]));
  });

  it('does not find another tenant\'s row even by its primary key', async () => {
    const own = await withTenant(db, contextFor(a), (tx) => tx`select id from app.documents where tenant_id = ${a.tenantId} and id = ${docA}`);
    const foreign = await withTenant(db, contextFor(a), (tx) => tx`select id from app.documents where tenant_id = ${b.tenantId} and id = ${docB}`);
    expect(own).toHaveLength(1);
    expect(foreign).toHaveLength(0);
  });

  it('refuses to insert a row for another tenant', async () => {
    const ctx = contextFor(a);
    // Positive control: the same insert for its own tenant succeeds.
    await expect(withTenant(db, ctx, (tx) => insertDocument(tx, ctx))).resolves.toEqual(expect.any(String));
    await expect(
      withTenant(db, ctx, async (tx) => {
        await audit(tx, ctx, 'document.create');
        return tx`
          insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
          values (${b.tenantId}, 'evil', 'text/plain', 1, ${ctx.userId})`;
      }),
    ).rejects.toMatchObject({ code: '42501' }); // new row violates row-level security policy
  });

  it('updates and deletes only its own rows', async () => {
    const ctx = contextFor(a);
    const updatedOwn = await withTenant(db, ctx, async (tx) => {
      await audit(tx, ctx, 'document.rename', docA);
      return tx`update app.documents set name = 'renamed.pdf' where id = ${docA} returning id`;
    });
    expect(updatedOwn).toHaveLength(1);

    const updatedForeign = await withTenant(db, ctx, async (tx) => {
      await audit(tx, ctx, 'document.rename', docB);
      return tx`update app.documents set name = 'pwned' where id = ${docB} returning id`;
    });
    const deletedForeign = await withTenant(db, ctx, async (tx) => {
      await audit(tx, ctx, 'document.delete', docB);
      return tx`delete from app.documents where id = ${docB} returning id`;
    });
    expect(updatedForeign).toHaveLength(0);
    expect(deletedForeign).toHaveLength(0);
    const [still] = await admin<{ name: string }[]>`select name from app.documents where id = ${docB}`;
    expect(still?.name).toBe('report.pdf');
  });

  it('refuses to move a row to another tenant by updating tenant_id', async () => {
    const ctx = contextFor(a);
    const victim = await withTenant(db, ctx, (tx) => insertDocument(tx, ctx, 'move-me.pdf'));
    await expect(
      withTenant(db, ctx, async (tx) => {
        await audit(tx, ctx, 'document.move', victim);
        return tx`update app.documents set tenant_id = ${b.tenantId} where id = ${victim}`;
      }),
    ).rejects.toMatchObject({ code: '42501' });
    const [row] = await admin<{ tenant_id: string }[]>`select tenant_id from app.documents where id = ${victim}`;
    expect(row?.tenant_id).toBe(a.tenantId);
  });

  it('fails closed with no tenant set: no rows, and inserts fail', async () => {
    // Positive control: with the tenant set, rows are there.
    const scoped = await withTenant(db, contextFor(a), (tx) => tx`select 1 from app.documents`);
    expect(scoped.length).toBeGreaterThan(0);

    const unscoped = await db.begin((tx) => tx`select 1 from app.documents`);
    expect(unscoped).toHaveLength(0);
    await expect(
      db.begin(
        (tx) => tx`
          insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
          values (${a.tenantId}, 'x', 'text/plain', 1, ${a.members.user})`,
      ),
    ).rejects.toMatchObject({ code: '42501' });
    const members = await db`select 1 from app.members`;
    const tenants = await db`select 1 from app.tenants`;
    expect(members).toHaveLength(0);
    expect(tenants).toHaveLength(0);
  });

  it('shows each tenant only its own tenant row and members', async () => {
    const [tenants, members] = await withTenant(db, contextFor(a), async (tx) => [
      await tx<{ id: string }[]>`select id from app.tenants`,
      await tx<{ tenant_id: string }[]>`select tenant_id from app.members`,
    ]);
    expect(tenants.map((t) => t.id)).toEqual([a.tenantId]);
    expect(members).toHaveLength(3);
    expect(members.every((m) => m.tenant_id === a.tenantId)).toBe(true);
  });

  it('cannot commit an audited change without its audit event', async () => {
    const ctx = contextFor(a);
    await expect(
      withTenant(db, ctx, (tx) => tx`
        insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
        values (${a.tenantId}, 'unaudited', 'text/plain', 1, ${ctx.userId})`),
    ).rejects.toMatchObject({ code: 'TS500' });
    const rows = await admin`select 1 from app.documents where tenant_id = ${a.tenantId} and name = 'unaudited'`;
    expect(rows).toHaveLength(0);
    // Positive control: with the audit event of the same request, it commits.
    await expect(withTenant(db, ctx, (tx) => insertDocument(tx, ctx, 'audited'))).resolves.toEqual(expect.any(String));
  });

  it('refuses UPDATE and DELETE on audit_events to the runtime role', async () => {
    const ctx = contextFor(a);
    await expect(withTenant(db, ctx, (tx) => tx`select 1 from app.audit_events limit 1`)).resolves.toHaveLength(1);
    await expect(withTenant(db, ctx, (tx) => tx`update app.audit_events set action = 'x'`)).rejects.toMatchObject({ code: '42501' });
    await expect(withTenant(db, ctx, (tx) => tx`delete from app.audit_events`)).rejects.toMatchObject({ code: '42501' });
  });
});
