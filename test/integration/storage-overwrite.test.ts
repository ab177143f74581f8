/**
 * Stored bytes never exceed counted bytes through any upload URL the API issued, on a versioned bucket
 * as deployed: uploads are conditional (`If-None-Match: *`, signed), so a URL cannot overwrite the
 * checked bytes nor write again after a delete, which removes every version and leaves an empty
 * tombstone. The emulator enforces the condition when the header is sent; only real S3 also refuses a
 * URL used without it (a signed header), which the deployed smoke test proves.
 */
import { randomUUID } from 'node:crypto';
import { PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { provisionStorage } from '../../bin/stack/aws';
import { createTenantStorage, type TenantStorage } from '../../functions/core/storage';
import { uniqueTenantId } from '../support/db';
import { emulatorS3, emulatorStorage, storedVersions } from '../support/storage';

describe('upload URLs on a versioned bucket', () => {
  let bucket: string;
  let docs: TenantStorage;
  let tenantId: string;

  beforeAll(async () => {
    const env = emulatorStorage();
    const suffix = randomUUID().slice(0, 8);
    const provisioned = await provisionStorage({ endpoint: env.endpoint, region: env.region, bucket: `versioned-${suffix}`, roleName: `versioned-${suffix}` });
    bucket = provisioned.bucket;
    const s3 = emulatorS3();
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    s3.destroy();
    docs = createTenantStorage({ ...env, bucket, roleArn: provisioned.roleArn }).forTenant((tenantId = uniqueTenantId('vers')), randomUUID());
  });

  const put = (upload: { url: string; headers: Record<string, string> }, body: string) =>
    fetch(upload.url, { method: 'PUT', headers: upload.headers, body }).then((r) => r.status);
  const versionsOf = async (documentId: string) => (await storedVersions(tenantId, bucket)).filter((v) => v.documentId === documentId);

  it('refuses a second PUT through the same URL once the bytes are there, keeping one version', async () => {
    const id = randomUUID();
    const upload = await docs.presignUpload(id, { contentType: 'text/plain', sizeBytes: 4 });

    expect(await put(upload, 'good')).toBe(200);
    expect(await put(upload, 'evil')).toBe(412);

    expect((await versionsOf(id)).map((v) => v.sizeBytes)).toEqual([4]);
    expect(await docs.head(id)).toMatchObject({ sizeBytes: 4 });
  });

  it('leaves no version of a deleted document but an empty tombstone, and refuses its old upload URL', async () => {
    const id = randomUUID();
    const upload = await docs.presignUpload(id, { contentType: 'text/plain', sizeBytes: 4 });
    expect(await put(upload, 'good')).toBe(200);

    await docs.delete(id);
    const reused = await put(upload, 'more');

    expect(reused).toBe(412);
    expect((await versionsOf(id)).map((v) => ({ sizeBytes: v.sizeBytes, deleteMarker: v.deleteMarker }))).toEqual([
      { sizeBytes: 0, deleteMarker: false },
    ]);
    expect(await docs.head(id)).toBeNull();
  });

  it('refuses the upload URL of a document deleted before its bytes came', async () => {
    const id = randomUUID();
    const upload = await docs.presignUpload(id, { contentType: 'text/plain', sizeBytes: 4 });

    await docs.delete(id);

    expect(await put(upload, 'late')).toBe(412);
    expect((await versionsOf(id)).map((v) => v.sizeBytes)).toEqual([0]);
  });
});
