/**
 * Tenant storage against the AWS emulator (moto): real SDK calls, real presigned URLs used with plain
 * fetch, STS requests observed at the SDK middleware level. The emulator does not enforce session
 * policies; test/unit/core/storage-policy.test.ts proves what they allow, and the deployed smoke test
 * proves AccessDenied against real S3.
 */
import { randomUUID } from 'node:crypto';
import { ServiceUnavailableError } from '../../functions/core/errors';
import { logger } from '../../functions/core/observability';
import { createTenantStorage } from '../../functions/core/storage';
import { roleSessionName } from '../../functions/core/storage-credentials';
import { tenantSessionPolicy } from '../../functions/core/storage-policy';
import { uniqueTenantId } from '../support/db';
import { emulatorStorage, emulatorStorageOptions, recordingSts, storedDocuments, SwitchableProxy } from '../support/storage';

const assumeRoleCalls = (requests: Record<string, string>[]) => requests.filter((r) => r.Action === 'AssumeRole').length;

describe('tenant storage against the emulator', () => {
  it('uploads through a presigned PUT, downloads through a presigned GET, stores under the prefix and deletes', async () => {
    // Prepare
    const tenantId = uniqueTenantId('up');
    const documentId = randomUUID();
    const bytes = Buffer.from('%PDF-1.7 quarterly report\n');
    const docs = createTenantStorage(emulatorStorageOptions()).forTenant(tenantId, randomUUID());

    // Act: upload
    const upload = await docs.presignUpload(documentId, { contentType: 'application/pdf', sizeBytes: bytes.length });
    const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });

    // Assess
    expect(put.status).toBe(200);
    expect(await docs.head(documentId)).toEqual({ sizeBytes: bytes.length, contentType: 'application/pdf' });

    // Act: download
    const download = await docs.presignDownload(documentId, { fileName: 'Q3 report.pdf' });
    const get = await fetch(download.url);

    // Assess
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(bytes);
    // Signed into the URL; S3 answers it as the Content-Disposition header (moto ignores it; the deployed test checks S3).
    expect(new URL(download.url).searchParams.get('response-content-disposition')).toBe(
      `attachment; filename="Q3 report.pdf"; filename*=UTF-8''Q3%20report.pdf`,
    );

    // Act: look under the prefix, then delete
    const stored = await storedDocuments(tenantId);
    await docs.delete(documentId);

    // Assess
    expect(stored).toEqual([{ documentId, sizeBytes: bytes.length }]);
    expect(await docs.head(documentId)).toBeNull();
    expect(await storedDocuments(tenantId)).toEqual([]);
    // Gone: the old download URL now reaches only the empty tombstone that keeps the key from being reused.
    expect((await (await fetch(download.url)).arrayBuffer()).byteLength).toBe(0);
  });

  it("stores each tenant's documents under its own prefix, not that of a tenant whose id extends it", async () => {
    // Prepare: `x` and `x-evil` share a string prefix; only the `/` after the tenant id separates them.
    const tenantId = uniqueTenantId('pfx');
    const provider = createTenantStorage(emulatorStorageOptions());
    const own = provider.forTenant(tenantId, randomUUID());
    const evil = provider.forTenant(`${tenantId}-evil`, randomUUID());
    const ownId = randomUUID();
    const evilId = randomUUID();
    for (const [docs, id] of [
      [own, ownId],
      [evil, evilId],
    ] as const) {
      const upload = await docs.presignUpload(id, { contentType: 'text/plain', sizeBytes: 2 });
      expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'hi' })).status).toBe(200);
    }

    // Act
    const ownStored = await storedDocuments(tenantId);
    const evilStored = await storedDocuments(`${tenantId}-evil`);

    // Assess
    expect(ownStored.map((item) => item.documentId)).toEqual([ownId]);
    expect(evilStored.map((item) => item.documentId)).toEqual([evilId]);
  });

  it('signs upload URLs with the scoped session and binds content type and length into the signature', async () => {
    // Prepare
    const docs = createTenantStorage(emulatorStorageOptions()).forTenant(uniqueTenantId('sig'), randomUUID());

    // Act
    const upload = await docs.presignUpload(randomUUID(), { contentType: 'image/png', sizeBytes: 1234 });
    const query = new URL(upload.url).searchParams;

    // Assess
    expect(query.get('X-Amz-SignedHeaders')?.split(';')).toEqual(['content-length', 'content-type', 'host', 'if-none-match']);
    expect(query.get('X-Amz-Security-Token')).toEqual(expect.any(String));
    // The ambient (unscoped) key of the test process never signs a URL.
    expect(query.get('X-Amz-Credential')?.startsWith(`${process.env.AWS_ACCESS_KEY_ID}/`)).toBe(false);
    expect(Number(query.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    // No checksum of an empty body: S3 would refuse the real bytes.
    expect([...query.keys()].filter((key) => key.toLowerCase().includes('checksum'))).toEqual([]);
    expect(upload.headers).toEqual({ 'Content-Type': 'image/png', 'Content-Length': '1234', 'If-None-Match': '*' });
  });

  it('sends AssumeRole with the tenant session policy, a session named for the tenant only, and the configured duration', async () => {
    // Prepare
    const options = emulatorStorageOptions({ credentialSeconds: 1800 });
    const tenantId = uniqueTenantId('sts');
    const userId = randomUUID();

    // Act
    await createTenantStorage(options).forTenant(tenantId, userId).head(randomUUID());

    // Assess
    expect(options.requests).toHaveLength(1);
    const [request] = options.requests;
    expect(request).toMatchObject({
      Action: 'AssumeRole',
      RoleArn: options.roleArn,
      RoleSessionName: roleSessionName(tenantId),
      DurationSeconds: '1800',
    });
    expect(JSON.parse(request!.Policy!)).toEqual(tenantSessionPolicy(options.bucket, tenantId));
    expect(request!.RoleSessionName).toBe(tenantId);
    expect(request!.RoleSessionName).not.toContain(userId.replace(/-/g, '').slice(0, 8));
  });

  it('keeps one session name for the tenant whichever user opens or reuses the session', async () => {
    // Prepare: two users of one tenant, the second after the cached session expired.
    let clock = Date.now();
    const options = emulatorStorageOptions({ now: () => clock });
    const provider = createTenantStorage(options);
    const tenantId = uniqueTenantId('sts-users');

    // Act
    await provider.forTenant(tenantId, randomUUID()).head(randomUUID());
    clock += 3600 * 1000;
    await provider.forTenant(tenantId, randomUUID()).head(randomUUID());

    // Assess
    expect(options.requests.map((r) => r.RoleSessionName)).toEqual([tenantId, tenantId]);
  });

  it('makes one STS call for 100 warm operations of one tenant', async () => {
    // Prepare
    const options = emulatorStorageOptions();
    const docs = createTenantStorage(options).forTenant(uniqueTenantId('warm'), randomUUID());
    const documentId = randomUUID();

    // Act
    for (let i = 0; i < 100; i++) {
      if (i % 2 === 0) await docs.head(documentId);
      else await docs.presignDownload(documentId, { fileName: 'a.txt' });
    }

    // Assess
    expect(assumeRoleCalls(options.requests)).toBe(1);
  });

  it('makes one STS call for 20 concurrent first operations of one tenant, and one per tenant', async () => {
    // Prepare
    const options = emulatorStorageOptions();
    const provider = createTenantStorage(options);
    const tenantA = uniqueTenantId('burst');
    const tenantB = uniqueTenantId('burst');

    // Act
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => provider.forTenant(i % 4 === 0 ? tenantB : tenantA, randomUUID()).head(randomUUID())),
    );

    // Assess
    expect(assumeRoleCalls(options.requests)).toBe(2);
    const sessionTenants = options.requests.map((r) => r.RoleSessionName!).sort();
    expect(sessionTenants).toEqual([tenantA, tenantB].sort());
  });

  it('refreshes the credentials before they expire, not on every call', async () => {
    // Prepare: defaults (3600 s credentials, 300 s refresh, 900 s URLs) refresh 900 s before expiry,
    // so that no URL outlives the session that signed it.
    let clock = Date.now();
    const start = clock;
    const options = emulatorStorageOptions({ now: () => clock });
    const docs = createTenantStorage(options).forTenant(uniqueTenantId('refresh'), randomUUID());
    await docs.head(randomUUID());

    // Act + Assess: a minute before the refresh point, the cached session serves.
    clock = start + (3600 - 900 - 60) * 1000;
    await docs.head(randomUUID());
    expect(assumeRoleCalls(options.requests)).toBe(1);

    // A minute after it (still 14 minutes before expiry), one new session.
    clock = start + (3600 - 900 + 60) * 1000;
    await docs.head(randomUUID());
    await docs.head(randomUUID());
    expect(assumeRoleCalls(options.requests)).toBe(2);
  });

  it('answers ServiceUnavailableError while the emulator is down, caches nothing, and recovers when it is back', async () => {
    // Prepare
    const proxy = await SwitchableProxy.create(emulatorStorage().endpoint);
    const options = emulatorStorageOptions({ endpoint: proxy.endpoint });
    const docs = createTenantStorage(options).forTenant(uniqueTenantId('down'), randomUUID());
    const documentId = randomUUID();
    try {
      // Act + Assess: STS unreachable
      await expect(docs.head(documentId)).rejects.toBeInstanceOf(ServiceUnavailableError);
      await expect(docs.presignUpload(documentId, { contentType: 'text/plain', sizeBytes: 1 })).rejects.toMatchObject({
        status: 503,
      });
      expect(assumeRoleCalls(options.requests)).toBe(2); // the failure was not cached either

      // Back up: one new STS call, then the session is cached.
      await proxy.up();
      expect(await docs.head(documentId)).toBeNull();
      expect(await docs.head(documentId)).toBeNull();
      expect(assumeRoleCalls(options.requests)).toBe(3);

      // S3 unreachable with cached credentials: the same typed error.
      await proxy.down();
      await expect(docs.head(documentId)).rejects.toBeInstanceOf(ServiceUnavailableError);
    } finally {
      await proxy.down();
    }
  });

  it('logs the packed policy size, and warns when the session policy uses more than half of it', async () => {
    // Prepare: moto answers PackedPolicySize 6; a second client reports 73 % as STS would for a large policy.
    const env = emulatorStorage();
    const normal = recordingSts(env.endpoint, env.region);
    const large = recordingSts(env.endpoint, env.region);
    large.sts.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        (result.output as { PackedPolicySize?: number }).PackedPolicySize = 73;
        return result;
      },
      { step: 'initialize', name: 'reportLargePackedPolicy' },
    );
    const info = jest.spyOn(logger, 'info');
    const warn = jest.spyOn(logger, 'warn');
    try {
      // Act
      await createTenantStorage({ ...env, sts: normal.sts }).forTenant(uniqueTenantId('pps'), randomUUID()).head(randomUUID());
      const infoCalls = info.mock.calls.length;
      const warnCalls = warn.mock.calls.length;
      const tenantId = uniqueTenantId('pps');
      await createTenantStorage({ ...env, sts: large.sts }).forTenant(tenantId, randomUUID()).head(randomUUID());

      // Assess
      expect(infoCalls).toBe(1);
      expect(info.mock.calls[0]?.[1]).toMatchObject({ packed_policy_size_percent: 6 });
      expect(warnCalls).toBe(0);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toMatchObject({ tenant_id: tenantId, packed_policy_size_percent: 73 });
      // Never the credentials.
      expect(JSON.stringify([...info.mock.calls, ...warn.mock.calls])).not.toMatch(/SecretAccessKey|secretAccessKey|SessionToken|sessionToken/);
    } finally {
      info.mockRestore();
      warn.mockRestore();
    }
  });
});
