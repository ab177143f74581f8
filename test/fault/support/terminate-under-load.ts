/**
 * Child process of test/fault/terminated-backends.test.ts (run with tsx, so that an exception thrown
 * outside any promise ends this process and not the Jest worker): sends concurrent requests through
 * the real handler wrapper while the test's own app_runtime backends are terminated, then serves more
 * requests, and prints one JSON line with what it saw. No handler for uncaught exceptions or unhandled
 * rejections is installed: as in a Lambda container, either one ends the process (exit 1).
 *
 * Argument: `pooled` (the container's client, as in Lambda today: concurrent callers while all of the
 * client's backends are terminated, several times) or `reserved` (postgres.js issue #1208: a caller holds
 * a connection from `sql.reserve()`, its backend is terminated, and the caller goes on using it; after a
 * 503 it releases it and reserves another, several rounds).
 */
import postgres from 'postgres';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { Sql, Tx } from '../../../functions/core/db';
import { createTenant, uniqueTenantId } from '../../support/db';
import { mixedTraffic } from './mixed-traffic';

const mode = process.argv[2];
if (mode !== 'pooled' && mode !== 'reserved') throw new Error('usage: terminate-under-load.ts pooled|reserved');

const WORKERS = 4;
const TERMINATIONS = 6;
const APPLICATION = `fault-${mode}-${process.pid}`;

/** A `Sql` whose transactions run on `reserved` (which has no `begin`): BEGIN, the work, COMMIT. */
function onReserved(reserved: Sql): Sql {
  return {
    begin: async (fn: (tx: Tx) => Promise<unknown>) => {
      await reserved`begin`;
      try {
        const result = await fn(reserved as unknown as Tx);
        await reserved`commit`;
        return result;
      } catch (error) {
        await reserved`rollback`.catch(() => undefined);
        throw error;
      }
    },
  } as unknown as Sql;
}

interface Outcome {
  readonly statusCode: number;
  readonly contentType?: string;
  readonly retryAfter?: string;
}

function outcomeOf(result: APIGatewayProxyResult): Outcome {
  const headers = result.headers ?? {};
  return {
    statusCode: result.statusCode,
    contentType: headers['content-type'] === undefined ? undefined : String(headers['content-type']),
    retryAfter: headers['Retry-After'] === undefined ? undefined : String(headers['Retry-After']),
  };
}

async function main(): Promise<void> {
  const admin = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined });
  const pool = postgres(process.env.TEST_RUNTIME_DATABASE_URL!, {
    max: WORKERS,
    onnotice: () => undefined,
    connection: { application_name: APPLICATION },
  });
  await admin`
    insert into app.plans (id, name, limits, rate_limit_rps)
    values ('test-fault', 'Fault', '{"api_requests": null, "ai_tokens": null}', 1000000)
    on conflict (id) do nothing`;
  const tenant = await createTenant(admin, uniqueTenantId('fault'), 'test-fault');
  const accepted: string[] = [];
  // A reservation can itself meet a terminated backend (57P01 while connecting): try again shortly.
  const reserve = async (): Promise<postgres.ReservedSql> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await pool.reserve();
      } catch (error) {
        if (attempt === 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  /** The codes of the database errors that left `begin`, and whether at BEGIN or in the work, in order. */
  const causes: string[] = [];
  const observed = (db: Sql): Sql =>
    new Proxy(db, {
      get(target, key, receiver) {
        if (key !== 'begin') return Reflect.get(target, key, receiver) as unknown;
        return (fn: (tx: Tx) => Promise<unknown>) => {
          let started = false;
          return target
            .begin((tx) => {
              started = true;
              return fn(tx);
            })
            .catch((error: unknown) => {
              causes.push(`${String((error as { code?: unknown }).code)} ${started ? 'in the work' : 'at BEGIN'}`);
              throw error;
            });
        };
      },
    });
  /** One caller: the pool itself, or a connection it reserved (replaced after it was lost). */
  const client = async () => {
    let reserved = mode === 'reserved' ? await reserve() : undefined;
    const { send } = mixedTraffic(tenant, { sql: () => observed(reserved ? onReserved(reserved) : pool) }, accepted);
    return {
      request: async (i: number): Promise<Outcome> => {
        const result = await send(i);
        if (reserved && result.statusCode === 503) {
          reserved.release();
          reserved = await reserve();
        }
        return outcomeOf(result);
      },
      release: () => reserved?.release(),
    };
  };

  const duringLoad: Outcome[] = [];
  let terminated = 0;
  const killedPids: number[] = [];
  if (mode === 'pooled') {
    let loading = true;
    const worker = async (w: number) => {
      const own = await client();
      for (let i = w; loading; i += WORKERS) duringLoad.push(await own.request(i));
      own.release();
    };
    const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    workers.catch(() => undefined); // awaited below; a failure must not count as unhandled meanwhile
    for (let round = 0; round < TERMINATIONS; round++) {
      await new Promise((resolve) => setTimeout(resolve, 120));
      const killed = await admin<{ pid: number }[]>`
        select pid from pg_stat_activity, pg_terminate_backend(pid)
        where usename = 'app_runtime' and application_name = ${APPLICATION}`;
      terminated += killed.length;
      killedPids.push(...killed.map((k) => k.pid));
    }
    loading = false;
    await workers;
  } else {
    for (let round = 0; round < TERMINATIONS; round++) {
      const own = await client();
      duringLoad.push(await own.request(round)); // served: the reservation works
      const killed = await admin<{ pid: number }[]>`
        select pid from pg_stat_activity, pg_terminate_backend(pid)
        where usename = 'app_runtime' and application_name = ${APPLICATION} and state = 'idle'`;
      terminated += killed.length;
      killedPids.push(...killed.map((k) => k.pid));
      // Used again after its backend died: 503 (then it is released and replaced), never a crash.
      for (let i = 1; i <= 3; i++) duringLoad.push(await own.request(round + i));
      own.release();
    }
  }

  // Once every terminated backend has exited (on a loaded machine a backend can take a while to act on
  // its SIGTERM), the next requests must be served, even on connections the client has not yet seen close.
  for (let waited = 0; waited < 10_000; waited += 50) {
    const [left] = await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where pid = any(${killedPids}::int[])`;
    if (left!.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const afterwards: Outcome[] = [];
  const causesBefore = causes.length;
  const next = await client();
  for (let i = 0; i < 6; i++) afterwards.push(await next.request(i));
  next.release();
  const causesAfterwards = causes.slice(causesBefore);

  const [counted] = await admin<{ rows: number; used: number }[]>`
    select (select count(*)::int from app.usage_events where tenant_id = ${tenant.tenantId}) as rows,
           coalesce((select sum(used)::int from app.usage_counters
                     where tenant_id = ${tenant.tenantId} and metric = 'ai_tokens'), 0) as used`;
  await pool.end({ timeout: 2 });
  await admin.end();
  process.stdout.write(
    `${JSON.stringify({ terminated, duringLoad, afterwards, causesAfterwards, accepted: accepted.length, rows: counted!.rows, used: counted!.used })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 2;
});
