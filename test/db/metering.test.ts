/**
 * Quotas under concurrency, through the real route and wrapper against a real Postgres: exactness,
 * idempotency, period rollover, plan changes, unlimited metrics, and bad input that counts nothing.
 */
import { randomUUID } from 'node:crypto';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

describe('usage metering and quotas', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  const handler = () => route(routes.recordUsageEvent, recordUsageEvent, deps);
  const send = (t: TenantFixture, body: unknown) =>
    handler()(
      eventFor(routes.recordUsageEvent, {
        pathParameters: { tenantId: t.tenantId },
        caller: { userId: t.members.user, role: 'user', tenantId: t.tenantId },
        body,
      }),
    );
  const used = async (tenantId: string, metric = 'ai_tokens') => {
    const rows = await admin<{ used: string }[]>`
      select used from app.usage_counters where tenant_id = ${tenantId} and metric = ${metric} and period <> 'total'`;
    return rows.reduce((sum, r) => sum + Number(r.used), 0);
  };

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 20 });
    deps = { sql: () => db, authenticator: () => trustingAuthenticator };
    await admin`
      insert into app.plans (id, name, limits, rate_limit_rps) values
        ('meter-ten', 'Ten tokens', '{"ai_tokens": 10, "api_requests": null}', 100000),
        ('meter-unlimited', 'Unlimited', '{"ai_tokens": null, "api_requests": null}', 100000)
      on conflict (id) do nothing`;
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  it('lets exactly 10 of 100 concurrent requests through when 10 units are left', async () => {
    const t = await createTenant(admin, uniqueTenantId('exact'), 'meter-ten');
    const results = await Promise.all(
      Array.from({ length: 100 }, () => send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })),
    );
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 202)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(90);
    expect(await used(t.tenantId)).toBe(10);
    const events = await admin`select 1 from app.usage_events where tenant_id = ${t.tenantId}`;
    expect(events).toHaveLength(10);
    const rejected = results.find((r) => r.statusCode === 429)!;
    expect(rejected.headers?.['content-type']).toBe('application/problem+json');
    expect(rejected.headers?.['X-Quota-Metric']).toBe('ai_tokens');
    expect(rejected.headers?.['X-Quota-Limit']).toBe('10');
    expect(rejected.headers?.['X-Quota-Remaining']).toBe('0');
    expect(Number(rejected.headers?.['Retry-After'])).toBeGreaterThan(0);
    expect(Number(rejected.headers?.['X-Quota-Reset'])).toBeGreaterThan(0);
    // The per-second window's fields are not about quotas: a quota refusal does not send them.
    expect(rejected.headers?.['RateLimit-Limit']).toBeUndefined();
  });

  it('accepts a tenant at exactly its limit and refuses one unit more', async () => {
    const t = await createTenant(admin, uniqueTenantId('edge'), 'meter-ten');
    expect((await send(t, { metric: 'ai_tokens', quantity: 10, idempotencyKey: randomUUID() })).statusCode).toBe(202);
    expect((await send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })).statusCode).toBe(429);
    expect(await used(t.tenantId)).toBe(10);
    // A request larger than the whole limit is refused on the first use too, and records nothing.
    const u = await createTenant(admin, uniqueTenantId('edge-big'), 'meter-ten');
    expect((await send(u, { metric: 'ai_tokens', quantity: 11, idempotencyKey: randomUUID() })).statusCode).toBe(429);
    expect(await used(u.tenantId)).toBe(0);
  });

  it('counts one idempotency key once, even when sent 20 times at once', async () => {
    const t = await createTenant(admin, uniqueTenantId('idem'), 'pro');
    const body = { metric: 'ai_tokens', quantity: 7, idempotencyKey: `job-${randomUUID()}` };
    const results = await Promise.all(Array.from({ length: 20 }, () => send(t, body)));
    expect(results.map((r) => r.statusCode)).toEqual(Array(20).fill(202));
    expect(results.filter((r) => json(r).duplicate === false)).toHaveLength(1);
    expect(await used(t.tenantId)).toBe(7);
  });

  it('answers 409 for a known key with another payload, and counts nothing more', async () => {
    const t = await createTenant(admin, uniqueTenantId('conflict'), 'pro');
    const key = randomUUID();
    expect((await send(t, { metric: 'ai_tokens', quantity: 3, idempotencyKey: key })).statusCode).toBe(202);
    expect((await send(t, { metric: 'ai_tokens', quantity: 4, idempotencyKey: key })).statusCode).toBe(409);
    expect(await used(t.tenantId)).toBe(3);
  });

  it('keeps idempotency keys per tenant: the same key in two tenants counts in both', async () => {
    const t = await createTenant(admin, uniqueTenantId('key-a'), 'pro');
    const u = await createTenant(admin, uniqueTenantId('key-b'), 'pro');
    const body = { metric: 'ai_tokens', quantity: 2, idempotencyKey: 'shared-key' };
    expect((await send(t, body)).statusCode).toBe(202);
    expect((await send(u, body)).statusCode).toBe(202);
    expect(await used(t.tenantId)).toBe(2);
    expect(await used(u.tenantId)).toBe(2);
  });

  it('never limits an unlimited metric', async () => {
    const t = await createTenant(admin, uniqueTenantId('unlimited'), 'meter-unlimited');
    const big = await send(t, { metric: 'ai_tokens', quantity: 1_000_000_000, idempotencyKey: randomUUID() });
    expect(big.statusCode).toBe(202);
    expect(big.headers?.['X-Quota-Metric']).not.toBe('ai_tokens');
    expect(big.headers?.['RateLimit-Limit']).toBeUndefined();
    expect(await used(t.tenantId)).toBe(1_000_000_000);
  });

  it('starts a new period with a fresh allowance', async () => {
    const t = await createTenant(admin, uniqueTenantId('rollover'), 'meter-ten');
    // Last month's counter is full; it must not count against this month.
    await admin`
      insert into app.usage_counters (tenant_id, metric, period, used)
      values (${t.tenantId}, 'ai_tokens', to_char((now() at time zone 'UTC') - interval '1 month', 'YYYY-MM'), 10)`;
    expect((await send(t, { metric: 'ai_tokens', quantity: 10, idempotencyKey: randomUUID() })).statusCode).toBe(202);
    const [current] = await admin<{ used: string }[]>`
      select used from app.usage_counters
       where tenant_id = ${t.tenantId} and metric = 'ai_tokens' and period = to_char(now() at time zone 'UTC', 'YYYY-MM')`;
    expect(Number(current?.used)).toBe(10);
  });

  it('applies a plan change in the middle of a period to the next request', async () => {
    const t = await createTenant(admin, uniqueTenantId('upgrade'), 'meter-ten');
    expect((await send(t, { metric: 'ai_tokens', quantity: 10, idempotencyKey: randomUUID() })).statusCode).toBe(202);
    expect((await send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })).statusCode).toBe(429);
    await admin`update app.tenants set plan_id = 'pro' where id = ${t.tenantId}`;
    expect((await send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })).statusCode).toBe(202);
    await admin`update app.tenants set plan_id = 'meter-ten' where id = ${t.tenantId}`;
    // Downgraded below what is already used: refused until the period ends.
    expect((await send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })).statusCode).toBe(429);
    expect(await used(t.tenantId)).toBe(11);
  });

  it.each([
    ['an unknown metric', { metric: 'gpu_hours', quantity: 1, idempotencyKey: 'k1' }],
    ['a standing-total metric', { metric: 'documents', quantity: 1, idempotencyKey: 'k2' }],
    ['the request count, which only the wrapper moves', { metric: 'api_requests', quantity: 1, idempotencyKey: 'k9' }],
    ['quantity 0', { metric: 'ai_tokens', quantity: 0, idempotencyKey: 'k3' }],
    ['quantity -1', { metric: 'ai_tokens', quantity: -1, idempotencyKey: 'k4' }],
    ['quantity 2^53', { metric: 'ai_tokens', quantity: 2 ** 53, idempotencyKey: 'k5' }],
    ['a float quantity', { metric: 'ai_tokens', quantity: 1.5, idempotencyKey: 'k6' }],
    ['a string quantity', { metric: 'ai_tokens', quantity: '1', idempotencyKey: 'k7' }],
    ['a missing key', { metric: 'ai_tokens', quantity: 1 }],
    ['a 300-character key', { metric: 'ai_tokens', quantity: 1, idempotencyKey: 'k'.repeat(300) }],
    ['an unknown field', { metric: 'ai_tokens', quantity: 1, idempotencyKey: 'k8', extra: true }],
  ])('refuses %s with 400 and counts nothing', async (_name, body) => {
    const t = await createTenant(admin, uniqueTenantId('bad'), 'pro');
    const result = await send(t, body);
    expect(result.statusCode).toBe(400);
    expect(result.headers?.['content-type']).toBe('application/problem+json');
    expect(await admin`select 1 from app.usage_events where tenant_id = ${t.tenantId}`).toHaveLength(0);
    expect(await admin`select 1 from app.usage_counters where tenant_id = ${t.tenantId}`).toHaveLength(0);
    // Positive control: a valid event for the same tenant is accepted.
    expect((await send(t, { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() })).statusCode).toBe(202);
  });
});
