/**
 * Deployed smoke test of tenant storage: real STS, real S3, the deployed bucket and tenant-access role.
 * Proves what the emulator cannot: S3 answers AccessDenied to a tenant session that reaches for another
 * tenant's prefix, while the same session reads and lists its own; presigned URLs bind type and length.
 *
 * Needs AWS credentials (the default provider chain) that the tenant-access role trusts, and:
 *   DEPLOYED_TENANT_BUCKET            the stack's tenant bucket name
 *   DEPLOYED_TENANT_ACCESS_ROLE_ARN   the stack's tenant-access role ARN
 *   AWS_REGION                        the stack's region
 * Writes and deletes objects under tenants/smoke-a-…/ and tenants/smoke-b-…/ only.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { StsClient } from '../../functions/core/aws-sts';
import { createTenantStorage, type TenantStorage } from '../../functions/core/storage';
import { assumeTenantRole } from '../../functions/core/storage-credentials';
import { documentKey } from '../../functions/core/storage-names';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set. npm run test:deployed needs DEPLOYED_TENANT_BUCKET, DEPLOYED_TENANT_ACCESS_ROLE_ARN and AWS_REGION of a deployed stack, and AWS credentials the tenant-access role trusts.`,
    );
  }
  return value;
}

const bucket = required('DEPLOYED_TENANT_BUCKET');
const roleArn = required('DEPLOYED_TENANT_ACCESS_ROLE_ARN');
const region = required('AWS_REGION');
const suffix = randomUUID().slice(0, 8);
const tenantA = `smoke-a-${suffix}`;
const tenantB = `smoke-b-${suffix}`;
const userId = randomUUID();
const docA = randomUUID();
const docB = randomUUID();
const provider = createTenantStorage({ bucket, roleArn, region });
const storageA = provider.forTenant(tenantA, userId);
const storageB = provider.forTenant(tenantB, userId);
let s3A: S3Client;

async function upload(docs: TenantStorage, documentId: string, body: string): Promise<void> {
  const put = await docs.presignUpload(documentId, { contentType: 'text/plain', sizeBytes: Buffer.byteLength(body) });
  const response = await fetch(put.url, { method: 'PUT', headers: put.headers, body });
  if (response.status !== 200) throw new Error(`upload failed with ${response.status}: ${await response.text()}`);
}

async function errorName(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'succeeded',
    (error: { name?: string }) => error.name ?? 'unknown',
  );
}

beforeAll(async () => {
  await upload(storageA, docA, 'tenant A');
  await upload(storageB, docB, 'tenant B');
  // Raw scoped credentials of tenant A, obtained the one way the runtime obtains them.
  // The runtime's STS client, signed with whatever credentials the SDK's default chain finds on this machine.
  const credentials = await assumeTenantRole(new StsClient({ region, credentials: new STSClient({ region }).config.credentials }), {
    roleArn,
    bucket,
    tenantId: tenantA,
    userId,
    durationSeconds: 900,
  });
  s3A = new S3Client({ region, credentials });
});

afterAll(async () => {
  await Promise.allSettled([storageA.delete(docA), storageB.delete(docB)]);
  s3A?.destroy();
});

describe('tenant session against real S3', () => {
  it("reads its own object (positive control) and gets AccessDenied on tenant B's", async () => {
    const own = await s3A.send(new GetObjectCommand({ Bucket: bucket, Key: documentKey(tenantA, docA) }));
    expect(await own.Body!.transformToString()).toBe('tenant A');

    expect(await errorName(s3A.send(new GetObjectCommand({ Bucket: bucket, Key: documentKey(tenantB, docB) })))).toBe(
      'AccessDenied',
    );
  });

  it("lists its own prefix (positive control) and gets AccessDenied listing tenant B's, the bare tenant id, or the bucket", async () => {
    const own = await s3A.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `tenants/${tenantA}/` }));
    expect(own.Contents?.map((o) => o.Key)).toEqual([documentKey(tenantA, docA)]);

    for (const prefix of [`tenants/${tenantB}/`, `tenants/${tenantA}`, 'tenants/', undefined]) {
      expect(await errorName(s3A.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix })))).toBe('AccessDenied');
    }
  });

  it('serves a download with the file name as Content-Disposition, and head answers for a missing object', async () => {
    const download = await storageA.presignDownload(docA, { fileName: 'Résumé.txt' });
    const response = await fetch(download.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="R_sum_.txt"; filename*=UTF-8''R%C3%A9sum%C3%A9.txt`);
    expect(await storageA.head(docA)).toEqual({ sizeBytes: 8, contentType: 'text/plain' });
    expect(await storageA.head(randomUUID())).toBeNull();
  });

  it('refuses an upload whose type or length differs from the signed ones', async () => {
    const documentId = randomUUID();
    const put = await storageA.presignUpload(documentId, { contentType: 'text/plain', sizeBytes: 5 });
    const wrongType = await fetch(put.url, { method: 'PUT', headers: { 'Content-Type': 'text/html' }, body: 'hello' });
    const wrongLength = await fetch(put.url, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'hello, world' });
    const right = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'hello' });
    await storageA.delete(documentId);

    expect(wrongType.status).toBe(403);
    expect(wrongLength.status).toBe(403);
    expect(right.status).toBe(200);
  });

  it('refuses an upload URL used without its signed If-None-Match, a second PUT through it, and any PUT after a delete', async () => {
    const documentId = randomUUID();
    const put = await storageA.presignUpload(documentId, { contentType: 'text/plain', sizeBytes: 5 });
    const { 'If-None-Match': _condition, ...unconditional } = put.headers;
    const withoutCondition = await fetch(put.url, { method: 'PUT', headers: unconditional, body: 'hello' });
    const first = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'hello' });
    const second = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'evil!' });
    await storageA.delete(documentId);
    const afterDelete = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'again' });
    const versions = await s3A.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: documentKey(tenantA, documentId) }));

    expect(withoutCondition.status).toBe(403);
    expect(first.status).toBe(200);
    expect(second.status).toBe(412);
    expect(afterDelete.status).toBe(412);
    // Only the empty tombstone remains.
    expect((versions.Versions ?? []).map((v) => v.Size)).toEqual([0]);
    expect(versions.DeleteMarkers ?? []).toEqual([]);
  });
});
