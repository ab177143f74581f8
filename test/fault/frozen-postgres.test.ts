/**
 * Postgres frozen (SIGSTOP of the postmaster and every backend: the sockets stay open and nothing
 * answers, as a hung server or a black-holed network looks from the client), on a cluster of this test's
 * own: requests through the real wrapper and the real client (`createSql`) answer 503 problem+json with
 * Retry-After within the request deadline, the client discards the connections that went silent (so
 * nothing is left waiting on them), and once the server runs again the first request is served at once.
 * What committed is exactly what was answered 2xx.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { parseConfig } from '../../functions/core/config';
import { createSql, type Sql } from '../../functions/core/db';
import { json } from '../support/api';
import { createTenant, uniqueTenantId, type TenantFixture } from '../support/db';
import { startDedicatedPostgres, type DedicatedPostgres } from './support/dedicated-postgres';
import { mixedTraffic } from './support/mixed-traffic';

const DEADLINE_MS = 3000;
/** Scheduling slack on a shared 2-core machine. */
const MARGIN_MS = 1000;

describe('a frozen Postgres server', () => {
  let cluster: DedicatedPostgres;
  let admin: Sql;
  let db: Sql;
  let tenant: TenantFixture;
  let list: (i: number) => Promise<APIGatewayProxyResult>;
  let record: (key: string) => Promise<APIGatewayProxyResult>;
  const accepted: string[] = [];

  beforeAll(async () => {
    cluster = await startDedicatedPostgres();
    admin = postgres(cluster.adminUrl, { max: 1, onnotice: () => undefined });
    tenant = await createTenant(admin, uniqueTenantId('frozen-pg'), 'pro');
    // The container's client, as a Lambda builds it from its environment.
    const settings = parseConfig({ DATABASE_URL: cluster.runtimeUrl, DB_POOL_MAX: '2', DB_CONNECT_TIMEOUT_SECONDS: '1' });
    db = createSql(settings.database, settings.aws);
    const traffic = mixedTraffic(tenant, { sql: () => db, deadlineMs: () => DEADLINE_MS }, accepted);
    list = () => traffic.list();
    record = (key) => traffic.record(key);
  }, 120_000);

  afterAll(async () => {
    cluster?.thaw();
    await Promise.all([db?.end({ timeout: 1 }), admin?.end({ timeout: 1 })]);
    await cluster?.remove();
  }, 60_000);

  const timed = async (call: Promise<APIGatewayProxyResult>) => {
    const started = performance.now();
    const result = await call;
    return { result, ms: performance.now() - started };
  };
  const mixed = (n: number) => Array.from({ length: n }, (_, i) => timed(i % 2 === 0 ? list(i) : record(randomUUID())));

  const backends = async () =>
    (await admin<{ pid: number }[]>`select pid from pg_stat_activity where usename = 'app_runtime'`).map((r) => r.pid);
  const committed = async () => {
    // What committed is what was answered 2xx: no request given up on committed later.
    const [state] = await admin<{ rows: number; used: number }[]>`
      select (select count(*)::int from app.usage_events where tenant_id = ${tenant.tenantId}) as rows,
             (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenant.tenantId} and metric = 'ai_tokens') as used`;
    return state;
  };
  const gone = async (pids: number[]) => {
    for (let waited = 0; waited < 10_000; waited += 100) {
      const left = await admin`select 1 from pg_stat_activity where pid = any(${pids}::int[])`;
      if (left.length === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  };
  const expectUnavailableInTime = ({ result, ms }: { result: APIGatewayProxyResult; ms: number }) => {
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['content-type']).toBe('application/problem+json');
    expect(Number(result.headers?.['Retry-After'])).toBeGreaterThan(0);
    expect(json(result).status).toBe(503);
    expect(ms).toBeLessThan(DEADLINE_MS + MARGIN_MS);
  };

  it('gives up on backends that stopped answering and serves the next requests on fresh connections', async () => {
    for (const { result } of await Promise.all(mixed(4))) expect([200, 202]).toContain(result.statusCode);
    const stuck = await backends();
    expect(stuck.length).toBeGreaterThan(0);

    // The server accepts connections; only the client's own backends are frozen (a hung backend, a
    // black-holed path to it): the requests on them answer 503 in time, and the client discards them.
    cluster.freezeBackends(stuck);
    try {
      for (const answer of await Promise.all(mixed(4))) expectUnavailableInTime(answer);
      // Not queued behind the frozen connections: served on fresh ones while those stay frozen.
      for (const { result, ms } of await Promise.all(mixed(2))) {
        expect([200, 202]).toContain(result.statusCode);
        expect(ms).toBeLessThan(2000);
      }
    } finally {
      cluster.thaw();
    }
    // Given up for good: once running again, each frozen backend finds its client gone and ends.
    expect(await gone(stuck)).toBe(true);
    expect(await committed()).toEqual({ rows: accepted.length, used: accepted.length });
  });

  it('answers every request 503 with Retry-After within the deadline while frozen, and serves the first one after the thaw', async () => {
    // Warm: both pooled connections open and in use.
    for (const { result } of await Promise.all(mixed(4))) expect([200, 202]).toContain(result.statusCode);
    const before = await backends();

    await cluster.freeze();
    try {
      // Two waves: the second is sent after the first gave up, on whatever the client kept.
      for (let wave = 0; wave < 2; wave++) {
        for (const answer of await Promise.all(mixed(4))) expectUnavailableInTime(answer);
      }
    } finally {
      cluster.thaw();
    }

    const first = await timed(list(0));
    expect(first.result.statusCode).toBe(200);
    expect(first.ms).toBeLessThan(2000);
    const next = await timed(record(randomUUID()));
    expect(next.result.statusCode).toBe(202);

    // The connections given up on were discarded, not kept waiting: their backends end after the thaw.
    expect(await gone(before)).toBe(true);
    expect(await committed()).toEqual({ rows: accepted.length, used: accepted.length });
  });
});
