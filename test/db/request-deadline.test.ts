/**
 * The request deadline: a request whose dependency stalls is answered 503 with Retry-After within the
 * deadline, and the work that finishes later does not commit behind the caller's back.
 */
import { randomUUID } from 'node:crypto';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

describe('the request deadline', () => {
  let admin: Sql;
  let db: Sql;
  let t: TenantFixture;

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 2 });
    t = await createTenant(admin, uniqueTenantId('deadline'), 'pro');
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  it('answers 503 with Retry-After once the deadline passes, and the late work rolls back instead of committing', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let finished!: () => void;
    const lateWorkDone = new Promise<void>((r) => (finished = r));
    const deps: Partial<HandlerDependencies> = {
      sql: () => db,
      authenticator: () => trustingAuthenticator,
      deadlineMs: () => 300,
    };
    // The usage event is written, then the work waits on a "dependency" that answers only after the deadline.
    const slow = route(routes.recordUsageEvent, async (ctx) => {
      try {
        const reply = await recordUsageEvent(ctx as unknown as Parameters<typeof recordUsageEvent>[0]);
        await stalled;
        return reply;
      } finally {
        finished();
      }
    }, deps);
    const idempotencyKey = randomUUID();
    const started = performance.now();
    const result = await slow(
      eventFor(routes.recordUsageEvent, {
        pathParameters: { tenantId: t.tenantId },
        caller: { userId: t.members.user, role: 'user', tenantId: t.tenantId },
        body: { metric: 'ai_tokens', quantity: 3, idempotencyKey },
      }),
    );
    const elapsed = performance.now() - started;
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['Retry-After']).toBe('1');
    expect(result.headers?.['content-type']).toMatch(/application\/problem\+json/);
    expect(json(result).status).toBe(503);
    expect(elapsed).toBeLessThan(2000);

    release();
    await lateWorkDone;
    // Let the transaction end (ROLLBACK) before looking.
    await new Promise((r) => setTimeout(r, 200));
    const [written] = await admin`
      select (select count(*)::int from app.usage_events where tenant_id = ${t.tenantId} and idempotency_key = ${idempotencyKey}) as events,
             (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'ai_tokens') as tokens`;
    expect(written).toEqual({ events: 0, tokens: 0 });
  });
});
