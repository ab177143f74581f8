/**
 * A tenant flooding over its rate limit is refused in the process, without a connection, once the
 * database has refused it for its rate (functions/core/rate-admission.ts, migration 0012): the refusals
 * that follow send no statement at all and carry the same 429 as the database's, for exactly as long as
 * the level the database reported takes to refill to one token, and no longer. Another tenant on the
 * same client is served throughout. Statements are counted with postgres.js's `debug` hook on the
 * wrapper's own client; the database's bucket is held at a set level (its refill time in the future)
 * and the process's copy runs on a clock the test moves, so that no step depends on the machine's speed.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { Sql } from '../../functions/core/db';
import { wrap } from '../../functions/core/handler';
import { RateAdmission } from '../../functions/core/rate-admission';
import { work as listDocuments } from '../../functions/documents/list';
import { routes, type RouteSpec } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

const RPS = 2;

describe('rate admission in the process', () => {
  let admin: Sql;
  let db: Sql;
  let flood: TenantFixture;
  let quiet: TenantFixture;
  const sent: string[] = [];
  let now = 0;
  const admission = new RateAdmission(() => now);

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 2, debug: (_connection, query) => sent.push(query) });
    await admin`
      insert into app.plans (id, name, limits, rate_limit_rps) values ('rate-two', 'Two per second', '{"api_requests": null}', ${RPS})
      on conflict (id) do nothing`;
    flood = await createTenant(admin, uniqueTenantId('admit-flood'), 'rate-two');
    quiet = await createTenant(admin, uniqueTenantId('admit-quiet'), 'pro');
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  const handler = () =>
    wrap('listDocuments', routes.listDocuments as RouteSpec, listDocuments as unknown as (ctx: never) => Promise<never>, {
      sql: () => db,
      authenticator: () => trustingAuthenticator,
      admission: () => admission,
    });
  const event = (t: TenantFixture) =>
    eventFor(routes.listDocuments, { pathParameters: { tenantId: t.tenantId }, caller: { userId: t.members.user, role: 'user', tenantId: t.tenantId } });
  /** Holds the database's bucket of the flood tenant at `tokens`: no refill until the test sets it again. */
  const holdBucket = (tokens: number) => admin`
    update app.usage_counters set bucket_tokens = ${tokens}, bucket_at = now() + interval '1 hour'
     where tenant_id = ${flood.tenantId} and metric = 'api_requests'`;
  /** One request; whether it sent any statement. */
  const call = async (t: TenantFixture): Promise<{ result: APIGatewayProxyResult; sent: number }> => {
    sent.length = 0;
    const result = await handler()(event(t));
    return { result, sent: sent.length };
  };
  const comparable = (r: APIGatewayProxyResult) => ({
    status: r.statusCode,
    headers: Object.fromEntries(Object.entries(r.headers ?? {}).filter(([k]) => !/request-id|correlation-id/i.test(k))),
    body: { ...(JSON.parse(r.body) as Record<string, unknown>), instance: undefined, requestId: undefined },
  });

  it('refuses the tenant without a statement, with the database’s own 429, until its bucket holds a token again', async () => {
    // Prepare: the tenant's counter row exists (first request), then its bucket is held at a quarter token.
    expect((await call(flood)).result.statusCode).toBe(200);
    await holdBucket(0.25);

    // Act 1: the database refuses once and reports the level.
    const byDatabase = await call(flood);
    expect(byDatabase.sent).toBeGreaterThan(0);
    expect(byDatabase.result.statusCode).toBe(429);

    // Act 2: a flood while a token is 0.75 ÷ 2 rps = 375 ms away.
    const flooded = [];
    for (let i = 0; i < 50; i++) flooded.push(await call(flood));
    now += 374;
    flooded.push(await call(flood));
    const quietServed = await call(quiet);

    // Assess
    for (const r of flooded) {
      expect(r.sent).toBe(0);
      expect(comparable(r.result)).toEqual(comparable(byDatabase.result));
    }
    expect(comparable(byDatabase.result).headers).toMatchObject({ 'Retry-After': '1', 'RateLimit-Limit': String(RPS) });
    expect(quietServed.result.statusCode).toBe(200);
    expect(quietServed.sent).toBeGreaterThan(0);

    // Act 3: the copy has refilled to one token; the database's bucket holds one now too.
    now += 1;
    await holdBucket(1);
    const through = await call(flood);
    expect(through.sent).toBeGreaterThan(0);
    expect(through.result.statusCode).toBe(200);
  });

  it('asks the database again when the copy says a token is there, and believes its new report', async () => {
    now += 1000; // the copy of the first test is full again: forgotten
    await holdBucket(0);
    const first = await call(flood);
    expect([first.result.statusCode, first.sent > 0]).toEqual([429, true]);
    // The copy refills (500 ms for a token) while the database's bucket stays empty (held): the database
    // refuses the one request let through, and the copy starts over from its report.
    now += 500;
    const asked = await call(flood);
    expect([asked.result.statusCode, asked.sent > 0]).toEqual([429, true]);
    const after = await call(flood);
    expect([after.result.statusCode, after.sent]).toEqual([429, 0]);
    // A refusal for any other reason gives no report and keeps no one out: a member who lost access.
    await admin`update app.members set status = 'inactive' where tenant_id = ${quiet.tenantId} and user_id = ${quiet.members.user}`;
    for (let i = 0; i < 3; i++) {
      const forbidden = await call(quiet);
      expect([forbidden.result.statusCode, forbidden.sent > 0]).toEqual([403, true]);
    }
  });
});
