/**
 * The document routes in-process against real Postgres (as app_runtime) and the emulator's S3 through
 * STS-scoped credentials: bytes up and down through presigned URLs, deletion of row and object, the
 * delete rule for users, foreign ids, and document quotas under concurrency.
 */
import { randomUUID } from 'node:crypto';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { work as createDocument } from '../../functions/documents/create';
import { work as getDocument } from '../../functions/documents/get';
import { work as deleteDocument } from '../../functions/documents/delete';
import { work as listDocuments } from '../../functions/documents/list';
import { createTenantStorage, type TenantStorageProvider } from '../../functions/core/storage';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { StsClient } from '../../functions/core/aws-sts';
import { documentKey } from '../../functions/core/storage-names';
import { emulatorS3, emulatorStorage, storedDocuments } from '../support/storage';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

type Role = 'org_admin' | 'user' | 'readonly';

describe('document routes with scoped storage', () => {
  let admin: Sql;
  let db: Sql;
  let deps: HandlerDependencies;
  let files: TenantStorageProvider;
  let a: TenantFixture;
  let b: TenantFixture;
  const who = (t: TenantFixture, role: Role = 'user') => ({ userId: t.members[role], role, tenantId: t.tenantId });

  const create = (t: TenantFixture, body: unknown, role: Role = 'user') =>
    route(routes.createDocument, createDocument, deps)(
      eventFor(routes.createDocument, { pathParameters: { tenantId: t.tenantId }, caller: who(t, role), body }),
    );
  const get = (t: TenantFixture, documentId: string, role: Role = 'user') =>
    route(routes.getDocument, getDocument, deps)(
      eventFor(routes.getDocument, { pathParameters: { tenantId: t.tenantId, documentId }, caller: who(t, role) }),
    );
  const remove = (t: TenantFixture, documentId: string, role: Role = 'user') =>
    route(routes.deleteDocument, deleteDocument, deps)(
      eventFor(routes.deleteDocument, { pathParameters: { tenantId: t.tenantId, documentId }, caller: who(t, role) }),
    );

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 20 });
    // Storage is injected through the wrapper's dependencies, as the handlers pass the container's.
    files = createTenantStorage(emulatorStorage());
    deps = { sql: () => db, authenticator: () => trustingAuthenticator, storage: () => files };
    await admin`
      insert into app.plans (id, name, limits, rate_limit_rps)
      values ('docs-ten', 'Ten documents', '{"documents": 10, "storage_bytes": null, "api_requests": null}', 100000)
      on conflict (id) do nothing`;
    a = await createTenant(admin, uniqueTenantId('docs-a'), 'pro');
    b = await createTenant(admin, uniqueTenantId('docs-b'), 'pro');
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  it('uploads and downloads real bytes through presigned URLs, then deletes row and object', async () => {
    const bytes = Buffer.from('%PDF-1.7 quarterly report\n');
    const created = await create(a, { name: 'Q3 report.pdf', contentType: 'application/pdf', sizeBytes: bytes.length });
    expect(created.statusCode).toBe(201);
    const { document, upload } = json(created) as { document: { id: string; status: string }; upload: { url: string; method: string; headers: Record<string, string> } };
    expect(document.status).toBe('pending');

    const pending = json(await get(a, document.id)) as { download: unknown };
    expect(pending.download).toBeNull();

    const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });
    expect(put.status).toBe(200);

    const fetched = await get(a, document.id, 'readonly');
    const body = json(fetched) as { document: { status: string }; download: { url: string } };
    expect(body.document.status).toBe('available');
    const download = await fetch(body.download.url);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);

    expect((await remove(a, document.id)).statusCode).toBe(204);
    expect(await files.forTenant(a.tenantId, a.members.user).head(document.id)).toBeNull();
    expect(await admin`select 1 from app.documents where id = ${document.id}`).toHaveLength(0);
    expect((await get(a, document.id)).statusCode).toBe(404);
  });

  it('answers 404 for another tenant\'s document id under one\'s own path, and for ids that are not UUIDs', async () => {
    const created = await create(b, { name: 'b.txt', contentType: 'text/plain', sizeBytes: 3 });
    const id = (json(created).document as { id: string }).id;
    expect((await get(b, id)).statusCode).toBe(200); // positive control
    expect((await get(a, id)).statusCode).toBe(404);
    expect((await remove(a, id, 'org_admin')).statusCode).toBe(404);
    expect(await admin`select 1 from app.documents where id = ${id}`).toHaveLength(1);
    expect((await get(a, 'not-a-uuid')).statusCode).toBe(404);
    expect((await get(a, randomUUID())).statusCode).toBe(404);
  });

  it('lets a user delete only documents they created, and an org_admin any', async () => {
    const byAdmin = json(await create(a, { name: 'admin.txt', contentType: 'text/plain', sizeBytes: 1 }, 'org_admin')).document as { id: string };
    const byUser = json(await create(a, { name: 'user.txt', contentType: 'text/plain', sizeBytes: 1 }, 'user')).document as { id: string };
    expect((await remove(a, byAdmin.id, 'user')).statusCode).toBe(403);
    expect((await remove(a, byUser.id, 'user')).statusCode).toBe(204);
    expect((await remove(a, byAdmin.id, 'org_admin')).statusCode).toBe(204);
    expect((await remove(a, byAdmin.id, 'readonly')).statusCode).toBe(403);
  });

  /** An uploaded, checked (available) document of `t`. */
  async function availableDocument(t: TenantFixture): Promise<string> {
    const bytes = Buffer.from('stored bytes');
    const { document, upload } = json(await create(t, { name: 'kept.txt', contentType: 'text/plain', sizeBytes: bytes.length })) as {
      document: { id: string };
      upload: { url: string; headers: Record<string, string> };
    };
    expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: bytes })).status).toBe(200);
    expect((json(await get(t, document.id)).document as { status: string }).status).toBe('available');
    return document.id;
  }

  it("answers 409 problem+json, not a download URL, for an available document whose bytes are gone, and lets it be deleted", async () => {
    const id = await availableDocument(a);
    expect((json(await get(a, id)).download as { url: string }).url).toEqual(expect.any(String)); // positive control
    const s3 = emulatorS3();
    await s3.send(new DeleteObjectCommand({ Bucket: emulatorStorage().bucket, Key: documentKey(a.tenantId, id) }));
    s3.destroy();

    const fetched = await get(a, id);

    expect(fetched.statusCode).toBe(409);
    expect(fetched.headers?.['content-type']).toBe('application/problem+json');
    expect(json(fetched).detail).toMatch(/bytes are missing/);
    expect((await remove(a, id)).statusCode).toBe(204);
  });

  it('answers 503 problem+json and changes nothing when the bucket is missing', async () => {
    const id = await availableDocument(a);
    const lost = createTenantStorage({ ...emulatorStorage(), bucket: `missing-${randomUUID()}` });
    const lostDeps = { ...deps, storage: () => lost };

    const fetched = await route(routes.getDocument, getDocument, lostDeps)(
      eventFor(routes.getDocument, { pathParameters: { tenantId: a.tenantId, documentId: id }, caller: who(a) }),
    );
    const removed = await route(routes.deleteDocument, deleteDocument, lostDeps)(
      eventFor(routes.deleteDocument, { pathParameters: { tenantId: a.tenantId, documentId: id }, caller: who(a) }),
    );

    for (const answer of [fetched, removed]) {
      expect(answer.statusCode).toBe(503);
      expect(answer.headers?.['content-type']).toBe('application/problem+json');
    }
    expect(await admin`select 1 from app.documents where id = ${id}`).toHaveLength(1);
    expect((await get(a, id)).statusCode).toBe(200);
  });

  it('answers 503 problem+json when the function finds no credentials in its environment', async () => {
    const id = await availableDocument(a);
    const env = emulatorStorage();
    // The Lambda bundles' credential provider (the environment only), with the environment emptied.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    try {
      const sts = new StsClient({ region: env.region, endpoint: env.endpoint });
      const noCredentials = createTenantStorage({ ...env, sts });
      const fetched = await route(routes.getDocument, getDocument, { ...deps, storage: () => noCredentials })(
        eventFor(routes.getDocument, { pathParameters: { tenantId: a.tenantId, documentId: id }, caller: who(a) }),
      );

      expect(fetched.statusCode).toBe(503);
      expect(fetched.headers?.['content-type']).toBe('application/problem+json');
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  it('creates exactly 10 of 100 concurrent documents when 10 are left, and nothing for the rest', async () => {
    const t = await createTenant(admin, uniqueTenantId('docs-quota'), 'docs-ten');
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => create(t, { name: `doc-${i}.txt`, contentType: 'text/plain', sizeBytes: 10 })),
    );
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(90);
    expect(await admin`select 1 from app.documents where tenant_id = ${t.tenantId}`).toHaveLength(10);
    const [counter] = await admin<{ used: string }[]>`
      select used from app.usage_counters where tenant_id = ${t.tenantId} and metric = 'documents'`;
    expect(Number(counter?.used)).toBe(10);
    expect(await storedDocuments(t.tenantId)).toHaveLength(0);

    // Deleting one gives its quota back: the next create succeeds.
    const first = (json(results.find((r) => r.statusCode === 201)!).document as { id: string }).id;
    expect((await remove(t, first)).statusCode).toBe(204);
    expect((await create(t, { name: 'again.txt', contentType: 'text/plain', sizeBytes: 10 })).statusCode).toBe(201);
  });

  it('lists newest first with a cursor that walks every page once', async () => {
    const t = await createTenant(admin, uniqueTenantId('docs-list'), 'pro');
    for (let i = 0; i < 5; i++) await create(t, { name: `n${i}.txt`, contentType: 'text/plain', sizeBytes: 1 });
    const list = route(routes.listDocuments, listDocuments, deps);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const result = await list(
        eventFor(routes.listDocuments, {
          pathParameters: { tenantId: t.tenantId },
          caller: who(t),
          query: cursor ? { limit: '2', cursor } : { limit: '2' },
        }),
      );
      const page = json(result) as { items: { name: string }[]; nextCursor: string | null };
      seen.push(...page.items.map((d) => d.name));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['n4.txt', 'n3.txt', 'n2.txt', 'n1.txt', 'n0.txt']);
  });

  it.each([
    ['a 256-character name', { name: 'x'.repeat(256), contentType: 'text/plain', sizeBytes: 1 }],
    ['an empty name', { name: '', contentType: 'text/plain', sizeBytes: 1 }],
    ['a name with a NUL', { name: 'a\u0000b', contentType: 'text/plain', sizeBytes: 1 }],
    ['size 0', { name: 'a', contentType: 'text/plain', sizeBytes: 0 }],
    ['size -1', { name: 'a', contentType: 'text/plain', sizeBytes: -1 }],
    ['size "1"', { name: 'a', contentType: 'text/plain', sizeBytes: '1' }],
    ['size 1e20', { name: 'a', contentType: 'text/plain', sizeBytes: 1e20 }],
    ['a content type that is not a media type', { name: 'a', contentType: 'pdf', sizeBytes: 1 }],
    ['an unknown field', { name: 'a', contentType: 'text/plain', sizeBytes: 1, path: '../x' }],
  ])('refuses %s with 400 and writes nothing', async (_name, body) => {
    const t = await createTenant(admin, uniqueTenantId('docs-bad'), 'pro');
    const result = await create(t, body);
    expect(result.statusCode).toBe(400);
    expect(await admin`select 1 from app.documents where tenant_id = ${t.tenantId}`).toHaveLength(0);
    expect(await admin`select 1 from app.audit_events where tenant_id = ${t.tenantId}`).toHaveLength(0);
  });
});
