/**
 * The wrapper holds no lock on the tenant's counter rows while a route's work waits on another
 * dependency (S3, STS, KMS, Cognito), and it tells a tenant's own contention (429) from a lock the
 * tenant did not cause (503).
 */
import { wrap, type HandlerDependencies, type RouteContext } from '../../functions/core/handler';
import type { Sql, Tx } from '../../functions/core/db';
import { ok } from '../../functions/core/http';
import { work as listDocuments } from '../../functions/documents/list';
import { routes, type RouteSpec } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

describe('locks and outside calls', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  let t: TenantFixture;
  // A table of this test's own for the table-wide lock: locking a product table (app.documents) would
  // stall every other test file's requests on the shared database for the lock timeout.
  const probe = `lock_probe_${process.pid}_${Date.now()}`;
  const event = () =>
    eventFor(routes.listDocuments, { pathParameters: { tenantId: t.tenantId }, caller: { userId: t.members.user, role: 'user', tenantId: t.tenantId } });

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 4 });
    deps = { sql: () => db, authenticator: () => trustingAuthenticator };
    t = await createTenant(admin, uniqueTenantId('lockio'), 'pro');
    await admin`create table public.${admin(probe)} (id int)`;
    await admin`grant select on public.${admin(probe)} to app_runtime`;
  });
  afterAll(async () => {
    await admin`drop table if exists public.${admin(probe)}`;
    await Promise.all([admin.end(), db.end()]);
  });

  it('leaves the tenant\'s request counter unlocked while the work waits on an outside call, and still counts the request', async () => {
    const list = wrap('listDocuments', routes.listDocuments as RouteSpec, listDocuments as unknown as (ctx: never) => Promise<never>, deps);
    expect((await list(event())).statusCode).toBe(200); // the counter row exists from here on
    const counted = async () =>
      Number((await admin`select coalesce(sum(used), 0) as n from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'api_requests'`)[0]!.n);
    const before = await counted();

    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    // Not the manifest's list work: it waits on an outside call after its statement, so it may not be
    // declared one flush (the meter and COMMIT would leave before the call; the wrapper's general path
    // is what this test is about).
    const stalled = wrap('stalledCall', { ...routes.listDocuments, oneFlush: false } as RouteSpec, (async (ctx: RouteContext) => {
      await ctx.tx`select 1`;
      entered();
      await gate; // stands for an S3/STS/KMS call that hangs
      return ok({ items: [] });
    }) as unknown as (ctx: never) => Promise<never>, deps);
    const pending = stalled(event());
    await inside;
    // NOWAIT: fails at once (55P03) if the request's transaction holds the row.
    const locked = await admin.begin(async (tx) => {
      const rows = await tx`select used from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'api_requests' for update nowait`;
      return rows.length;
    });
    expect(locked).toBeGreaterThan(0);
    release();
    expect((await pending).statusCode).toBe(200);
    expect(await counted()).toBe(before + 1);
  });

  it('answers 429 when the tenant\'s own counter row is held, and 503 when a table lock blocks the work', async () => {
    const list = wrap('listDocuments', routes.listDocuments as RouteSpec, listDocuments as unknown as (ctx: never) => Promise<never>, deps);
    // The same route's wrapper, whose work reads a table a table-wide lock can hold.
    const readProbe = wrap('listDocuments', routes.listDocuments as RouteSpec, (async (ctx: RouteContext) => {
      await ctx.tx`select count(*) from public.${ctx.tx(probe)}`;
      return ok({ items: [] });
    }) as unknown as (ctx: never) => Promise<never>, deps);
    const lockedFor = async (lock: (tx: Tx) => Promise<unknown>, handler: typeof list) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let ready!: () => void;
      const locked = new Promise<void>((r) => (ready = r));
      const holder = admin.begin(async (tx) => {
        await lock(tx);
        ready();
        await held;
      });
      await locked;
      try {
        return await handler(event());
      } finally {
        release();
        await holder;
      }
    };
    const own = await lockedFor((tx) => tx`select 1 from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'api_requests' for update`, list);
    expect(own.statusCode).toBe(429);
    expect(own.headers?.['Retry-After']).toBe('1');
    expect((await readProbe(event())).statusCode).toBe(200); // unlocked, the work itself succeeds
    const tableWide = await lockedFor((tx) => tx`lock table public.${tx(probe)} in access exclusive mode`, readProbe);
    expect(tableWide.statusCode).toBe(503);
    expect(tableWide.headers?.['Retry-After']).toBe('1');
  });
});
