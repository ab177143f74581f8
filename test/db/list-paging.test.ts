/**
 * Every list pages through the real handler, as app_runtime: rows written in one transaction share one
 * timestamp, and each must come back exactly once, in order, one per page. Crafted cursors are a 400
 * problem+json on every list, never a 500.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import type { Pii } from '../../functions/core/pii';
import { work as listDocuments } from '../../functions/documents/list';
import { work as listAuditEvents } from '../../functions/audit/list';
import { work as listMembers } from '../../functions/members/list';
import { work as listTenants } from '../../functions/platform/list-tenants';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, controlSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

type Call = (query: Record<string, string>) => Promise<APIGatewayProxyResult>;

interface Listing {
  readonly items: Record<string, unknown>[];
  readonly nextCursor: string | null;
}

/** Walks a list with limit=1 from `start` until there is no next cursor; returns each item's key. */
async function walk(call: Call, key: (item: Record<string, unknown>) => string, start?: string): Promise<string[]> {
  const seen: string[] = [];
  let cursor = start ?? null;
  for (let pages = 0; pages < 1000; pages++) {
    const result = await call(cursor ? { limit: '1', cursor } : { limit: '1' });
    expect(result.statusCode).toBe(200);
    const page = json(result) as unknown as Listing;
    expect(page.items.length).toBeLessThanOrEqual(1);
    seen.push(...page.items.map(key));
    if (!page.nextCursor) return seen;
    cursor = page.nextCursor;
  }
  throw new Error('the list did not end within 1000 pages');
}

const UUID = '0b0d9c5e-2f0a-4c6e-9d7b-3c1d2e3f4a5b';
const encode = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
/** Crafted cursors around an id that is valid for the list, so that only the crafted part is wrong. */
const crafted = (UUID: string): [string, string][] => [
  ['year 0000', encode(['0000-01-01T00:00:00.000000Z', UUID])],
  ['year 0000 without fraction', encode(['0000-01-01T00:00:00Z', UUID])],
  ['February 30', encode(['2026-02-30T00:00:00.000000Z', UUID])],
  ['February 29 of a common year', encode(['2026-02-29T00:00:00.000000Z', UUID])],
  ['hour 24', encode(['2026-01-01T24:00:00.000000Z', UUID])],
  ['a five-digit year', encode(['12026-01-01T00:00:00.000000Z', UUID])],
  ['infinity', encode(['infinity', UUID])],
  ['a number for the timestamp', encode([1e308, UUID])],
  ['a huge number for the id', encode(['2026-01-01T00:00:00.000000Z', 1e308])],
  ['an object', encode({ at: '2026-01-01T00:00:00.000000Z', id: UUID })],
  ['three elements', encode(['2026-01-01T00:00:00.000000Z', UUID, UUID])],
  ['not base64url', 'not a cursor!'],
  ['base64url of no JSON', Buffer.from('{{{').toString('base64url')],
  ['an overlong cursor', 'A'.repeat(4096)],
];

describe('list paging', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  let control: Sql;
  let t: TenantFixture;
  let operator: string;
  const as = (role: 'org_admin' | 'user' = 'org_admin') => ({ userId: t.members[role], role, tenantId: t.tenantId });

  const documents: Call = (query) =>
    route(routes.listDocuments, listDocuments, deps)(eventFor(routes.listDocuments, { pathParameters: { tenantId: t.tenantId }, caller: as(), query }));
  const auditEvents: Call = (query) =>
    route(routes.listAuditEvents, listAuditEvents, deps)(
      eventFor(routes.listAuditEvents, { pathParameters: { tenantId: t.tenantId }, caller: as(), query }),
    );
  // The fixture tenant has no data key, so the list never unwraps one: a PII provider that refuses proves it.
  const noKeys: Pii = {
    newTenantKey: () => Promise.reject(new Error('not used')),
    forgetTenantKey: () => undefined,
    tenantKeys: () => Promise.reject(new Error('not used')),
  };
  const members: Call = (query) =>
    route(routes.listMembers, listMembers, { ...deps, pii: () => noKeys })(eventFor(routes.listMembers, { pathParameters: { tenantId: t.tenantId }, caller: as(), query }));
  const tenants: Call = (query) =>
    route(routes.listTenants, listTenants, deps)(eventFor(routes.listTenants, { caller: { userId: operator, role: 'superadmin' }, query }));

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 4 });
    control = controlSql();
    deps = { sql: () => db, control: () => control, authenticator: () => trustingAuthenticator };
    t = await createTenant(admin, uniqueTenantId('paging'), 'pro');
    operator = randomUUID();
    await admin`insert into app.platform_operators (user_id) values (${operator})`;
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end(), control.end()]);
  });

  it('returns each document written in one transaction exactly once, newest first, one per page', async () => {
    const ids = await admin.begin(async (tx) => {
      const rows = await tx<{ id: string }[]>`
        insert into app.documents (tenant_id, name, content_type, size_bytes, created_by)
        select ${t.tenantId}, 'same-' || n || '.txt', 'text/plain', 1, ${t.members.user}::uuid from generate_series(1, 4) n
        returning id`;
      return rows.map((r) => r.id);
    });
    const [shared] = await admin<{ n: string }[]>`
      select count(distinct created_at)::text as n from app.documents where tenant_id = ${t.tenantId}`;
    expect(shared?.n).toBe('1');

    const seen = await walk(documents, (d) => d.id as string);
    // Same timestamp: the id breaks the tie, descending like the timestamp.
    expect(seen).toEqual([...ids].sort().reverse());
  });

  it('returns each audit event of one instant exactly once, newest first, one per page', async () => {
    const requestId = randomUUID();
    await admin.begin(async (tx) => {
      await tx`
        insert into app.audit_events (tenant_id, occurred_at, actor_user_id, actor_role, action, resource_type, request_id)
        select ${t.tenantId}, now(), ${t.members.user}::uuid, 'user', 'paging.test', 'document', ${requestId}
          from generate_series(1, 4)`;
    });
    const ours = await admin<{ id: string; occurred_at: string }[]>`
      select id, occurred_at::text from app.audit_events where tenant_id = ${t.tenantId} and request_id = ${requestId}`;
    expect(new Set(ours.map((r) => r.occurred_at)).size).toBe(1);

    // Listing writes nothing to the audit trail, so the walk sees a fixed set of events.
    const all = await admin<{ id: string }[]>`
      select id from app.audit_events where tenant_id = ${t.tenantId} order by occurred_at desc, id desc`;
    const seen = await walk(auditEvents, (e) => e.id as string);
    expect(seen).toEqual(all.map((r) => r.id));
    expect(seen.filter((id) => ours.some((r) => r.id === id))).toEqual(ours.map((r) => r.id).sort().reverse());
  });

  it('returns each member written in one transaction exactly once, oldest first, one per page', async () => {
    const added = [randomUUID(), randomUUID(), randomUUID()];
    await admin.begin(async (tx) => {
      for (const userId of added) {
        await tx`
          insert into app.members (tenant_id, user_id, role, email_ciphertext, email_hmac)
          values (${t.tenantId}, ${userId}, 'user', ${Buffer.from('x')}, ${Buffer.from(userId)})`;
      }
    });
    const expected = await admin<{ user_id: string }[]>`
      select user_id from app.members where tenant_id = ${t.tenantId} order by created_at, user_id`;
    const seen = await walk(members, (m) => m.userId as string);
    expect(seen).toEqual(expected.map((r) => r.user_id));
    expect(seen.slice(-3)).toEqual([...added].sort());
  });

  it('returns each tenant created in one transaction exactly once, oldest first, one per page', async () => {
    const prefix = uniqueTenantId('pg');
    const created = [`${prefix}-c`, `${prefix}-a`, `${prefix}-b`];
    await admin.begin(async (tx) => {
      for (const id of created) await tx`insert into app.tenants (id, name, plan_id) values (${id}, ${id}, 'pro')`;
    });
    // Start just before their shared instant, so the walk does not cross every tenant of the test run.
    const [before] = await admin<{ at: string }[]>`
      select to_char((created_at - interval '1 microsecond') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at
        from app.tenants where id = ${created[0]!}`;
    const seen = await walk(tenants, (x) => x.id as string, encode([before!.at, 'a00']));
    // Other tests may create tenants meanwhile; ours are consecutive (one instant) and ordered by id.
    const ours = seen.filter((id) => created.includes(id));
    expect(ours).toEqual([...created].sort());
    expect(seen.indexOf(ours[2]!) - seen.indexOf(ours[0]!)).toBe(2);
  });

  describe.each([
    ['documents', () => documents, UUID],
    ['audit events', () => auditEvents, UUID],
    ['members', () => members, UUID],
    ['tenants', () => tenants, 'a00'],
  ] as const)('the %s list', (_, list, id) => {
    it.each(crafted(id))('answers a crafted cursor (%s) with 400 problem+json', async (_name, cursor) => {
      const result = await list()({ limit: '1', cursor });
      expect(result.statusCode).toBe(400);
      expect(result.headers?.['content-type']).toBe('application/problem+json');
      expect(json(result)).toMatchObject({ status: 400 });
    });

    it('accepts the earliest and latest representable positions', async () => {
      for (const at of ['0001-01-01T00:00:00.000000Z', '9999-12-31T23:59:59.999999Z']) {
        const result = await list()({ limit: '1', cursor: encode([at, id]) });
        expect(result.statusCode).toBe(200);
      }
    });
  });
});
