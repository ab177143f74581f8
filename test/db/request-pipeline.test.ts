/**
 * The handler wrapper against a real Postgres, as app_runtime: the status guard, the tenant and role
 * guards, the audit trail, platform-operator access, metering headers, and quota and rate rejections.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { route, wrap, type HandlerDependencies, type RouteContext } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { ok } from '../../functions/core/http';
import { work as listDocuments } from '../../functions/documents/list';
import { work as listAuditEvents } from '../../functions/audit/list';
import { work as listMembers } from '../../functions/members/list';
import { keysFrom, type Pii } from '../../functions/core/pii';
import { work as listTenants } from '../../functions/platform/list-tenants';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes, type RouteSpec } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, controlSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

describe('the request pipeline', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  let control: Sql;
  let a: TenantFixture;
  let b: TenantFixture;
  let operator: string;

  const list = () => route(routes.listDocuments, listDocuments, deps);
  const caller = (t: TenantFixture, role: 'org_admin' | 'user' | 'readonly' = 'user') => ({
    userId: t.members[role],
    role,
    tenantId: t.tenantId,
  });

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 10 });
    control = controlSql();
    deps = { sql: () => db, control: () => control, authenticator: () => trustingAuthenticator };
    await admin`
      insert into app.plans (id, name, limits, rate_limit_rps)
      values ('test-tight', 'Tight', '{"ai_tokens": 10, "api_requests": null}', 100000),
             ('test-slow', 'Slow', '{"api_requests": null}', 2)
      on conflict (id) do nothing`;
    a = await createTenant(admin, uniqueTenantId('pipe-a'), 'pro');
    b = await createTenant(admin, uniqueTenantId('pipe-b'), 'pro');
    operator = randomUUID();
    await admin`insert into app.platform_operators (user_id) values (${operator})`;
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end(), control.end()]);
  });

  it('serves an active member of an active tenant and sends the monthly request quota as X-Quota headers', async () => {
    const result = await list()(eventFor(routes.listDocuments, { pathParameters: { tenantId: a.tenantId }, caller: caller(a) }));
    expect(result.statusCode).toBe(200);
    expect(json(result)).toEqual({ items: [], nextCursor: null });
    expect(result.headers?.['X-Quota-Metric']).toBe('api_requests');
    expect(result.headers?.['X-Quota-Limit']).toBe('1000000');
    expect(Number(result.headers?.['X-Quota-Remaining'])).toBeLessThan(1000000);
    expect(Number(result.headers?.['X-Quota-Reset'])).toBeGreaterThan(0);
    // RateLimit-* describe only the per-second window, which a success does not report.
    expect(result.headers?.['RateLimit-Limit']).toBeUndefined();
    expect(result.headers?.['x-request-id']).toEqual(expect.any(String));
  });

  it('refuses a path tenant that is not the token tenant with 403', async () => {
    const own = await list()(eventFor(routes.listDocuments, { pathParameters: { tenantId: a.tenantId }, caller: caller(a) }));
    const other = await list()(eventFor(routes.listDocuments, { pathParameters: { tenantId: b.tenantId }, caller: caller(a) }));
    const unknown = await list()(eventFor(routes.listDocuments, { pathParameters: { tenantId: 'no-such-tenant' }, caller: caller(a) }));
    expect(own.statusCode).toBe(200);
    expect(other.statusCode).toBe(403);
    expect(unknown.statusCode).toBe(403);
    expect(other.headers?.['content-type']).toBe('application/problem+json');
    expect(json(other)).toMatchObject({ status: 403, title: 'Forbidden', instance: other.headers?.['x-request-id'] });
  });

  it('refuses a role the manifest does not allow with 403', async () => {
    const h = route(routes.listAuditEvents, listAuditEvents, deps);
    const admitted = await h(eventFor(routes.listAuditEvents, { pathParameters: { tenantId: a.tenantId }, caller: caller(a, 'org_admin') }));
    const refused = await h(eventFor(routes.listAuditEvents, { pathParameters: { tenantId: a.tenantId }, caller: caller(a, 'readonly') }));
    expect(admitted.statusCode).toBe(200);
    expect(refused.statusCode).toBe(403);
  });

  it('refuses, at the next request, a member set inactive, a changed role and a suspended tenant', async () => {
    const t = await createTenant(admin, uniqueTenantId('revoke'), 'pro');
    const event = () => eventFor(routes.listDocuments, { pathParameters: { tenantId: t.tenantId }, caller: caller(t, 'user') });
    expect((await list()(event())).statusCode).toBe(200);

    await admin`update app.members set status = 'inactive' where tenant_id = ${t.tenantId} and user_id = ${t.members.user}`;
    expect((await list()(event())).statusCode).toBe(403);
    await admin`update app.members set status = 'active', role = 'readonly' where tenant_id = ${t.tenantId} and user_id = ${t.members.user}`;
    expect((await list()(event())).statusCode).toBe(403);
    await admin`update app.members set role = 'user' where tenant_id = ${t.tenantId} and user_id = ${t.members.user}`;
    expect((await list()(event())).statusCode).toBe(200);

    await admin`update app.tenants set status = 'suspended' where id = ${t.tenantId}`;
    expect((await list()(event())).statusCode).toBe(403);
  });

  it('writes an audit event with the request id in the same transaction as a mutation', async () => {
    const h = route(routes.recordUsageEvent, recordUsageEvent, deps);
    const event = eventFor(routes.recordUsageEvent, {
      pathParameters: { tenantId: a.tenantId },
      caller: caller(a, 'user'),
      body: { metric: 'ai_tokens', quantity: 5, idempotencyKey: randomUUID() },
    });
    const result = await h(event);
    expect(result.statusCode).toBe(202);
    const rows = await admin`
      select actor_user_id, actor_role, action, resource_type from app.audit_events
       where tenant_id = ${a.tenantId} and request_id = ${result.headers!['x-request-id']!}`;
    expect(rows).toEqual([{ actor_user_id: a.members.user, actor_role: 'user', action: 'recordUsageEvent', resource_type: 'usage_event' }]);
  });

  it('refuses to commit a mutating route that names no audit resource: 500 and nothing written', async () => {
    const { audit: _audit, ...unaudited } = routes.recordUsageEvent;
    const spec: RouteSpec = unaudited;
    const forgetful = wrap('forgetfulUsageEvent', spec, recordUsageEvent as unknown as (ctx: never) => Promise<never>, deps);
    const idempotencyKey = randomUUID();
    const result = await forgetful(
      eventFor(spec, { pathParameters: { tenantId: a.tenantId }, caller: caller(a, 'user'), body: { metric: 'ai_tokens', quantity: 1, idempotencyKey } }),
    );
    expect(result.statusCode).toBe(500);
    const written = await admin`
      select (select count(*)::int from app.usage_events where tenant_id = ${a.tenantId} and idempotency_key = ${idempotencyKey}) as events,
             (select count(*)::int from app.audit_events where tenant_id = ${a.tenantId} and request_id = ${result.headers!['x-request-id']!}) as audits`;
    expect(written).toEqual([{ events: 0, audits: 0 }]);
  });

  it('gives a usesPii route its tenant\'s keys through the wrapper\'s dependencies, bound to that tenant', async () => {
    const t = await createTenant(admin, uniqueTenantId('pii-bound'));
    const dataKey = randomBytes(32);
    const wrapped = Buffer.from('wrapped-by-kms');
    const keys = keysFrom(t.tenantId, dataKey);
    await admin`update app.tenants set data_key_ciphertext = ${wrapped} where id = ${t.tenantId}`;
    for (const [role, userId] of Object.entries(t.members)) {
      await admin`update app.members set email_ciphertext = ${keys.encrypt('email', `${role}@example.test`)}
                   where tenant_id = ${t.tenantId} and user_id = ${userId}`;
    }
    // Stands in for KMS's unwrap only (the KMS path itself is tested against the emulator in integration/pii).
    const asked: [string, string][] = [];
    const pii: Pii = {
      newTenantKey: () => Promise.reject(new Error('not used')),
    forgetTenantKey: () => undefined,
      tenantKeys: async (tenantId, key) => {
        asked.push([tenantId, key.toString()]);
        return keysFrom(tenantId, dataKey);
      },
    };
    const h = route(routes.listMembers, listMembers, { ...deps, pii: () => pii });
    const result = await h(eventFor(routes.listMembers, { pathParameters: { tenantId: t.tenantId }, caller: caller(t, 'org_admin') }));
    expect(result.statusCode).toBe(200);
    const emails = (json(result).items as { email: string }[]).map((m) => m.email).sort();
    expect(emails).toEqual(['org_admin@example.test', 'readonly@example.test', 'user@example.test']);
    expect(asked).toEqual([[t.tenantId, 'wrapped-by-kms']]);
  });

  it('refuses at cold start to wrap a route that uses PII keys without being given them', () => {
    expect(() => route(routes.listMembers, listMembers, deps)).toThrow(/listMembers uses PII keys but was given none/);
  });

  it('lets a platform operator use only routes opened to superadmin, and audits each use in that tenant', async () => {
    const superadmin = { userId: operator, role: 'superadmin' as const };
    // The shipped manifest opens no tenant route to superadmin (API.md); a spec that does shows the mechanism.
    const spec: RouteSpec = { ...routes.listDocuments, roles: ['org_admin', 'superadmin'] };
    const opened = wrap('supportListDocuments', spec, listDocuments as unknown as (ctx: never) => Promise<never>, deps);
    const result = await opened(eventFor(spec, { pathParameters: { tenantId: b.tenantId }, caller: superadmin }));
    expect(result.statusCode).toBe(200);
    const audit = await admin`
      select actor_role, action from app.audit_events where tenant_id = ${b.tenantId} and request_id = ${result.headers!['x-request-id']!}`;
    expect(audit).toEqual([{ actor_role: 'superadmin', action: 'supportListDocuments' }]);

    const closed = await list()(eventFor(routes.listDocuments, { pathParameters: { tenantId: b.tenantId }, caller: superadmin }));
    expect(closed.statusCode).toBe(403);
    const unknownTenant = await opened(eventFor(spec, { pathParameters: { tenantId: 'no-such-tenant' }, caller: superadmin }));
    expect(unknownTenant.statusCode).toBe(404);
  });

  it('lists tenants for an active platform operator only', async () => {
    const h = route(routes.listTenants, listTenants, deps);
    const result = await h(eventFor(routes.listTenants, { query: { limit: '100' }, caller: { userId: operator, role: 'superadmin' } }));
    expect(result.statusCode).toBe(200);
    // The control plane sees every tenant of the shared test database: read every page.
    const ids = (json(result).items as { id: string }[]).map((t) => t.id);
    for (let cursor = json(result).nextCursor as string | null; cursor; ) {
      const next = json(await h(eventFor(routes.listTenants, { query: { limit: '100', cursor }, caller: { userId: operator, role: 'superadmin' } })));
      ids.push(...(next.items as { id: string }[]).map((t) => t.id));
      cursor = next.nextCursor as string | null;
    }
    expect(ids).toEqual(expect.arrayContaining([a.tenantId, b.tenantId]));

    const stranger = await h(eventFor(routes.listTenants, { caller: { userId: randomUUID(), role: 'superadmin' } }));
    expect(stranger.statusCode).toBe(403);
    const member = await h(eventFor(routes.listTenants, { caller: caller(a, 'org_admin') }));
    expect(member.statusCode).toBe(403);
  });

  it('runs no work when the guard refuses: a refused mutation leaves nothing behind', async () => {
    const t = await createTenant(admin, uniqueTenantId('refused'), 'pro');
    await admin`update app.tenants set status = 'suspended' where id = ${t.tenantId}`;
    const key = randomUUID();
    const h = route(routes.recordUsageEvent, recordUsageEvent, deps);
    const result = await h(
      eventFor(routes.recordUsageEvent, {
        pathParameters: { tenantId: t.tenantId },
        caller: caller(t, 'user'),
        body: { metric: 'ai_tokens', quantity: 1, idempotencyKey: key },
      }),
    );
    expect(result.statusCode).toBe(403);
    expect(await admin`select 1 from app.usage_events where tenant_id = ${t.tenantId}`).toHaveLength(0);
    expect(await admin`select 1 from app.usage_counters where tenant_id = ${t.tenantId}`).toHaveLength(0);
  });

  it('answers 429 with Retry-After and the per-second RateLimit fields when a tenant exceeds its requests per second', async () => {
    const t = await createTenant(admin, uniqueTenantId('slow'), 'test-slow');
    const h = route(routes.listDocuments, listDocuments, deps);
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof h>> | undefined;
    for (let i = 0; i < 6; i++) {
      const r = await h(eventFor(routes.listDocuments, { pathParameters: { tenantId: t.tenantId }, caller: caller(t) }));
      statuses.push(r.statusCode);
      if (r.statusCode === 429) limited = r;
    }
    // A bucket of 2 tokens refilled at 2/s: the first two pass, a burst right after is refused.
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses).toContain(429);
    expect(limited?.headers?.['Retry-After']).toBe('1');
    expect(limited?.headers?.['RateLimit-Limit']).toBe('2');
    expect(limited?.headers?.['RateLimit-Policy']).toBe('2;w=1');
    expect(limited?.headers?.['X-Quota-Limit']).toBeUndefined();
    // Another tenant on the same plan has its own budget.
    const u = await createTenant(admin, uniqueTenantId('slow-other'), 'test-slow');
    const other = await h(eventFor(routes.listDocuments, { pathParameters: { tenantId: u.tenantId }, caller: caller(u) }));
    expect(other.statusCode).toBe(200);
  });

  it('maps a work function error to problem+json without internals', async () => {
    const failing = wrap('failing', routes.listDocuments as RouteSpec, (async (ctx: RouteContext) => {
      await ctx.tx`select * from app.no_such_table`;
      return ok({});
    }) as unknown as (ctx: never) => Promise<never>, deps);
    const result = await failing(eventFor(routes.listDocuments, { pathParameters: { tenantId: a.tenantId }, caller: caller(a) }));
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/no_such_table|relation|stack|at /);
    expect(json(result)).toMatchObject({ title: 'Internal Server Error', detail: 'The request could not be completed.' });
  });
});
