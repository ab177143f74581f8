/**
 * Idempotency-Key over HTTP on the local stack (real Postgres, the emulator): a retried create with the
 * same key and body replays the first answer and changes nothing more (one row, one count, one audit
 * event); the key with another body → 409; concurrent requests with one key create once; another
 * tenant's same key is its own; a malformed key → 400 and nothing changed; offboarding removes a
 * tenant's stored answers. Each test works in a tenant onboarded for this file, so counts are exact
 * while other files write to the seed tenants.
 */
import { randomUUID } from 'node:crypto';
import { signInByEmail } from '../../bin/stack/identity';
import type { Sql } from '../../functions/core/db';
import { adminSql } from '../support/db';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;
let admin: Sql;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const superadmin = { role: 'superadmin' as const };

/** A tenant onboarded for one test, and its first admin's token. */
interface Fresh {
  readonly id: string;
  readonly token: string;
  readonly email: string;
}

async function freshTenant(label: string): Promise<Fresh> {
  const id = `idem-${label}-${randomUUID().slice(0, 8)}`;
  const email = `first-admin@${id}.example`;
  const response = await stack.call('/api/tenants', { method: 'POST', as: superadmin, json: { id, name: `Tenant ${id}`, planId: 'pro', admin: { email } } });
  expect(response.status).toBe(201);
  const token = await signInByEmail({ endpoint: stack.endpoint, region: stack.region, credentials }, { clientId: stack.clientId, email, password: stack.password });
  return { id, token, email };
}

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly location: string | null;
  readonly replayed: string | null;
  readonly contentType: string | null;
}

/** A POST with a bearer token, a JSON body (when given) and an Idempotency-Key (when given). */
async function post(path: string, token: string, json: unknown, key?: string): Promise<Answer> {
  const response = await stack.fetch(path, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  return {
    status: response.status,
    text: await response.text(),
    location: response.headers.get('location'),
    replayed: response.headers.get('idempotent-replayed'),
    contentType: response.headers.get('content-type'),
  };
}

/** What a tenant holds: rows that creates add, the counters they move, and its audit events. */
async function stateOf(tenantId: string): Promise<Record<string, number>> {
  const [row] = await admin<Record<string, number>[]>`
    select (select count(*)::int from app.documents where tenant_id = ${tenantId}) as documents,
           (select count(*)::int from app.members where tenant_id = ${tenantId}) as members,
           (select count(*)::int from app.exports where tenant_id = ${tenantId}) as exports,
           (select count(*)::int from app.jobs where tenant_id = ${tenantId}) as jobs,
           (select count(*)::int from app.usage_events where tenant_id = ${tenantId}) as usage_events,
           (select count(*)::int from app.audit_events where tenant_id = ${tenantId}) as audit_events,
           (select count(*)::int from app.idempotency_keys where tenant_id = ${tenantId}) as idempotency_keys,
           (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenantId} and metric = 'api_requests') as api_requests,
           (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenantId} and metric = 'documents') as documents_used,
           (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenantId} and metric = 'storage_bytes') as storage_used,
           (select coalesce(sum(used), 0)::int from app.usage_counters where tenant_id = ${tenantId} and metric = 'ai_tokens') as ai_tokens`;
  return row!;
}

const documentBody = (name = 'report.pdf') => ({ name, contentType: 'application/pdf', sizeBytes: 2048 });

beforeAll(async () => {
  [stack, admin] = await Promise.all([startE2eStack(), Promise.resolve(adminSql())]);
});

afterAll(async () => {
  await Promise.all([stack?.stop(), admin?.end()]);
});

describe('Idempotency-Key on creates', () => {
  let tenant: Fresh;
  beforeAll(async () => {
    tenant = await freshTenant('docs');
  });

  it("answers a member who may no longer act 403 for a used key, whether the body is the key's or another: the guard comes first", async () => {
    const own = await freshTenant('guard');
    const key = `guard-${randomUUID()}`;
    expect((await post(`/api/${own.id}/documents`, own.token, documentBody(), key)).status).toBe(201);
    await admin`update app.tenants set status = 'suspended' where id = ${own.id}`;
    try {
      const before = await stateOf(own.id);
      const replay = await post(`/api/${own.id}/documents`, own.token, documentBody(), key);
      const other = await post(`/api/${own.id}/documents`, own.token, documentBody('other.pdf'), key);
      expect([replay.status, other.status]).toEqual([403, 403]);
      expect(replay.replayed).toBeNull();
      expect(await stateOf(own.id)).toEqual(before);
    } finally {
      await admin`update app.tenants set status = 'active' where id = ${own.id}`;
    }
  });

  it('replays the first answer of a retried document create (status, body, Location) and creates, meters and audits once', async () => {
    const before = await stateOf(tenant.id);
    const key = `doc-${randomUUID()}`;
    const first = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    const retry = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    const after = await stateOf(tenant.id);

    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    expect(retry).toEqual({ ...first, replayed: 'true' });
    expect(after).toEqual({
      ...before,
      documents: before.documents! + 1,
      documents_used: before.documents_used! + 1,
      storage_used: before.storage_used! + 2048,
      api_requests: before.api_requests! + 1,
      audit_events: before.audit_events! + 1,
      idempotency_keys: before.idempotency_keys! + 1,
    });
  });

  it('replays a body sent with its fields in another order (the body is compared canonically)', async () => {
    const key = `doc-${randomUUID()}`;
    const first = await post(`/api/${tenant.id}/documents`, tenant.token, { name: 'a.txt', contentType: 'text/plain', sizeBytes: 5 }, key);
    const retry = await post(`/api/${tenant.id}/documents`, tenant.token, { sizeBytes: 5, contentType: 'text/plain', name: 'a.txt' }, key);
    expect(first.status).toBe(201);
    expect(retry.text).toBe(first.text);
    expect(retry.replayed).toBe('true');
  });

  it('refuses the key with another body (409 problem+json) and changes nothing', async () => {
    const key = `doc-${randomUUID()}`;
    expect((await post(`/api/${tenant.id}/documents`, tenant.token, documentBody('one.pdf'), key)).status).toBe(201);
    const before = await stateOf(tenant.id);
    const other = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody('two.pdf'), key);
    expect(other.status).toBe(409);
    expect(other.contentType).toBe('application/problem+json');
    expect(JSON.parse(other.text)).toMatchObject({ status: 409, detail: expect.stringMatching(/Idempotency-Key/) });
    expect(await stateOf(tenant.id)).toEqual(before);
  });

  it('creates exactly once when requests with one key arrive together; the others replay or are told it is in progress', async () => {
    const before = await stateOf(tenant.id);
    const key = `doc-${randomUUID()}`;
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(`/api/${tenant.id}/documents`, tenant.token, documentBody('race.pdf'), key)));
    const after = await stateOf(tenant.id);

    expect(after.documents).toBe(before.documents! + 1);
    expect(after.documents_used).toBe(before.documents_used! + 1);
    const created = answers.filter((a) => a.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((a) => a.text)).size).toBe(1);
    expect(answers.every((a) => a.status === 201 || a.status === 409)).toBe(true);
    // A request refused while the first was in progress gets the replay when it retries.
    const later = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody('race.pdf'), key);
    expect(later.text).toBe(created[0]!.text);
  });

  it("keeps another tenant's use of the same key apart: each tenant creates its own document", async () => {
    const other = await freshTenant('other');
    const key = `shared-${randomUUID()}`;
    const mine = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    const theirs = await post(`/api/${other.id}/documents`, other.token, documentBody(), key);
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.replayed).toBeNull();
    expect(theirs.location).not.toBe(mine.location);
    expect(theirs.location).toMatch(new RegExp(`^/api/${other.id}/documents/`));
    expect((await stateOf(other.id)).documents).toBe(1);
  });

  it.each([
    ['empty', ''],
    ['with a space', 'a key'],
    ['longer than 255 characters', 'k'.repeat(256)],
    ['with a tab', 'a\tb'],
  ])('refuses a malformed key (%s) with 400 and changes nothing', async (_name, key) => {
    const before = await stateOf(tenant.id);
    const answer = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 400, detail: expect.stringMatching(/Idempotency-Key/) });
    expect(await stateOf(tenant.id)).toEqual(before);
  });

  it('accepts the longest key the rule allows (255 printable characters)', async () => {
    const key = `~${'K'.repeat(218)}${randomUUID()}`;
    expect(key).toHaveLength(255);
    const first = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    expect(first.status).toBe(201);
    expect((await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key)).text).toBe(first.text);
  });

  it('stores nothing for a refused create: the same key may be used again once the request is valid', async () => {
    const key = `doc-${randomUUID()}`;
    const refused = await post(`/api/${tenant.id}/documents`, tenant.token, { ...documentBody(), sizeBytes: 0 }, key);
    expect(refused.status).toBe(400);
    const created = await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), key);
    expect(created.status).toBe(201);
    expect(created.replayed).toBeNull();
  });

  it('replays a member create once, with the answer stored sealed (no plaintext email in the database)', async () => {
    const before = await stateOf(tenant.id);
    const email = `idem-${randomUUID().slice(0, 8)}@example.com`;
    const key = `member-${randomUUID()}`;
    const first = await post(`/api/${tenant.id}/members`, tenant.token, { email, role: 'user', name: 'Ida' }, key);
    const retry = await post(`/api/${tenant.id}/members`, tenant.token, { email, role: 'user', name: 'Ida' }, key);
    expect(first.status).toBe(201);
    expect(retry).toEqual({ ...first, replayed: 'true' });
    expect((await stateOf(tenant.id)).members).toBe(before.members! + 1);

    const [stored] = await admin<{ body: string | null; sealed: Buffer | null }[]>`
      select body, body_sealed as sealed from app.idempotency_keys where tenant_id = ${tenant.id} and key = ${key}`;
    expect(stored!.body).toBeNull();
    expect(stored!.sealed!.toString('latin1')).not.toContain(email);
  });

  it('replays an export request (202, the same export) with one export and one job', async () => {
    const before = await stateOf(tenant.id);
    const key = `export-${randomUUID()}`;
    const first = await post(`/api/${tenant.id}/exports`, tenant.token, undefined, key);
    const retry = await post(`/api/${tenant.id}/exports`, tenant.token, undefined, key);
    expect(first.status).toBe(202);
    expect(retry).toEqual({ ...first, replayed: 'true' });
    const after = await stateOf(tenant.id);
    expect(after.exports).toBe(before.exports! + 1);
    expect(after.jobs).toBe(before.jobs! + 1);
  });

  it('replays a usage event sent with the header as its first answer, counted once', async () => {
    const before = await stateOf(tenant.id);
    const key = `usage-${randomUUID()}`;
    const body = { metric: 'ai_tokens', quantity: 42, idempotencyKey: `body-${randomUUID()}` };
    const first = await post(`/api/${tenant.id}/usage-events`, tenant.token, body, key);
    const retry = await post(`/api/${tenant.id}/usage-events`, tenant.token, body, key);
    expect(first.status).toBe(202);
    expect(JSON.parse(first.text)).toMatchObject({ duplicate: false });
    expect(retry).toEqual({ ...first, replayed: 'true' });
    const after = await stateOf(tenant.id);
    expect(after.ai_tokens).toBe(before.ai_tokens! + 42);
    expect(after.usage_events).toBe(before.usage_events! + 1);
  });
});

describe('Idempotency-Key on tenant onboarding (per platform operator)', () => {
  it('replays a retried onboarding (201, same body and Location), onboards one tenant, and refuses the key with another body', async () => {
    const id = `idem-onb-${randomUUID().slice(0, 8)}`;
    const body = { id, name: 'Onboarded once', planId: 'pro', admin: { email: `first@${id}.example`, name: 'First' } };
    const token = await stack.token(undefined, 'superadmin');
    const key = `onboard-${randomUUID()}`;
    const first = await post('/api/tenants', token, body, key);
    const retry = await post('/api/tenants', token, body, key);
    expect(first.status).toBe(201);
    expect(first.location).toBe(`/api/tenants/${id}`);
    expect(retry).toEqual({ ...first, replayed: 'true' });
    const state = await stateOf(id);
    expect(state.members).toBe(1);
    expect(state.idempotency_keys).toBe(1);

    const other = await post('/api/tenants', token, { ...body, id: `${id}-b` }, key);
    expect(other.status).toBe(409);
    const [exists] = await admin`select 1 from app.tenants where id = ${`${id}-b`}`;
    expect(exists).toBeUndefined();
    // Without the key, the retry is the 409 of an id in use: the key is what makes the retry safe.
    expect((await post('/api/tenants', token, body)).status).toBe(409);
  });

  it('onboards one tenant when requests with one key arrive together; each answer is that tenant or "in progress"', async () => {
    const id = `idem-race-${randomUUID().slice(0, 8)}`;
    const body = { id, name: 'Raced', planId: 'pro', admin: { email: `first@${id}.example` } };
    const token = await stack.token(undefined, 'superadmin');
    const key = `onboard-${randomUUID()}`;
    const answers = await Promise.all(Array.from({ length: 3 }, () => post('/api/tenants', token, body, key)));
    const created = answers.filter((a) => a.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((a) => a.text)).size).toBe(1);
    expect(answers.every((a) => a.status === 201 || a.status === 409)).toBe(true);
    expect((await stateOf(id)).members).toBe(1);
    expect((await post('/api/tenants', token, body, key)).text).toBe(created[0]!.text);
  });

  it("offboarding deletes the tenant's stored answers with its other rows", async () => {
    const tenant = await freshTenant('gone');
    expect((await post(`/api/${tenant.id}/documents`, tenant.token, documentBody(), `doc-${randomUUID()}`)).status).toBe(201);
    expect((await stateOf(tenant.id)).idempotency_keys).toBe(1);

    expect((await stack.call(`/api/tenants/${tenant.id}`, { method: 'DELETE', as: superadmin })).status).toBe(202);
    const deadline = Date.now() + 60_000;
    let report: { rows?: Record<string, number> } | undefined;
    while (Date.now() < deadline) {
      const response = await stack.call(`/api/tenants/${tenant.id}`, { as: superadmin });
      const body = (await response.json()) as { status: string; deletionReport?: { rows?: Record<string, number> } };
      if (body.status === 'deleted') {
        report = body.deletionReport;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(report?.rows).toMatchObject({ idempotency_keys: 1 });
    expect((await stateOf(tenant.id)).idempotency_keys).toBe(0);
  });
});
