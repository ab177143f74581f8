/**
 * The flooding tenant of the noisy-neighbour benchmark, in a process of its own (`node --import tsx
 * test/bench/support/neighbour-flood.ts on|off`): in a deployment the flooding tenant's requests run in
 * Lambda containers of their own, and what the tenants share is the database. It keeps `inFlight`
 * GET documents of one tenant in flight through the real wrapper (`wrap()`, trusting test
 * authenticator) on a client of its own (`createSql`, `pool` connections), with the process's rate
 * admission (functions/core/rate-admission.ts) `on` as deployed, or `off` (every request goes to the
 * database: the behaviour before it). Each request starts in a macrotask of its own, as a request
 * arriving over the network does.
 *
 * IPC: the parent sends `{ type: 'flood', url, tenantId, userId, inFlight, pool, seconds }`; the child
 * answers `{ type: 'flooded', ... }` with its counts when the time is up. Its pool is opened in full
 * before the first flood and kept, as a warm fleet's connections are.
 * `{ type: 'stop' }` ends it.
 */
import './quiet-lambda-env';
import { performance } from 'node:perf_hooks';
import type { Sql } from '../../../functions/core/db';
import { wrap } from '../../../functions/core/handler';
import type { Reply } from '../../../functions/core/http';
import { RateAdmission, type Admitted } from '../../../functions/core/rate-admission';
import { work as listDocuments } from '../../../functions/documents/list';
import { routes } from '../../../functions/routes';
import { eventFor, trustingAuthenticator } from '../../support/api';
import { lambdaLikeClient } from './cli';

export interface FloodOrder {
  readonly type: 'flood';
  readonly url: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly inFlight: number;
  readonly pool: number;
  readonly seconds: number;
}

export interface FloodReport {
  readonly type: 'flooded';
  readonly accepted: number;
  /** Refusals by status. */
  readonly refused: Record<string, number>;
  readonly refusalMs: number[];
  /** Requests the process let through to the database. */
  readonly toDatabase: number;
  readonly seconds: number;
}

/** The wrapper's rate admission, counting the requests it lets through to the database. */
class CountingAdmission extends RateAdmission {
  admitted = 0;
  constructor(private readonly enabled: boolean) {
    super();
  }
  override admit(tenantId: string): Admitted | { readonly refused: number } {
    const outcome: Admitted | { readonly refused: number } = this.enabled ? super.admit(tenantId) : { done: () => undefined };
    if ('done' in outcome) this.admitted++;
    return outcome;
  }
}

const mode = process.argv[2];
if (mode !== 'on' && mode !== 'off') throw new Error('usage: neighbour-flood.ts on|off');

const admission = new CountingAdmission(mode === 'on');
let pool: Sql | undefined;

/** The pool, opened once with every connection made, so that no phase pays for connecting. */
async function poolFor(order: FloodOrder): Promise<Sql> {
  if (pool) return pool;
  pool = lambdaLikeClient(order.url, { poolMax: order.pool });
  const open = pool;
  await Promise.all(Array.from({ length: order.pool }, () => open.begin((tx) => tx`select pg_sleep(0.05)`)));
  return open;
}

async function flood(order: FloodOrder): Promise<FloodReport> {
  const sql = await poolFor(order);
  const admittedBefore = admission.admitted;
  const handler = wrap('listDocuments', routes.listDocuments, listDocuments as (ctx: never) => Promise<Reply>, {
    sql: () => sql,
    authenticator: () => trustingAuthenticator,
    admission: () => admission,
  });
  const caller = { userId: order.userId, role: 'user' as const, tenantId: order.tenantId };
  const event = () => eventFor(routes.listDocuments, { pathParameters: { tenantId: order.tenantId }, caller });
  let accepted = 0;
  const refused: Record<string, number> = {};
  const refusalMs: number[] = [];
  const started = performance.now();
  const deadline = started + order.seconds * 1000;
  await Promise.all(
    Array.from({ length: order.inFlight }, async () => {
      while (performance.now() < deadline) {
        await new Promise((resolve) => setImmediate(resolve)); // arrives as network I/O does
        const t0 = performance.now();
        const result = await handler(event());
        if (result.statusCode === 200) accepted++;
        else {
          refused[result.statusCode] = (refused[result.statusCode] ?? 0) + 1;
          refusalMs.push(performance.now() - t0);
        }
      }
    }),
  );
  const toDatabase = admission.admitted - admittedBefore;
  return { type: 'flooded', accepted, refused, refusalMs, toDatabase, seconds: (performance.now() - started) / 1000 };
}

process.on('message', (message: FloodOrder | { type: 'stop' }) => {
  if (message.type === 'stop') {
    void (pool?.end({ timeout: 5 }) ?? Promise.resolve()).finally(() => process.exit(0));
    return;
  }
  flood(message).then(
    (report) => process.send!(report),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.send!({ type: 'ready' });
