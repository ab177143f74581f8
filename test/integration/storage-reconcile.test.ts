/**
 * The storage reconciler against real Postgres (as app_runtime) and the emulator's versioned S3: an
 * abandoned upload (a pending document whose bytes never came, older than every URL issued for it) loses
 * its row, its object versions and its quota together; an object without a document loses its versions;
 * a completed upload nobody looked at becomes available; what is recent, what has a row, and every other
 * tenant's rows and objects stay. Afterwards the counters equal the rows, and a second run changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { provisionStorage } from '../../bin/stack/aws';
import { withTenant, type RequestContext, type Sql } from '../../functions/core/db';
import { consume } from '../../functions/core/metering';
import { createTenantStorage, type TenantStorageProvider } from '../../functions/core/storage';
import {
  reconcilableTenants,
  reconcileStorage,
  reconciliationLine,
  type ReconcileDependencies,
} from '../../functions/documents/reconcile';
import { adminSql, audit, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';
import { emulatorS3, emulatorStorage, storedVersions } from '../support/storage';

describe('the storage reconciler', () => {
  let admin: Sql;
  let db: Sql;
  let bucket: string;
  let provider: TenantStorageProvider;
  let deps: ReconcileDependencies;

  beforeAll(async () => {
    admin = adminSql();
    db = runtimeSql();
    const env = emulatorStorage();
    const suffix = randomUUID().slice(0, 8);
    const provisioned = await provisionStorage({ endpoint: env.endpoint, region: env.region, bucket: `reconcile-${suffix}`, roleName: `reconcile-${suffix}` });
    bucket = provisioned.bucket;
    const s3 = emulatorS3();
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    s3.destroy();
    provider = createTenantStorage({ ...env, bucket, roleArn: provisioned.roleArn });
    deps = { db, storage: provider, afterSeconds: 3600 };
  });
  afterAll(async () => {
    await Promise.all([admin.end(), db.end()]);
  });

  const put = (upload: { url: string; headers: Record<string, string> }, bytes: number) =>
    fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'x'.repeat(bytes) }).then((r) => {
      if (r.status !== 200) throw new Error(`upload answered ${r.status}`);
    });

  /** A document created as the create route creates it (row, audit event, quota), uploaded or not, aged. */
  async function document(t: TenantFixture, sizeBytes: number, options: { upload: boolean; ageSeconds: number; available?: boolean }): Promise<string> {
    const ctx: RequestContext = contextFor(t, 'user');
    const id = randomUUID();
    await withTenant(db, ctx, async (tx) => {
      await audit(tx, ctx, 'document.create', id);
      await consume(tx, 'documents', 1);
      await consume(tx, 'storage_bytes', sizeBytes);
      await tx`insert into app.documents (tenant_id, id, name, content_type, size_bytes, created_by)
               values (${t.tenantId}, ${id}, 'f.txt', 'text/plain', ${sizeBytes}, ${ctx.userId})`;
    });
    if (options.upload) await put(await provider.forTenant(t.tenantId, ctx.userId).presignUpload(id, { contentType: 'text/plain', sizeBytes }), sizeBytes);
    // Fixture changes as the owner: the age, and the status a GET would have set.
    await admin`update app.documents set created_at = now() - make_interval(secs => ${options.ageSeconds}),
                status = ${options.available ? 'available' : 'pending'} where tenant_id = ${t.tenantId} and id = ${id}`;
    return id;
  }
  /** Bytes stored at a key no document row names (e.g. arrived after the document was removed). */
  async function orphan(t: TenantFixture, sizeBytes: number): Promise<string> {
    const id = randomUUID();
    await put(await provider.forTenant(t.tenantId, t.members.user).presignUpload(id, { contentType: 'text/plain', sizeBytes }), sizeBytes);
    return id;
  }
  async function state(t: TenantFixture) {
    const [rows] = await admin<{ documents: string; bytes: string }[]>`
      select count(*) as documents, coalesce(sum(size_bytes), 0) as bytes from app.documents where tenant_id = ${t.tenantId}`;
    const counters = await admin<{ metric: string; used: string }[]>`
      select metric, used from app.usage_counters where tenant_id = ${t.tenantId} and metric in ('documents', 'storage_bytes')`;
    const counted = Object.fromEntries(counters.map((c) => [c.metric, Number(c.used)]));
    const docs = await admin<{ id: string; status: string }[]>`select id, status from app.documents where tenant_id = ${t.tenantId} order by id`;
    const versions = (await storedVersions(t.tenantId, bucket)).map((v) => `${v.documentId}:${v.sizeBytes}:${v.deleteMarker}`).sort();
    return { rows: { documents: Number(rows!.documents), bytes: Number(rows!.bytes) }, counted, docs, versions };
  }
  const bytesAt = async (t: TenantFixture, id: string) =>
    (await storedVersions(t.tenantId, bucket)).filter((v) => v.documentId === id).map((v) => v.sizeBytes);

  it('removes an abandoned upload with its quota and an orphan object, completes an unseen upload, and leaves the rest and other tenants alone', async () => {
    const a = await createTenant(admin, uniqueTenantId('reca'));
    const b = await createTenant(admin, uniqueTenantId('recb'));
    const abandoned = await document(a, 100, { upload: false, ageSeconds: 7200 });
    const unseen = await document(a, 5, { upload: true, ageSeconds: 7200 });
    const recent = await document(a, 7, { upload: false, ageSeconds: 60 });
    const kept = await document(a, 4, { upload: true, ageSeconds: 7200, available: true });
    const stray = await orphan(a, 6);
    const abandonedB = await document(b, 50, { upload: false, ageSeconds: 7200 });
    const strayB = await orphan(b, 9);
    const bBefore = await state(b);
    expect((await state(a)).counted).toEqual({ documents: 4, storage_bytes: 116 });

    const [result] = await reconcileStorage(deps, { tenants: [a.tenantId] });

    expect(result).toEqual({
      tenantId: a.tenantId, abandonedUploads: 1, releasedBytes: 100, completedUploads: 1, orphanObjects: 1, orphanBytes: 6, foreignKeys: 0,
    });
    const after = await state(a);
    expect(after.docs).toEqual(
      [{ id: unseen, status: 'available' }, { id: recent, status: 'pending' }, { id: kept, status: 'available' }].sort((x, y) => x.id.localeCompare(y.id)),
    );
    // The counters equal the rows.
    expect(after.rows).toEqual({ documents: 3, bytes: 16 });
    expect(after.counted).toEqual({ documents: after.rows.documents, storage_bytes: after.rows.bytes });
    // Only empty tombstones stay where bytes were not counted; counted bytes stay.
    expect(await bytesAt(a, abandoned)).toEqual([0]);
    expect(await bytesAt(a, stray)).toEqual([0]);
    expect(await bytesAt(a, unseen)).toEqual([5]);
    expect(await bytesAt(a, kept)).toEqual([4]);
    // The removal is in the tenant's audit trail, in the reconciler's name.
    const events = await admin`select action, resource_id from app.audit_events where tenant_id = ${a.tenantId} and action like 'storage.reconcile%'`;
    expect(events.map((e) => [e.action, e.resource_id])).toEqual([['storage.reconcile.abandoned_upload', abandoned]]);
    // The other tenant: not a row, counter or object changed.
    expect(await state(b)).toEqual(bBefore);
    expect(await bytesAt(b, strayB)).toEqual([9]);
    expect(bBefore.docs.map((d) => d.id)).toEqual([abandonedB]);

    // A second run finds nothing to do and changes nothing.
    const [again] = await reconcileStorage(deps, { tenants: [a.tenantId] });
    expect(again).toEqual({ tenantId: a.tenantId, abandonedUploads: 0, releasedBytes: 0, completedUploads: 0, orphanObjects: 0, orphanBytes: 0, foreignKeys: 0 });
    expect(await state(a)).toEqual(after);

    // The other tenant's own run fixes it alike.
    const [resultB] = await reconcileStorage(deps, { tenants: [b.tenantId] });
    expect(resultB).toMatchObject({ abandonedUploads: 1, releasedBytes: 50, orphanObjects: 1, orphanBytes: 9 });
    const bAfter = await state(b);
    expect(bAfter.rows).toEqual({ documents: 0, bytes: 0 });
    expect(bAfter.counted).toEqual({ documents: 0, storage_bytes: 0 });
    expect(await state(a)).toEqual(after);
  });

  it('prints one line per tenant with its counts', () => {
    expect(
      reconciliationLine({ tenantId: 'acme', abandonedUploads: 1, releasedBytes: 1024, completedUploads: 0, orphanObjects: 2, orphanBytes: 6, foreignKeys: 0 }),
    ).toBe('acme: 1 abandoned uploads removed (1024 bytes released), 0 completed, 2 orphan objects deleted (6 bytes)');
  });

  it('reconciles every tenant that can still hold documents, and no offboarded one', async () => {
    const live = await createTenant(admin, uniqueTenantId('reclive'));
    const gone = await createTenant(admin, uniqueTenantId('recgone'));
    await admin`delete from app.members where tenant_id = ${gone.tenantId}`;
    await admin`update app.tenants set status = 'deleted' where id = ${gone.tenantId}`;
    const tenants = await reconcilableTenants(db);
    expect(tenants).toContain(live.tenantId);
    expect(tenants).not.toContain(gone.tenantId);
  });
});
