/**
 * `app.meter_request()` (migration 0013) takes a free counter row in one statement and counts it in a
 * second; only when the row cannot be taken at once (none yet this month, or held by another request
 * of the tenant) does it run the full function of 0012, `app.meter_request_contended()`.
 *
 * To see which path a request took, this file migrates a scratch database of its own and replaces the
 * contended function there with one that records its calls and then does the real work (the 0012 body
 * stays reachable under another name). The shared test database is never changed.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { migrate } from '../../db/migrate';
import { withTenant, type Sql } from '../../functions/core/db';
import { QuotaExceededError } from '../../functions/core/errors';
import { meterRequest } from '../../functions/core/metering';
import { adminSql, createTenant, holdCounterRow, lockWaiters, type TenantFixture } from '../support/db';

const database = `meter_fast_${process.pid}_${Date.now()}`;
const applicationName = `meter-fast-${randomUUID().slice(0, 8)}`;

function urlFor(base: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

describe('app.meter_request: the uncontended path', () => {
  const root = adminSql();
  let admin: Sql;
  let holder: Sql;
  let runtime: Sql;
  let t: TenantFixture;

  const contendedCalls = async (): Promise<number> => {
    const [row] = await admin<{ n: number }[]>`select count(*)::int as n from public.contended_calls`;
    return row!.n;
  };
  const counter = async () => {
    const [row] = await admin<{ used: string; bucket_tokens: number }[]>`
      select used, bucket_tokens from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
    return row;
  };
  const ctx = () => ({ tenantId: t.tenantId, userId: t.members.user, role: 'user' as const, requestId: randomUUID() });
  const meter = () => withTenant(runtime, ctx(), (tx) => meterRequest(tx));

  beforeAll(async () => {
    await root`create database ${root(database)}`;
    await migrate(urlFor(process.env.TEST_ADMIN_DATABASE_URL!));
    admin = postgres(urlFor(process.env.TEST_ADMIN_DATABASE_URL!), { max: 2, onnotice: () => undefined });
    holder = postgres(urlFor(process.env.TEST_ADMIN_DATABASE_URL!), { max: 1, onnotice: () => undefined });
    runtime = postgres(urlFor(process.env.TEST_RUNTIME_DATABASE_URL!), { max: 2, onnotice: () => undefined, connection: { application_name: applicationName } });
    // The 0012 function under a third name; the contended one records each call, then runs it. Owned by
    // the metering role as the original, so it runs with the same rights.
    await admin.unsafe(`
      create table public.contended_calls (at timestamptz not null default clock_timestamp());
      grant insert on public.contended_calls to app_metering;
      grant create on schema app to app_metering;
      set role app_metering;
      alter function app.meter_request_contended() rename to meter_request_0012;
      create function app.meter_request_contended() returns table (used bigint, quota bigint, period text)
        language plpgsql security invoker set search_path = pg_catalog as $$
      begin
        insert into public.contended_calls default values;
        return query select * from app.meter_request_0012();
      end $$;
      reset role;
      revoke create on schema app from app_metering;
      insert into app.plans (id, name, limits, rate_limit_rps) values ('fast-ten', 'Ten', '{"api_requests": 12}', 10);
    `);
    t = await createTenant(admin, `fast-${randomUUID().slice(0, 8)}`, 'fast-ten');
  });

  afterAll(async () => {
    await Promise.all([admin?.end(), holder?.end(), runtime?.end()]);
    await root`drop database if exists ${root(database)} with (force)`;
    await root.end();
  });

  it("takes the contended path for the month's first request, which creates the row", async () => {
    await expect(meter()).resolves.toMatchObject({ used: 1, limit: 12 });
    expect(await contendedCalls()).toBe(1);
  });

  it('counts a request on a free row without the contended path, with the same answer', async () => {
    const before = await contendedCalls();
    for (let i = 2; i <= 5; i++) await expect(meter()).resolves.toMatchObject({ used: i, limit: 12 });
    expect(await contendedCalls()).toBe(before);
    expect(Number((await counter())!.used)).toBe(5);
  });

  it('refuses an empty bucket on the free row with the rate detail, counting nothing', async () => {
    await admin`update app.usage_counters set bucket_tokens = 0.25, bucket_at = now() + interval '1 hour'
                 where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
    const before = await contendedCalls();
    const error = await meter().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ rate: { tokens: 0.25, rps: 10 } });
    expect(await contendedCalls()).toBe(before);
    expect(Number((await counter())!.used)).toBe(5);
    await admin`update app.usage_counters set bucket_tokens = 10, bucket_at = now()
                 where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
  });

  it('goes through the contended path while another request of the tenant holds the row', async () => {
    const before = await contendedCalls();
    const row = await holdCounterRow(holder, t.tenantId);
    const metered = meter();
    // The contended function waits for the row (tokens are left): let the row go once it does.
    let waited = false;
    for (let i = 0; i < 300 && !waited; i++) {
      waited = (await lockWaiters(admin, applicationName)) > 0;
      if (!waited) await new Promise((r) => setTimeout(r, 5));
    }
    row.release();
    expect(waited).toBe(true);
    await row.ended;
    await expect(metered).resolves.toMatchObject({ used: 6, limit: 12 });
    expect(await contendedCalls()).toBe(before + 1);
  });

  it('refuses the quota on the free row with the quota detail', async () => {
    await admin`update app.usage_counters set used = 12 where tenant_id = ${t.tenantId} and metric = 'api_requests'`;
    const before = await contendedCalls();
    const error = await meter().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as QuotaExceededError).rate).toBeUndefined();
    expect((error as Error).message).toMatch(/api_requests/);
    // The detail the quota headers are built from: metric, limit, used and a period that names the month.
    expect((error as QuotaExceededError).headers).toMatchObject({ 'X-Quota-Metric': 'api_requests', 'X-Quota-Limit': '12', 'X-Quota-Remaining': '0' });
    expect((error as QuotaExceededError).headers['X-Quota-Reset']).toMatch(/^\d+$/);
    expect(await contendedCalls()).toBe(before);
    expect(Number((await counter())!.used)).toBe(12);
  });
});
