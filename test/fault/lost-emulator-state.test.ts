/**
 * The storage emulator restarted with empty state (an emulator that lost its data; a bucket deleted under
 * a running deployment), on an emulator of this test's own: document GET and DELETE answer 503
 * problem+json with Retry-After (a missing bucket is the operator's to fix and the caller's to retry) and
 * change nothing; once the bucket exists again, empty, an `available` document whose object is gone
 * answers 409 with a problem that says so (never a URL that leads nowhere, never a 500) and can be deleted.
 */
import { LOCAL_CORS_ORIGINS } from '../../bin/stack/local-stack';
import { provisionStorage } from '../../bin/stack/aws';
import { startEmulator, type EmulatorHandle } from '../../bin/stack/moto';
import { freePort } from '../../bin/stack/ports';
import { route, type HandlerDependencies } from '../../functions/core/handler';
import type { Sql } from '../../functions/core/db';
import { createTenantStorage } from '../../functions/core/storage';
import { work as createDocument } from '../../functions/documents/create';
import { work as deleteDocument } from '../../functions/documents/delete';
import { work as getDocument } from '../../functions/documents/get';
import { routes } from '../../functions/routes';
import { eventFor, json, trustingAuthenticator } from '../support/api';
import { adminSql, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';

const BUCKET = 'tenant-documents-lost';
const REGION = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

describe('a storage emulator that lost its state', () => {
  let admin: Sql;
  let db: Sql;
  let port: number;
  let emulator: EmulatorHandle | undefined;
  let tenant: TenantFixture;

  const provision = async () =>
    provisionStorage({ endpoint: emulator!.endpoint, region: REGION, bucket: BUCKET, roleName: 'tenant-access-lost', corsOrigins: LOCAL_CORS_ORIGINS, credentials });

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql({ max: 4 });
    tenant = await createTenant(admin, uniqueTenantId('lost-state'), 'pro');
    port = await freePort();
    emulator = await startEmulator({ port });
  }, 60_000);
  afterAll(async () => {
    await emulator?.stop();
    await Promise.all([admin.end(), db.end()]);
  });

  it('answers 503 for document reads and deletes while the bucket is gone, then 409 for an available document whose bytes are gone', async () => {
    const { roleArn } = await provision();
    const storage = createTenantStorage({ bucket: BUCKET, roleArn, region: REGION, endpoint: emulator!.endpoint });
    const deps: Partial<HandlerDependencies> = { sql: () => db, authenticator: () => trustingAuthenticator, storage: () => storage };
    const caller = { userId: tenant.members.user, role: 'user' as const, tenantId: tenant.tenantId };
    const get = (documentId: string) =>
      route(routes.getDocument, getDocument, deps)(eventFor(routes.getDocument, { pathParameters: { tenantId: tenant.tenantId, documentId }, caller }));
    const remove = (documentId: string) =>
      route(routes.deleteDocument, deleteDocument, deps)(eventFor(routes.deleteDocument, { pathParameters: { tenantId: tenant.tenantId, documentId }, caller }));
    const state = async () =>
      admin<{ status: string }[]>`select status from app.documents where tenant_id = ${tenant.tenantId} order by created_at`;

    // An available document: created, its bytes uploaded, seen by a GET.
    const bytes = Buffer.from('bytes the emulator will forget');
    const created = json(
      await route(routes.createDocument, createDocument, deps)(
        eventFor(routes.createDocument, {
          pathParameters: { tenantId: tenant.tenantId },
          caller,
          body: { name: 'kept.txt', contentType: 'text/plain', sizeBytes: bytes.length },
        }),
      ),
    ) as { document: { id: string }; upload: { url: string; headers: Record<string, string> } };
    expect((await fetch(created.upload.url, { method: 'PUT', headers: created.upload.headers, body: bytes })).status).toBe(200);
    const id = created.document.id;
    expect((await get(id)).statusCode).toBe(200); // positive control: now available, with a download URL

    // The emulator restarts on the same address with nothing in it.
    await emulator!.stop();
    emulator = await startEmulator({ port });
    const before = await state();

    for (const answer of [await get(id), await remove(id)]) {
      expect(answer.statusCode).toBe(503);
      expect(answer.headers?.['content-type']).toBe('application/problem+json');
      expect(Number(answer.headers?.['Retry-After'])).toBeGreaterThan(0);
      expect(json(answer).status).toBe(503);
    }
    expect(await state()).toEqual(before);
    expect(before).toEqual([{ status: 'available' }]);

    // The operator recreates the bucket, empty: the document's bytes are gone for good.
    await provision();
    const fetched = await get(id);
    expect(fetched.statusCode).toBe(409);
    expect(fetched.headers?.['content-type']).toBe('application/problem+json');
    expect(json(fetched).detail).toMatch(/bytes are missing/);
    expect(json(fetched)).not.toHaveProperty('download');
    expect((await remove(id)).statusCode).toBe(204);
    expect(await state()).toEqual([]);
  });
});
