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
import type { Sql } from '../../../functions/core/db';
import { isDroppedConnection } from '../../../functions/core/db-errors';
import { createTenant, uniqueTenantId } from '../../support/db';
import { mixedTraffic } from './mixed-traffic';

const mode = process.argv[2];
if (mode !== 'pooled' && mode !== 'reserved') throw new Error('usage: terminate-under-load.ts pooled|reserved');

const WORKERS = 4;
const TERMINATIONS = 6;
const APPLICATION = `fault-${mode}-${process.pid}`;

/**
 * A `Sql` whose transactions run on the connection this caller holds (`holder.current`): the transaction
 * runner (core/db.ts) reserves a connection per attempt and releases it after; here it is given the held
 * one every time, and its release leaves it held (the caller releases it after a 503). When BEGIN met
 * the held connection dropped, the runner's next attempt is given a fresh reservation, which the caller
 * holds from then on (as the runner, reserving per attempt, does).
 */
function onReserved(holder: { current: postgres.ReservedSql }, reserve: () => Promise<postgres.ReservedSql>): Sql {
  let dropped = false;
  type Query = Promise<unknown> & { handler: (q: Query) => void };
  return {
    reserve: async () => {
      if (dropped) {
        holder.current.release();
        holder.current = await reserve();
        dropped = false;
      }
      const held = holder.current;
      return new Proxy(held, {
        get: (target, key, receiver) => {
          if (key === 'release') return () => undefined;
          const value = Reflect.get(target, key, receiver) as unknown;
          if (key !== 'unsafe') return value;
          return (text: string, ...rest: unknown[]) => {
            const query = (value as (...a: unknown[]) => Query)(text, ...rest);
            if (text === 'begin') {
              const send = query.handler;
              query.handler = (q) => {
                q.catch((error: unknown) => {
                  if (isDroppedConnection(error)) dropped = true;
                });
                send(q);
              };
            }
            return query;
          };
        },
      });
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
  /**
   * The codes of the database errors of each transaction, and whether at BEGIN or in the work, in order.
   * Observed on the connection the transaction runner reserves: the first statement it runs is BEGIN;
   * when BEGIN fails, every statement behind it fails too and only BEGIN's error is recorded.
   */
  const causes: string[] = [];
  const recording: Promise<void>[] = [];
  type Query = Promise<unknown> & { handler: (q: Query) => void };
  const observed = (db: Sql): Sql =>
    new Proxy(db, {
      get(target, key, receiver) {
        if (key !== 'reserve') return Reflect.get(target, key, receiver) as unknown;
        return async () => {
          const connection = await target.reserve();
          const statements: Promise<unknown>[] = [];
          // Hooked where postgres.js hands a query to the connection (never executes a fragment).
          const seen = (query: unknown) => {
            const q = query as Query;
            if (q instanceof Promise && typeof q.handler === 'function') {
              const send = q.handler;
              q.handler = (x) => {
                statements.push(x.then(() => undefined, (error: unknown) => error ?? 'rejected'));
                send(x);
              };
            }
            return query;
          };
          return new Proxy(connection, {
            apply: (t, self, args) => seen(Reflect.apply(t, self, args)),
            get: (t, k, r) => {
              const value = Reflect.get(t, k, r) as unknown;
              if (k === 'unsafe') return (...args: unknown[]) => seen((value as (...a: unknown[]) => unknown)(...args));
              if (k !== 'release') return value;
              return () => {
                // Recorded once the statements this transaction sent have settled (the runner releases
                // after its last answer, or once the connection is known lost).
                const recorded = Promise.race([Promise.all(statements), new Promise((resolve) => setTimeout(resolve, 2000))]).then((outcomes) => {
                  const [begin, ...rest] = (outcomes as unknown[] | undefined) ?? [];
                  const failed = rest.find((e) => e !== undefined);
                  if (begin !== undefined) causes.push(`${String((begin as { code?: unknown }).code)} at BEGIN`);
                  else if (failed !== undefined) causes.push(`${String((failed as { code?: unknown }).code)} in the work`);
                });
                recording.push(recorded);
                (value as () => void)();
              };
            },
          });
        };
      },
    });
  /** One caller: the pool itself, or a connection it reserved (replaced after it was lost). */
  const client = async () => {
    const holder = mode === 'reserved' ? { current: await reserve() } : undefined;
    const { send } = mixedTraffic(tenant, { sql: () => observed(holder ? onReserved(holder, reserve) : pool) }, accepted);
    return {
      request: async (i: number): Promise<Outcome> => {
        const result = await send(i);
        if (holder && result.statusCode === 503) {
          holder.current.release();
          holder.current = await reserve();
        }
        return outcomeOf(result);
      },
      release: () => holder?.current.release(),
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
  await Promise.all(recording);
  const causesBefore = causes.length;
  const next = await client();
  for (let i = 0; i < 6; i++) afterwards.push(await next.request(i));
  next.release();
  await Promise.all(recording);
  const causesAfterwards = causes.slice(causesBefore);

  const [counted] = await admin<{ rows: number; used: number }[]>`
    select (select count(*)::int from app.usage_events where tenant_id = ${tenant.tenantId}) as rows,
           coalesce((select sum(used)::int from app.usage_counters
                     where tenant_id = ${tenant.tenantId} and metric = 'ai_tokens'), 0) as used`;
  await pool.end({ timeout: 2 });
  await admin.end();
  // Then exit: what is under test is that no exception escapes the driver, which would have ended the
  // process before this line. After end(), postgres.js can still hold a reconnect timer of a connection
  // that was terminated mid-connect, which would keep the process waiting for it.
  process.stdout.write(
    `${JSON.stringify({ terminated, duringLoad, afterwards, causesAfterwards, accepted: accepted.length, rows: counted!.rows, used: counted!.used })}\n`,
    () => process.exit(process.exitCode ?? 0),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 2;
});
