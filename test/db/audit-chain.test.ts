/**
 * The tamper-evident audit trail (migration 0008): events written by app_runtime are chained per tenant
 * by the sealer (as app_sealer), and the verifier (bin/audit) names the tenant and the first bad event
 * after an edit, a deletion or a reorder made with owner access.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { chainHash, verifyAuditChains, type TenantVerification } from '../../bin/audit/chain';
import { work as listAuditEvents } from '../../functions/audit/list';
import { withTenant, type Sql } from '../../functions/core/db';
import { route } from '../../functions/core/handler';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, audit, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

describe('the audit hash chain', () => {
  let admin: Sql;
  let db: Sql;

  /** One sealer run, as the sealer role. */
  const seal = async (): Promise<number> => {
    const [, [row]] = (await admin.begin((tx) => [tx`set local role app_sealer`, tx`select app.seal_audit_events()::int as sealed`])) as unknown as [
      unknown,
      [{ sealed: number }],
    ];
    return row.sealed;
  };
  /** Seals until nothing of `tenantId` is left unsealed (another test's open transaction can hold the window). */
  const sealAll = async (tenantId: string): Promise<void> => {
    for (let attempt = 0; attempt < 100; attempt++) {
      await seal();
      const [{ left }] = await admin<[{ left: number }]>`
        select count(*)::int as left from app.audit_events e
         where e.tenant_id = ${tenantId}
           and not exists (select 1 from app.audit_chain c where c.tenant_id = e.tenant_id and c.event_id = e.id)`;
      if (left === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`events of ${tenantId} stayed unsealed`);
  };
  const verify = async (tenantId: string): Promise<TenantVerification> => (await verifyAuditChains(admin, { tenantId }))[0]!;
  const writeEvents = async (t: TenantFixture, count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const ctx = contextFor(t, 'org_admin');
      await withTenant(db, ctx, (tx) => audit(tx, ctx, `document.create.${i}`, randomUUID()));
    }
  };
  const links = (tenantId: string) =>
    admin<{ seq: string; event_id: string; hash: string }[]>`
      select c.seq::text, c.event_id::text, encode(c.hash, 'hex') as hash from app.audit_chain c where c.tenant_id = ${tenantId} order by c.seq`;

  beforeAll(() => {
    admin = adminSql();
    db = runtimeSql({ max: 20 });
  });
  afterAll(async () => {
    await db.end();
    await admin.end();
  });

  it('verifies an untouched trail and reports its head', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-ok'));
    await writeEvents(t, 5);
    await sealAll(t.tenantId);

    const result = await verify(t.tenantId);
    const chain = await links(t.tenantId);

    expect(result).toEqual({ tenantId: t.tenantId, verified: 5, head: chain[4]!.hash, unsealed: 0 });
    expect(chain.map((l) => l.seq)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('computes the same link hash in SQL as the verifier does in TypeScript', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-hash'));
    const ctx = contextFor(t, 'org_admin');
    await withTenant(db, ctx, (tx) => tx`
      insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, resource_id, request_id, detail)
      values (${t.tenantId}, ${ctx.userId}, 'org_admin', 'member.invite', 'member', null, ${ctx.requestId},
              ${tx.json({ role: 'user', note: 'ünïcödé "quoted"', n: 1.50 })})`);
    await sealAll(t.tenantId);
    const [e] = await admin<{ id: string; occurred_at: string; detail: string; hash: string }[]>`
      select e.id::text, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at,
             e.detail::text as detail, encode(c.hash, 'hex') as hash
        from app.audit_events e join app.audit_chain c on c.tenant_id = e.tenant_id and c.event_id = e.id
       where e.tenant_id = ${t.tenantId}`;

    const expected = chainHash(
      {
        tenantId: t.tenantId, seq: '1', id: e!.id, occurredAt: e!.occurred_at, actorUserId: ctx.userId, actorRole: 'org_admin',
        action: 'member.invite', resourceType: 'member', resourceId: null, requestId: ctx.requestId, outcome: 'success', detail: e!.detail,
      },
      null,
    );

    expect(e!.hash).toBe(expected);
  });

  it('names the tenant and the event when an event was edited after it was sealed', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-edit'));
    await writeEvents(t, 4);
    await sealAll(t.tenantId);
    const chain = await links(t.tenantId);

    await admin`update app.audit_events set detail = '{"forged": true}' where tenant_id = ${t.tenantId} and id = ${chain[2]!.event_id}`;
    const result = await verify(t.tenantId);

    expect(result.failure).toEqual({ seq: '3', eventId: chain[2]!.event_id, reason: expect.stringMatching(/changed/) });
    expect(result.verified).toBe(2);
  });

  it('names the tenant and the event when an event was deleted', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-delete'));
    await writeEvents(t, 4);
    await sealAll(t.tenantId);
    const chain = await links(t.tenantId);

    await admin`delete from app.audit_events where tenant_id = ${t.tenantId} and id = ${chain[1]!.event_id}`;
    const result = await verify(t.tenantId);

    expect(result.failure).toEqual({ seq: '2', eventId: chain[1]!.event_id, reason: expect.stringMatching(/deleted/) });
  });

  it('names the event after the gap when an event was deleted together with its link', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-cut'));
    await writeEvents(t, 4);
    await sealAll(t.tenantId);
    const chain = await links(t.tenantId);

    await admin.begin((tx) => [
      tx`delete from app.audit_chain where tenant_id = ${t.tenantId} and seq = 2`,
      // Closes the gap in two steps: one `seq = seq - 1` would collide with the next link whenever
      // Postgres happens to update the rows in descending order (the primary key is checked per row).
      tx`update app.audit_chain set seq = seq + 1000000 where tenant_id = ${t.tenantId} and seq > 2`,
      tx`update app.audit_chain set seq = seq - 1000001 where tenant_id = ${t.tenantId} and seq > 1000000`,
      tx`delete from app.audit_events where tenant_id = ${t.tenantId} and id = ${chain[1]!.event_id}`,
    ]);
    const result = await verify(t.tenantId);

    expect(result.failure).toEqual({ seq: '2', eventId: chain[2]!.event_id, reason: expect.stringMatching(/does not link/) });
  });

  it('names the tenant and the event when two events were swapped', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-swap'));
    await writeEvents(t, 4);
    await sealAll(t.tenantId);
    const chain = await links(t.tenantId);

    await admin.begin((tx) => [
      tx`update app.audit_chain set seq = 1000000 where tenant_id = ${t.tenantId} and seq = 2`,
      tx`update app.audit_chain set seq = 2 where tenant_id = ${t.tenantId} and seq = 3`,
      tx`update app.audit_chain set seq = 3 where tenant_id = ${t.tenantId} and seq = 1000000`,
    ]);
    const result = await verify(t.tenantId);

    expect(result.failure).toEqual({ seq: '2', eventId: chain[2]!.event_id, reason: expect.stringMatching(/does not link/) });
  });

  it('reports events written after the last sealer run as unsealed, not as a failure', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-tail'));
    await writeEvents(t, 2);
    await sealAll(t.tenantId);
    await writeEvents(t, 3);

    const result = await verify(t.tenantId);

    expect(result).toEqual({ tenantId: t.tenantId, verified: 2, head: expect.stringMatching(/^[0-9a-f]{64}$/), unsealed: 3 });
  });

  it('fails on an event kept out of the chain by a forged transaction id', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-skip'));
    await writeEvents(t, 1);
    await sealAll(t.tenantId);
    const ctx = contextFor(t, 'org_admin');
    const [forged] = await withTenant(db, ctx, (tx) => tx<{ id: string }[]>`
      insert into app.audit_events (tenant_id, actor_user_id, actor_role, action, resource_type, request_id, xact)
      values (${t.tenantId}, ${ctx.userId}, 'org_admin', 'document.delete', 'document', ${ctx.requestId}, '1'::xid8)
      returning id::text`);
    await seal();

    const result = await verify(t.tenantId);

    expect(result.failure).toEqual({ seq: '-', eventId: forged!.id, reason: expect.stringMatching(/never sealed/) });
  });

  it('chains 50 concurrent transactions of one tenant into one unforked chain that verifies', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-race'));
    let sealing = true;
    // A sealer running all along, as in a deployment, races the writers.
    const sealer = (async () => {
      while (sealing) await seal();
    })();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const ctx = contextFor(t, 'org_admin');
        return withTenant(db, ctx, async (tx) => {
          await audit(tx, ctx, `usage.record.${i}`);
          // Stagger commits so that commit order differs from insert order.
          await tx`select pg_sleep(${(i % 7) / 1000})`;
        });
      }),
    );
    sealing = false;
    await sealer;
    await sealAll(t.tenantId);

    const chain = await links(t.tenantId);
    const result = await verify(t.tenantId);

    expect(chain.map((l) => Number(l.seq))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(chain.map((l) => l.event_id)).size).toBe(50);
    expect(result).toEqual({ tenantId: t.tenantId, verified: 50, head: chain[49]!.hash, unsealed: 0 });
  });

  it('npm run audit:verify prints one line per tenant and exits 1 naming the tenant and the edited event', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-cli'));
    await writeEvents(t, 3);
    await sealAll(t.tenantId);
    const chain = await links(t.tenantId);
    const run = (tenantId: string) =>
      promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, '../../bin/audit-verify.ts'), '--tenant', tenantId], {
        env: { ...process.env, DATABASE_URL: process.env.TEST_ADMIN_DATABASE_URL },
      }).then(
        ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );

    const untouched = await run(t.tenantId);
    await admin`update app.audit_events set action = 'forged' where tenant_id = ${t.tenantId} and id = ${chain[1]!.event_id}`;
    const edited = await run(t.tenantId);

    expect(untouched).toEqual({ code: 0, stdout: `ok    ${t.tenantId}: 3 events verified, head ${chain[2]!.hash}, 0 unsealed\n`, stderr: '' });
    expect(edited.code).toBe(1);
    expect(edited.stdout).toBe(
      `FAIL  ${t.tenantId}: event ${chain[1]!.event_id} (seq 2) the event was changed after it was sealed; 1 events verified, head ${chain[0]!.hash}, 0 unsealed\n`,
    );
    expect(edited.stderr).toContain(t.tenantId);
  });

  it('lists each event with its link in the chain, null until it is sealed', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-list'));
    await writeEvents(t, 2);
    await sealAll(t.tenantId);
    await writeEvents(t, 1);
    const chain = await links(t.tenantId);
    const list = route(routes.listAuditEvents, listAuditEvents, { sql: () => db, authenticator: () => trustingAuthenticator });

    const result = await list(
      eventFor(routes.listAuditEvents, {
        pathParameters: { tenantId: t.tenantId },
        caller: { userId: t.members.org_admin, role: 'org_admin', tenantId: t.tenantId },
      }),
    );
    const items = (json(result) as { items: { id: string; seq: number | null; prevHash: string | null; hash: string | null }[] }).items;

    expect(result.statusCode).toBe(200);
    expect(items.map(({ id, seq, prevHash, hash }) => ({ id, seq, prevHash, hash }))).toEqual([
      { id: expect.any(String), seq: null, prevHash: null, hash: null },
      { id: chain[1]!.event_id, seq: 2, prevHash: chain[0]!.hash, hash: chain[1]!.hash },
      { id: chain[0]!.event_id, seq: 1, prevHash: null, hash: chain[0]!.hash },
    ]);
  });

  it('keeps app_runtime from writing links and the sealer from changing events', async () => {
    const t = await createTenant(admin, uniqueTenantId('chain-grants'));
    const ctx = contextFor(t, 'org_admin');

    const runtimeLink = withTenant(db, ctx, (tx) => tx`
      insert into app.audit_chain (tenant_id, seq, event_id, hash) values (${t.tenantId}, 1, ${randomUUID()}, sha256('x'))`);
    const sealerEdit = admin.begin((tx) => [tx`set local role app_sealer`, tx`update app.audit_events set detail = '{}'`]);
    const sealerUnlink = admin.begin((tx) => [tx`set local role app_sealer`, tx`delete from app.audit_chain`]);

    await expect(runtimeLink).rejects.toThrow(/permission denied/);
    await expect(sealerEdit).rejects.toThrow(/permission denied/);
    await expect(sealerUnlink).rejects.toThrow(/permission denied/);
  });
});
