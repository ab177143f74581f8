/**
 * The happy path of every route, for every role the manifest allows, over real HTTP against the local
 * stack (the same server `npm start` runs, on the global setup's Postgres and moto): real Cognito tokens
 * from the emulator, real presigned S3 URLs used with plain fetch.
 */
import { randomUUID } from 'node:crypto';
import { routeList } from '../../functions/routes';
import type { Role } from '../../functions/core/tenant';
import { startE2eStack, type E2eStack } from './support/stack';

let stack: E2eStack;

beforeAll(async () => {
  stack = await startE2eStack();
});

afterAll(async () => {
  await stack?.stop();
});

const as = (role: Role, tenantId: string | undefined = 'acme') => ({ role, tenantId: role === 'superadmin' ? undefined : tenantId });

interface Created {
  document: { id: string; status: string; createdBy: string; sizeBytes: number; name: string; contentType: string };
  upload: { url: string; method: string; headers: Record<string, string>; expiresAt: string };
}

async function createAndUpload(role: Role, bytes: Buffer, name: string): Promise<{ created: Created; requestId: string }> {
  const response = await stack.call('/api/acme/documents', {
    method: 'POST',
    as: as(role),
    json: { name, contentType: 'text/plain', sizeBytes: bytes.length },
  });
  expect(response.status).toBe(201);
  const created = (await response.json()) as Created;
  // A create names the new resource by its API path.
  expect(response.headers.get('location')).toBe(`/api/acme/documents/${created.document.id}`);
  const put = await fetch(created.upload.url, { method: created.upload.method, headers: created.upload.headers, body: bytes });
  expect(put.status).toBe(200);
  return { created, requestId: response.headers.get('x-request-id')! };
}

describe('the local stack over HTTP (happy path)', () => {
  it('answers GET /health with ok and a request id, without a token', async () => {
    // Act
    const response = await stack.call('/health');

    // Assess
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves the OpenAPI 3.1 document with every route of the manifest', async () => {
    // Act
    const response = await stack.call('/openapi.json');

    // Assess
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    expect(document.openapi).toBe('3.1.0');
    for (const route of routeList) {
      expect(document.paths[route.path]?.[route.method.toLowerCase()]?.operationId).toBe(route.id);
    }
  });

  it('lets org_admin and user create a document and upload its bytes, and every reading role get and download exactly those bytes', async () => {
    for (const creator of ['org_admin', 'user'] as const) {
      // Prepare
      const bytes = Buffer.from(`quarterly numbers by ${creator} ${randomUUID()}\n`);

      // Act
      const { created } = await createAndUpload(creator, bytes, `report by ${creator}.txt`);

      // Assess: created pending, by the caller's own id
      expect(created.document).toMatchObject({ status: 'pending', sizeBytes: bytes.length, contentType: 'text/plain' });
      expect(created.document.createdBy).toBe(stack.account('acme', creator).sub);
      for (const reader of ['org_admin', 'user', 'readonly'] as const) {
        const response = await stack.call(`/api/acme/documents/${created.document.id}`, { as: as(reader) });
        expect(response.status).toBe(200);
        const body = (await response.json()) as { document: { status: string }; download: { url: string } };
        expect(body.document.status).toBe('available');
        const download = await fetch(body.download.url);
        expect(download.status).toBe(200);
        expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
      }
    }
  });

  it('lists the tenant’s documents, newest first, for org_admin, user and readonly', async () => {
    // Prepare
    const { created: older } = await createAndUpload('user', Buffer.from('older'), 'older.txt');
    const { created: newer } = await createAndUpload('org_admin', Buffer.from('newer'), 'newer.txt');

    for (const reader of ['org_admin', 'user', 'readonly'] as const) {
      // Act
      const response = await stack.call('/api/acme/documents?limit=100', { as: as(reader) });

      // Assess
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { id: string; tenantId: string }[]; nextCursor: string | null };
      const ids = page.items.map((d) => d.id);
      expect(ids).toContain(older.document.id);
      expect(ids.indexOf(newer.document.id)).toBeLessThan(ids.indexOf(older.document.id));
      expect(new Set(page.items.map((d) => d.tenantId))).toEqual(new Set(['acme']));
    }
  });

  it('lets a user delete a document they created and org_admin delete any, and removes the object too', async () => {
    for (const [creator, deleter] of [['user', 'user'], ['user', 'org_admin'], ['org_admin', 'org_admin']] as const) {
      // Prepare
      const { created } = await createAndUpload(creator, Buffer.from(`to delete ${randomUUID()}`), 'doomed.txt');
      const got = await stack.call(`/api/acme/documents/${created.document.id}`, { as: as(creator) });
      const { download } = (await got.json()) as { download: { url: string } };

      // Act
      const response = await stack.call(`/api/acme/documents/${created.document.id}`, { method: 'DELETE', as: as(deleter) });

      // Assess
      expect(response.status).toBe(204);
      expect(await response.text()).toBe('');
      expect((await stack.call(`/api/acme/documents/${created.document.id}`, { as: as('org_admin') })).status).toBe(404);
      // The bytes are gone: the old URL reaches only the empty tombstone that keeps the key from being reused.
      expect((await (await fetch(download.url)).arrayBuffer()).byteLength).toBe(0);
    }
  });

  it('records usage events for org_admin and user with 202, counting a repeated idempotency key once', async () => {
    const usageOf = async () => {
      const response = await stack.call('/api/acme/billing', { as: as('org_admin') });
      return ((await response.json()) as { usage: Record<string, number> }).usage.ai_tokens!;
    };
    for (const role of ['org_admin', 'user'] as const) {
      // Prepare
      const before = await usageOf();
      const event = { metric: 'ai_tokens', quantity: 250, idempotencyKey: `e2e-${randomUUID()}` };

      // Act
      const first = await stack.call('/api/acme/usage-events', { method: 'POST', as: as(role), json: event });
      const again = await stack.call('/api/acme/usage-events', { method: 'POST', as: as(role), json: event });

      // Assess
      expect(first.status).toBe(202);
      expect(again.status).toBe(202);
      expect(await first.json()).toMatchObject({ metric: 'ai_tokens', quantity: 250, duplicate: false });
      expect(await again.json()).toMatchObject({ duplicate: true });
      expect((await usageOf()) - before).toBe(250);
    }
  });

  it('shows org_admin the plan, period, usage and estimated charges of its own tenant', async () => {
    for (const [tenantId, planId] of [['acme', 'pro'], ['globex', 'free']] as const) {
      // Prepare: a request is counted when its own transaction ends, so the view shows the ones before it.
      expect((await stack.call(`/api/${tenantId}/documents`, { as: as('org_admin', tenantId) })).status).toBe(200);

      // Act
      const response = await stack.call(`/api/${tenantId}/billing`, { as: as('org_admin', tenantId) });

      // Assess
      expect(response.status).toBe(200);
      const billing = (await response.json()) as Record<string, any>;
      expect(billing.tenantId).toBe(tenantId);
      expect(billing.plan.id).toBe(planId);
      expect(Object.keys(billing.usage).sort()).toEqual(['ai_tokens', 'api_requests', 'documents', 'storage_bytes']);
      expect(billing.usage.api_requests).toBeGreaterThanOrEqual(1);
      expect(Date.parse(billing.period.start)).toBeLessThan(Date.parse(billing.period.end));
      expect(billing.estimatedCharges).toEqual({ currency: 'USD', amount: expect.stringMatching(/^\d+\.\d{2}$/) });
    }
  });

  it('lists the members of the tenant to org_admin with their emails decrypted and their Cognito ids', async () => {
    for (const tenantId of ['acme', 'globex']) {
      // Act
      const response = await stack.call(`/api/${tenantId}/members`, { as: as('org_admin', tenantId) });

      // Assess
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { userId: string; email: string; role: string; status: string }[] };
      const expected = (['org_admin', 'user', 'readonly'] as const).map((role) => ({
        userId: stack.account(tenantId, role).sub,
        email: `${role}@${tenantId}.example`,
        role,
        status: 'active',
      }));
      expect(page.items).toEqual(expect.arrayContaining(expected));
      // The e2e files share the seeded tenants: the isolation matrix adds members of its own (matrix-…),
      // whichever file runs first. Nobody else is a member.
      expect(page.items.filter((m) => !m.email.startsWith('matrix-'))).toHaveLength(3);
    }
  });

  it('shows org_admin an audit trail, newest first, that names each mutating request by its request id', async () => {
    // Prepare: two mutating requests
    const { created, requestId: createRequest } = await createAndUpload('user', Buffer.from('audited'), 'audited.txt');
    const usage = await stack.call('/api/acme/usage-events', {
      method: 'POST',
      as: as('org_admin'),
      json: { metric: 'ai_tokens', quantity: 1, idempotencyKey: `audit-${randomUUID()}` },
    });
    const usageRequest = usage.headers.get('x-request-id');

    // Act: walk the trail (other test files write to acme concurrently, so ours may be a page or two down)
    type Entry = { requestId: string; action: string; actorUserId: string; resourceId: string | null; occurredAt: string };
    const response = await stack.call('/api/acme/audit-events?limit=100', { as: as('org_admin') });
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: Entry[]; nextCursor: string | null };
    const byRequest = new Map(page.items.map((e) => [e.requestId, e]));
    for (let cursor = page.nextCursor, pages = 0; cursor && pages < 20 && !(byRequest.has(createRequest) && byRequest.has(usageRequest!)); pages++) {
      const next = await stack.call(`/api/acme/audit-events?limit=100&cursor=${cursor}`, { as: as('org_admin') });
      const more = (await next.json()) as { items: Entry[]; nextCursor: string | null };
      for (const e of more.items) byRequest.set(e.requestId, e);
      cursor = more.nextCursor;
    }

    // Assess
    expect(byRequest.get(createRequest)).toMatchObject({
      action: 'createDocument',
      actorUserId: stack.account('acme', 'user').sub,
      resourceId: created.document.id,
    });
    expect(byRequest.get(usageRequest!)).toMatchObject({ action: 'recordUsageEvent', actorUserId: stack.account('acme', 'org_admin').sub });
    const times = page.items.map((e) => Date.parse(e.occurredAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('lists every tenant with its plan and status to the platform superadmin', async () => {
    // Act
    const response = await stack.call('/api/tenants?limit=100', { as: as('superadmin') });

    // Assess
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: { id: string; planId: string; status: string }[] };
    expect(page.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'acme', planId: 'pro', status: 'active' }),
        expect.objectContaining({ id: 'globex', planId: 'free', status: 'active' }),
      ]),
    );
  });

  it('serves the second tenant too: a globex user creates a document and globex readonly lists it, without acme’s', async () => {
    // Prepare
    const created = await stack.call('/api/globex/documents', {
      method: 'POST',
      as: as('user', 'globex'),
      json: { name: 'globex plan.txt', contentType: 'text/plain', sizeBytes: 5 },
    });
    expect(created.status).toBe(201);
    const { document } = (await created.json()) as Created;

    // Act
    const response = await stack.call('/api/globex/documents?limit=100', { as: as('readonly', 'globex') });

    // Assess
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: { id: string; tenantId: string }[] };
    expect(page.items.map((d) => d.id)).toContain(document.id);
    expect(new Set(page.items.map((d) => d.tenantId))).toEqual(new Set(['globex']));
  });
});
