/**
 * A pool of ONE connection serves 1,000 interleaved transactions of three tenants, some of which throw
 * mid-transaction. If the tenant context ever outlived its transaction, a later transaction on the same
 * connection would see it. It must not: every transaction sees only its own tenant, and a query outside
 * withTenant sees no tenant at all.
 */
import { withTenant, type RequestContext, type Sql } from '../../functions/core/db';
import { adminSql, contextFor, createTenant, insertDocument, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

class Boom extends Error {}

describe('pooled connection reuse', () => {
  let admin: Sql;
  let pool: Sql;
  let tenants: TenantFixture[];

  beforeAll(async () => {
    admin = adminSql();
    pool = runtimeSql({ max: 1 });
    tenants = [];
    for (const name of ['leak-a', 'leak-b', 'leak-c']) {
      const t = await createTenant(admin, uniqueTenantId(name));
      const ctx = contextFor(t);
      await withTenant(pool, ctx, (tx) => insertDocument(tx, ctx));
      tenants.push(t);
    }
  });
  afterAll(async () => {
    await Promise.all([admin.end(), pool.end()]);
  });

  it('never carries a tenant context over to the next transaction', async () => {
    let foreignRows = 0;
    let ownRows = 0;
    let wrongContext = 0;
    let thrown = 0;
    const calls = Array.from({ length: 1000 }, (_, i) => {
      const tenant = tenants[i % 3]!;
      const ctx: RequestContext = contextFor(tenant, 'readonly');
      const throwMidway = i % 7 === 3;
      return withTenant(pool, ctx, async (tx) => {
        const [setting] = await tx<{ tenant: string }[]>`select current_setting('app.tenant_id', true) as tenant`;
        if (setting?.tenant !== ctx.tenantId) wrongContext++;
        if (throwMidway) throw new Boom();
        const rows = await tx<{ tenant_id: string }[]>`select tenant_id from app.documents`;
        for (const row of rows) row.tenant_id === ctx.tenantId ? ownRows++ : foreignRows++;
      }).catch((error: unknown) => {
        if (!(error instanceof Boom)) throw error;
        thrown++;
      });
    });
    await Promise.all(calls);

    const [after] = await pool<{ tenant: string | null }[]>`select nullif(current_setting('app.tenant_id', true), '') as tenant`;
    const outside = await pool`select 1 from app.documents`;

    expect(thrown).toBe(143);
    expect(wrongContext).toBe(0);
    expect(foreignRows).toBe(0);
    // Positive control: the transactions that did not throw did see their own rows.
    expect(ownRows).toBe(1000 - 143);
    expect(after?.tenant ?? null).toBeNull();
    expect(outside).toHaveLength(0);
  });
});
