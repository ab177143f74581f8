/**
 * The stored Idempotency-Key answers (migration 0010) as the runtime role sees them: a tenant's answers
 * are its own (row-level security), an operator's key is the control plane's only, a key cannot be
 * stored without the request's audit event, and only the control plane may drop an expired answer
 * without one.
 */
import { randomUUID } from 'node:crypto';
import { withTenant, type Sql } from '../../functions/core/db';
import { claimKey, fingerprintOf, rememberAnswer, type IdempotentRequest } from '../../functions/core/idempotency';
import { sweepExpiredKeys } from '../../functions/jobs/sweep';
import { adminSql, audit, contextFor, controlSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

let admin: Sql;
let runtime: Sql;
let control: Sql;
let a: TenantFixture;
let b: TenantFixture;

const noKeys = () => Promise.reject(new Error('no sealed answers here'));
const request = (key: string, body: unknown = { n: 1 }): IdempotentRequest => ({
  key,
  fingerprint: fingerprintOf({ method: 'POST', routeId: 'createDocument', callerId: 'u', body }),
});

/** Stores an answer for `key` in `fixture`'s tenant as the runtime, with the request's audit event. */
async function store(fixture: TenantFixture, key: string): Promise<void> {
  const ctx = contextFor(fixture);
  await withTenant(runtime, ctx, async (tx) => {
    await audit(tx, ctx, 'document.create');
    await rememberAnswer(tx, fixture.tenantId, request(key), { status: 201, body: { id: key }, headers: { location: `/x/${key}` } });
  });
}

beforeAll(async () => {
  admin = adminSql();
  runtime = runtimeSql();
  control = controlSql();
  [a, b] = await Promise.all([createTenant(admin, uniqueTenantId('idem-a')), createTenant(admin, uniqueTenantId('idem-b'))]);
});
afterAll(() => Promise.all([admin.end(), runtime.end(), control.end()]));

describe('stored Idempotency-Key answers', () => {
  it("replays a tenant's answer to that tenant only: another tenant with the same key finds nothing", async () => {
    const key = `k-${randomUUID()}`;
    await store(a, key);
    const mine = await withTenant(runtime, contextFor(a), (tx) => claimKey(tx, a.tenantId, request(key), noKeys));
    expect(mine).toEqual({ status: 201, body: { id: key }, headers: { location: `/x/${key}`, 'idempotent-replayed': 'true' } });
    // Even naming a's tenant in the lookup, b's transaction sees no row of a (RLS).
    const theirs = await withTenant(runtime, contextFor(b), (tx) => claimKey(tx, a.tenantId, request(key), noKeys));
    expect(theirs).toBeUndefined();
  });

  it('refuses to store an answer without the audit event of its request', async () => {
    const ctx = contextFor(a);
    await expect(
      withTenant(runtime, ctx, (tx) => rememberAnswer(tx, a.tenantId, request(`k-${randomUUID()}`), { status: 201, body: {} })),
    ).rejects.toThrow(/idempotency_keys needs an audit event/);
  });

  it("hides an operator's key from the runtime, even in the tenant it belongs to", async () => {
    const key = `op-${randomUUID()}`;
    const operatorId = randomUUID();
    await admin`
      insert into app.idempotency_keys (tenant_id, operator_id, key, fingerprint, status, headers, body, expires_at)
      values (${a.tenantId}, ${operatorId}, ${key}, ${Buffer.alloc(32)}, 201, '{}', '{}', now() + interval '1 hour')`;
    const [seen] = await withTenant(runtime, contextFor(a), (tx) => tx<{ count: number }[]>`
      select count(*)::int as count from app.idempotency_keys where key = ${key}`);
    expect(seen!.count).toBe(0);
    const [control_] = await control<{ count: number }[]>`select count(*)::int as count from app.idempotency_keys where key = ${key}`;
    expect(control_!.count).toBe(1);
  });

  it('lets the control plane delete an expired answer without an audit event, and no live one', async () => {
    const expired = `old-${randomUUID()}`;
    const live = `new-${randomUUID()}`;
    await admin`
      insert into app.idempotency_keys (tenant_id, key, fingerprint, status, headers, body, created_at, expires_at)
      values (${a.tenantId}, ${expired}, ${Buffer.alloc(32)}, 201, '{}', '{}', now() - interval '2 days', now() - interval '1 day'),
             (${a.tenantId}, ${live}, ${Buffer.alloc(32)}, 201, '{}', '{}', now(), now() + interval '1 day')`;
    await control.begin((tx) => tx`delete from app.idempotency_keys where key = ${expired}`);
    await expect(control.begin((tx) => tx`delete from app.idempotency_keys where key = ${live}`)).rejects.toThrow(/audit event/);
    const left = await admin<{ key: string }[]>`select key from app.idempotency_keys where key in (${expired}, ${live})`;
    expect(left.map((r) => r.key)).toEqual([live]);
  });

  it('has the scheduled sweep delete every expired answer in batches, and keep the live ones', async () => {
    const keys = Array.from({ length: 5 }, (_, i) => `sweep-${i}-${randomUUID()}`);
    const live = `sweep-live-${randomUUID()}`;
    for (const key of keys) {
      await admin`
        insert into app.idempotency_keys (tenant_id, key, fingerprint, status, headers, body, created_at, expires_at)
        values (${a.tenantId}, ${key}, ${Buffer.alloc(32)}, 201, '{}', '{}', now() - interval '2 days', now() - interval '1 day')`;
    }
    await admin`
      insert into app.idempotency_keys (tenant_id, key, fingerprint, status, headers, body, created_at, expires_at)
      values (${a.tenantId}, ${live}, ${Buffer.alloc(32)}, 201, '{}', '{}', now(), now() + interval '1 day')`;

    const deleted = await sweepExpiredKeys(control);

    expect(deleted).toBeGreaterThanOrEqual(keys.length); // other tests' expired keys go too
    const left = await admin<{ key: string }[]>`select key from app.idempotency_keys where key in ${admin([...keys, live])}`;
    expect(left.map((r) => r.key)).toEqual([live]);
  });
});
