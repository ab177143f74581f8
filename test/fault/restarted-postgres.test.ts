/**
 * Postgres stopped under load and started again (a reboot, a failover that takes the address with it),
 * on a cluster of this test's own: while it is down every request answers 503 problem+json at once (a
 * refused connection is not a reason to wait out the deadline), the first request after it is ready again
 * is served within 2 s, and what committed is exactly what was answered 2xx: nothing lost, nothing doubled.
 */
import postgres from 'postgres';
import { parseConfig } from '../../functions/core/config';
import { createSql, type Sql } from '../../functions/core/db';
import { createTenant, uniqueTenantId, type TenantFixture } from '../support/db';
import { startDedicatedPostgres, type DedicatedPostgres } from './support/dedicated-postgres';
import { mixedTraffic } from './support/mixed-traffic';

const DEADLINE_MS = 4000;
const WORKERS = 4;

interface Outcome {
  readonly status: number;
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly retryAfter?: string;
  readonly contentType?: string;
}

describe('a Postgres server stopped and started again under load', () => {
  let cluster: DedicatedPostgres;
  let admin: Sql | undefined;
  let db: Sql;
  let tenant: TenantFixture;

  beforeAll(async () => {
    cluster = await startDedicatedPostgres();
    const fixtures = postgres(cluster.adminUrl, { max: 1, onnotice: () => undefined });
    tenant = await createTenant(fixtures, uniqueTenantId('restart-pg'), 'pro');
    await fixtures.end();
    const settings = parseConfig({ DATABASE_URL: cluster.runtimeUrl, DB_POOL_MAX: '2', DB_CONNECT_TIMEOUT_SECONDS: '1' });
    db = createSql(settings.database, settings.aws);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([db?.end({ timeout: 1 }), admin?.end({ timeout: 1 })]);
    await cluster?.remove();
  }, 60_000);

  it('answers 503 at once while it is down, serves within 2 s of it being ready, and keeps exactly the 2xx writes', async () => {
    const traffic = mixedTraffic(tenant, { sql: () => db, deadlineMs: () => DEADLINE_MS });
    const accepted = traffic.accepted;
    const outcomes: Outcome[] = [];
    const send = traffic.send;
    let loading = true;
    const worker = async (w: number) => {
      for (let i = w; loading; i += WORKERS) {
        const sentAt = performance.now();
        const result = await send(i);
        const headers = result.headers ?? {};
        outcomes.push({
          status: result.statusCode,
          sentAt,
          answeredAt: performance.now(),
          retryAfter: headers['Retry-After'] === undefined ? undefined : String(headers['Retry-After']),
          contentType: headers['content-type'] === undefined ? undefined : String(headers['content-type']),
        });
        // Not a busy loop while everything fails at once.
        if (result.statusCode >= 500) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const until = async (condition: () => boolean, timeoutMs: number) => {
      for (const start = performance.now(); !condition(); ) {
        if (performance.now() - start > timeoutMs) throw new Error('condition not met in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const served = (after: number) => outcomes.filter((o) => o.sentAt >= after && (o.status === 200 || o.status === 202));

    const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    try {
      await until(() => served(0).length >= 20, 20_000);

      await cluster.stop();
      const down = performance.now();
      await until(() => outcomes.filter((o) => o.sentAt >= down).length >= 20, 20_000);
      const restarting = performance.now();
      await cluster.start();
      // Ready at the latest now (start() also checks the migrations): the 2 s are counted from here.
      const ready = performance.now();
      await until(() => served(ready).length >= 10, 20_000);
      const whileDown = outcomes.filter((o) => o.sentAt >= down && o.answeredAt <= restarting);

      loading = false;
      await workers;

      // Down: refused at once, as 503 problem+json with Retry-After; never another status, never the deadline.
      expect(whileDown.length).toBeGreaterThanOrEqual(20);
      for (const o of whileDown) {
        expect(o.status).toBe(503);
        expect(o.contentType).toBe('application/problem+json');
        expect(Number(o.retryAfter)).toBeGreaterThan(0);
        expect(o.answeredAt - o.sentAt).toBeLessThan(DEADLINE_MS / 2);
      }
      // Back: the first request answered 2xx comes within 2 s of the server being ready.
      const firstServed = Math.min(...served(restarting).map((o) => o.answeredAt));
      expect(firstServed - ready).toBeLessThan(2000);
      expect(outcomes.filter((o) => ![200, 202, 503].includes(o.status))).toEqual([]);
    } finally {
      loading = false;
      await workers.catch(() => undefined);
    }

    admin = postgres(cluster.adminUrl, { max: 1, onnotice: () => undefined });
    const [state] = await admin<{ rows: number; used: number; keys: string[] }[]>`
      select (select count(*)::int from app.usage_events where tenant_id = ${tenant.tenantId}) as rows,
             (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenant.tenantId} and metric = 'ai_tokens') as used,
             (select coalesce(array_agg(idempotency_key), '{}') from app.usage_events where tenant_id = ${tenant.tenantId}) as keys`;
    expect(new Set(state!.keys)).toEqual(new Set(accepted));
    expect(state!.rows).toBe(accepted.length);
    expect(state!.used).toBe(accepted.length);
  });
});
