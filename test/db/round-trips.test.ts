/**
 * Round trips of a transaction, counted by the delay proxy (test/bench/support/round-trips.ts: a TCP
 * proxy that holds every client→server chunk for 20 ms and counts "turns", a client chunk after the
 * server has answered), on warm connections (connected, statements prepared), as a warm Lambda's are:
 *  - a single-query read through withTenant declared as one flush: 1;
 *  - a read with a dependent query: 2;
 *  - a write: ≤ 3 (withTenant and a whole wrapped POST);
 *  - a whole wrapped GET documents (context, guard, list, meter, COMMIT): 1.
 * And what the pipelined COMMIT must not cost: a failing guard stops the work and nothing persists, an
 * error anywhere rolls everything back, the tenant context is set for every statement, a statement sent
 * after COMMIT was queued never runs, and the reserved connection is released on every path.
 */
import { randomUUID } from 'node:crypto';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import { TransactionShapeError, withTenant, type RequestContext, type Sql, type Tx } from '../../functions/core/db';
import { ForbiddenError } from '../../functions/core/errors';
import { work as listDocuments } from '../../functions/documents/list';
import { work as recordUsageEvent } from '../../functions/usage/record-event';
import { routes } from '../../functions/routes';
import { countRoundTrips } from '../bench/support/round-trips';
import { lambdaLikeClient } from '../bench/support/cli';
import { eventFor, trustingAuthenticator } from '../support/api';
import { adminSql, contextFor, createTenant, insertDocument, uniqueTenantId, type TenantFixture } from '../support/db';

const RUNTIME_URL = process.env.TEST_RUNTIME_DATABASE_URL!;

/** Counts the turns of `call` on a warm one-connection client built as a Lambda's is (createSql). */
function turnsOf(call: (db: Sql, i: number) => Promise<unknown>, prepare = true) {
  return countRoundTrips({
    url: RUNTIME_URL,
    calls: 5,
    warmup: 2,
    delayMs: 20,
    client: (url) => lambdaLikeClient(url, { prepare }),
    call,
  });
}

function listNewest(tx: Tx, tenantId: string) {
  return tx<{ id: string }[]>`
    select id from app.documents where tenant_id = ${tenantId} order by created_at desc, id desc limit 20`;
}

describe('round trips of a transaction (warm connection, delay proxy)', () => {
  let admin: Sql;
  let tenant: TenantFixture;
  const ctx = (): RequestContext => contextFor(tenant);

  beforeAll(async () => {
    admin = adminSql();
    tenant = await createTenant(admin, uniqueTenantId('trips'));
  });
  afterAll(async () => {
    await admin.end();
  });

  it('a single-query read through withTenant, declared one flush: 1 turn (BEGIN, context, query, COMMIT)', async () => {
    const count = await turnsOf((db) => withTenant(db, ctx(), (tx) => listNewest(tx, tenant.tenantId), { oneFlush: true }));
    expect(count.turns).toBe(1);
  });

  it('the same read not declared: 2 turns (COMMIT waits for the work\'s promise)', async () => {
    const count = await turnsOf((db) => withTenant(db, ctx(), (tx) => listNewest(tx, tenant.tenantId)));
    expect(count.turns).toBe(2);
  });

  it('a read with a dependent query: 2 turns', async () => {
    const count = await turnsOf((db) =>
      withTenant(db, ctx(), async (tx, end) => {
        const [newest] = await listNewest(tx, tenant.tenantId);
        void end.commitAfterBurst();
        return tx`select count(*)::int as n from app.documents where tenant_id = ${tenant.tenantId} and id <> ${newest?.id ?? randomUUID()}`;
      }),
    );
    expect(count.turns).toBe(2);
  });

  it('a write through withTenant (audit row + insert, then COMMIT): at most 3 turns', async () => {
    const count = await turnsOf((db, i) => {
      const context = ctx();
      return withTenant(db, context, (tx) => insertDocument(tx, context, `trips-${i}-${randomUUID()}.pdf`));
    });
    expect(count.turns).toBeLessThanOrEqual(3);
    expect(count.turns).toBe(3); // audit row, then the insert, awaited one after the other; COMMIT
  });

  describe('through the wrapper (functions/core/handler.ts), as app_runtime', () => {
    const deps = (db: Sql): Partial<HandlerDependencies> => ({ sql: () => db, authenticator: () => trustingAuthenticator });
    const caller = () => ({ userId: tenant.members.user, role: 'user' as const, tenantId: tenant.tenantId });

    it('a whole GET documents (context, status guard, list, request meter, COMMIT): 1 turn', async () => {
      const count = await turnsOf(async (db) => {
        const result = await route(routes.listDocuments, listDocuments, deps(db))(
          eventFor(routes.listDocuments, { pathParameters: { tenantId: tenant.tenantId }, caller: caller() }),
        );
        if (result.statusCode !== 200) throw new Error(`GET documents answered ${result.statusCode}`);
      });
      expect(count.turns).toBe(1);
    });

    it('a whole POST usage-events (a write with its audit row and two meters): at most 3 turns', async () => {
      const count = await turnsOf(async (db) => {
        const result = await route(routes.recordUsageEvent, recordUsageEvent, deps(db))(
          eventFor(routes.recordUsageEvent, {
            pathParameters: { tenantId: tenant.tenantId },
            caller: caller(),
            body: { metric: 'ai_tokens', quantity: 1, idempotencyKey: randomUUID() },
          }),
        );
        if (result.statusCode !== 202) throw new Error(`POST usage-events answered ${result.statusCode}`);
      });
      expect(count.turns).toBeLessThanOrEqual(3);
    });
  });
});

describe('a pipelined transaction keeps its guarantees', () => {
  let admin: Sql;
  let db: Sql;
  let tenant: TenantFixture;

  beforeAll(async () => {
    admin = adminSql();
    // One connection: a connection that was not released would make every later test wait for ever.
    db = lambdaLikeClient(RUNTIME_URL);
    tenant = await createTenant(admin, uniqueTenantId('pipelined'));
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  const documentsNamed = async (name: string) =>
    (await admin<{ n: number }[]>`select count(*)::int as n from app.documents where tenant_id = ${tenant.tenantId} and name = ${name}`)[0]!.n;

  it('a failing guard in the same flush stops the work: its error, nothing of the work persists', async () => {
    const gone = await createTenant(admin, uniqueTenantId('pipelined-inactive'));
    await admin`update app.members set status = 'inactive' where tenant_id = ${gone.tenantId} and user_id = ${gone.members.user}`;
    const ctx = contextFor(gone);
    const name = `guarded-${randomUUID()}.pdf`;
    let answered: unknown;
    const outcome = withTenant(
      db,
      ctx,
      async (tx) => {
        const guard = tx`select app.assert_request_allowed()`.execute();
        const insert = insertDocument(tx, ctx, name).then((id) => (answered = id));
        await Promise.all([guard, insert]);
      },
      { oneFlush: true },
    );
    await expect(outcome).rejects.toBeInstanceOf(ForbiddenError);
    expect(answered).toBeUndefined();
    expect(await admin`select 1 from app.documents where tenant_id = ${gone.tenantId} and name = ${name}`).toHaveLength(0);
    expect(await admin`select 1 from app.audit_events where tenant_id = ${gone.tenantId} and request_id = ${ctx.requestId}`).toHaveLength(0);
  });

  it('a failing statement in the same flush as COMMIT rolls back every statement before it', async () => {
    const ctx = contextFor(tenant);
    const name = `failed-flush-${randomUUID()}.pdf`;
    const outcome = withTenant(
      db,
      ctx,
      (tx) =>
        Promise.all([
          tx`insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, request_id)
             values (${ctx.tenantId}, ${ctx.userId}, ${ctx.role}, 'document.create', 'document', ${ctx.requestId})`,
          tx`insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
             values (${ctx.tenantId}, ${name}, 'application/pdf', 1, ${ctx.userId})`,
          tx`select 1 / 0`,
        ]),
      { oneFlush: true },
    );
    await expect(outcome).rejects.toMatchObject({ code: '22012' });
    expect(await documentsNamed(name)).toBe(0);
    expect(await admin`select 1 from app.audit_events where tenant_id = ${tenant.tenantId} and request_id = ${ctx.requestId}`).toHaveLength(0);
  });

  it('an error thrown by the work after its statements succeeded rolls them back', async () => {
    const ctx = contextFor(tenant);
    const name = `thrown-${randomUUID()}.pdf`;
    const outcome = withTenant(db, ctx, async (tx) => {
      await insertDocument(tx, ctx, name);
      throw new Error('the work failed');
    });
    await expect(outcome).rejects.toThrow('the work failed');
    expect(await documentsNamed(name)).toBe(0);
  });

  it('rolls back on the same connection when the work fails with an error that looks like a network one (an AWS call\'s)', async () => {
    const ctx = contextFor(tenant);
    const name = `network-coded-${randomUUID()}.pdf`;
    const outcome = withTenant(db, ctx, async (tx) => {
      await insertDocument(tx, ctx, name);
      throw Object.assign(new Error('storage is not reachable'), { code: 'ECONNREFUSED' });
    });
    // The database error map takes the network code for an unreachable service (503); the cause is the work's.
    await expect(outcome).rejects.toMatchObject({ status: 503, cause: { message: 'storage is not reachable' } });
    // The one connection of the client: had it gone back to the pool inside the transaction, this
    // transaction's COMMIT would commit the insert above.
    await withTenant(db, contextFor(tenant), (tx) => tx`select 1`);
    expect(await documentsNamed(name)).toBe(0);
  });

  it('a statement error the work swallows still rolls the transaction back and fails it', async () => {
    const ctx = contextFor(tenant);
    const name = `swallowed-${randomUUID()}.pdf`;
    const outcome = withTenant(db, ctx, async (tx) => {
      await insertDocument(tx, ctx, name);
      await tx`select 1 / 0`.catch(() => undefined);
      return 'done';
    });
    await expect(outcome).rejects.toMatchObject({ code: '22012' });
    expect(await documentsNamed(name)).toBe(0);
  });

  it('sets the tenant context for every statement: first flush, later turns and the flush with COMMIT', async () => {
    const ctx = contextFor(tenant);
    const setting = (tx: Tx) =>
      tx<{ tenant: string; role: string; request: string }[]>`
        select current_setting('app.tenant_id', true) as tenant, current_setting('app.role', true) as role,
               current_setting('app.request_id', true) as request`.then(([row]) => row!);
    const seen = await withTenant(db, ctx, async (tx, end) => {
      const first = await Promise.all([setting(tx), setting(tx)]);
      const second = await setting(tx);
      void end.commitAfterBurst();
      const last = await setting(tx);
      return [...first, second, last];
    });
    expect(seen).toHaveLength(4);
    for (const row of seen) expect(row).toEqual({ tenant: tenant.tenantId, role: 'user', request: ctx.requestId });
    // Transaction-local: nothing is left on the connection for the next transaction.
    const [after] = await db<{ tenant: string | null }[]>`select current_setting('app.tenant_id', true) as tenant`;
    expect(after!.tenant ?? '').toBe('');
  });

  it('refuses a statement sent after COMMIT was queued, and never runs it', async () => {
    const ctx = contextFor(tenant);
    const name = `late-${randomUUID()}.pdf`;
    let late: unknown;
    const outcome = withTenant(
      db,
      ctx,
      async (tx) => {
        await listNewest(tx, tenant.tenantId);
        // Too late: COMMIT left with the list. Without the gate this insert would run after COMMIT,
        // outside the transaction and without the tenant context.
        await tx`insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
                 values (${ctx.tenantId}, ${name}, 'application/pdf', 1, ${ctx.userId})`.catch((error: unknown) => {
          late = error;
          throw error;
        });
      },
      { oneFlush: true },
    );
    await expect(outcome).rejects.toBeInstanceOf(TransactionShapeError);
    expect(late).toBeInstanceOf(TransactionShapeError);
    expect(await documentsNamed(name)).toBe(0);
  });

  it('refuses a statement made before COMMIT but run after it', async () => {
    const ctx = contextFor(tenant);
    let kept: Promise<unknown> | undefined;
    await withTenant(db, ctx, async (tx) => {
      kept = tx`select current_setting('app.tenant_id', true) as tenant`;
      return listNewest(tx, tenant.tenantId);
    });
    await expect(kept).rejects.toBeInstanceOf(TransactionShapeError);
  });

  it('a one-flush GET whose work fails (a bad cursor) answers 400 and counts nothing: the meter rolls back', async () => {
    const counted = async () =>
      (await admin<{ used: number }[]>`
        select coalesce(sum(used), 0)::int as used from app.usage_counters where tenant_id = ${tenant.tenantId} and metric = 'api_requests'`)[0]!.used;
    const list = route(routes.listDocuments, listDocuments, { sql: () => db, authenticator: () => trustingAuthenticator });
    const event = (query?: Record<string, string>) =>
      eventFor(routes.listDocuments, { pathParameters: { tenantId: tenant.tenantId }, query, caller: { userId: tenant.members.user, role: 'user', tenantId: tenant.tenantId } });
    const before = await counted();
    expect((await list(event({ cursor: 'abc' }))).statusCode).toBe(400);
    expect(await counted()).toBe(before);
    expect((await list(event())).statusCode).toBe(200);
    expect(await counted()).toBe(before + 1);
  });

  it('releases its reserved connection on every path: the one-connection client still serves', async () => {
    const ctx = contextFor(tenant);
    const failures = [
      withTenant(db, ctx, async () => {
        throw new Error('thrown before any statement');
      }),
      withTenant(db, ctx, (tx) => tx`select 1 / 0`, { oneFlush: true }),
      withTenant(db, ctx, async (tx) => {
        await tx`select 1`;
        await tx`select 1 / 0`;
      }),
      withTenant(db, ctx, async (tx, end) => {
        await end.commitAfterBurst(() => {
          throw new Error('refused as COMMIT is queued');
        });
        return tx`select 1`;
      }),
    ];
    const settled = await Promise.allSettled(failures);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    const [row] = await withTenant(db, ctx, (tx) => tx<{ ok: number }[]>`select 1 as ok`, { oneFlush: true });
    expect(row).toEqual({ ok: 1 });
  });
});
