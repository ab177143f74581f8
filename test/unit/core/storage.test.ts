/**
 * Input refused before any AWS call, and the pure parts of storage (session names, Content-Disposition,
 * settings, error classification). No network: the STS client's first middleware records the call and
 * stops it, so "reached AWS" is observable and every refusal sits beside a positive control that reaches it.
 */
import { randomUUID } from 'node:crypto';
import { StsClient } from '../../../functions/core/aws-sts';
import { ConfigError } from '../../../functions/core/config';
import {
  BadRequestError,
  InvalidTenantIdError,
  PayloadTooLargeError,
  UnauthorizedError,
} from '../../../functions/core/errors';
import { isStorageMisconfiguredError, isUnavailableError, toStorageError } from '../../../functions/core/aws-errors';
import { createTenantStorage, type TenantStorage } from '../../../functions/core/storage';
import { roleSessionName } from '../../../functions/core/storage-credentials';
import { contentDisposition, documentKey } from '../../../functions/core/storage-names';

class ReachedAwsError extends Error {}

function offlineStorage() {
  const calls: string[] = [];
  const sts = new StsClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'unit', secretAccessKey: 'unit' },
  });
  sts.middlewareStack.add(
    (_next, context) => async () => {
      calls.push(context.commandName ?? 'unknown');
      throw new ReachedAwsError('reached AWS');
    },
    { step: 'initialize', name: 'stopBeforeAws', priority: 'high' },
  );
  const provider = createTenantStorage({
    bucket: 'tenant-documents-unit',
    roleArn: 'arn:aws:iam::123456789012:role/tenant-access',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    sts,
  });
  return { provider, calls };
}

const VALID_ID = '0b6f2c1e-8a3d-4c5e-9f10-1a2b3c4d5e6f';
const BAD_DOCUMENT_IDS: [string, string][] = [
  ['a parent reference', '..'],
  ['a slash', '/'],
  ['a traversal into another tenant', '../acme-evil/documents/' + VALID_ID],
  ['an encoded dot', '%2e'],
  ['an encoded traversal', '%2e%2e%2f' + VALID_ID],
  ['a NUL', `${VALID_ID}\u0000`],
  ['an empty string', ''],
  ['1,100 characters', 'a'.repeat(1100)],
  ['a UUID with a suffix', `${VALID_ID}/x`],
  ['an upper-case UUID (ids are generated lower-case)', VALID_ID.toUpperCase()],
];

const operations: [string, (docs: TenantStorage, id: string) => Promise<unknown>][] = [
  ['presignUpload', (docs, id) => docs.presignUpload(id, { contentType: 'application/pdf', sizeBytes: 10 })],
  ['presignDownload', (docs, id) => docs.presignDownload(id, { fileName: 'report.pdf' })],
  ['head', (docs, id) => docs.head(id)],
  ['delete', (docs, id) => docs.delete(id)],
];

describe('tenant storage input', () => {
  describe.each(operations)('%s', (_name, operate) => {
    it('reaches AWS for a valid document id (positive control)', async () => {
      const { provider, calls } = offlineStorage();
      await expect(operate(provider.forTenant('acme', randomUUID()), VALID_ID)).rejects.toBeInstanceOf(ReachedAwsError);
      expect(calls).toEqual(['AssumeRoleCommand']);
    });

    it.each(BAD_DOCUMENT_IDS)('refuses a document id with %s before any AWS call', async (_label, documentId) => {
      const { provider, calls } = offlineStorage();
      await expect(operate(provider.forTenant('acme', randomUUID()), documentId)).rejects.toBeInstanceOf(BadRequestError);
      expect(calls).toEqual([]);
    });
  });

  it('accepts a valid tenant id (positive control) and refuses ids that break the slug rule, before any AWS call', () => {
    const { provider, calls } = offlineStorage();
    expect(provider.forTenant('acme', randomUUID()).tenantId).toBe('acme');
    for (const tenantId of ['Acme', 'ac', 'a', '', 'acme-', '-acme', '1acme', 'acme/evil', '../acme', 'acme evil', 'acme\u0000', 'acme.x', 'a'.repeat(41), 'tenants/acme']) {
      expect(() => provider.forTenant(tenantId, randomUUID())).toThrow(InvalidTenantIdError);
    }
    expect(calls).toEqual([]);
  });

  it('refuses a user id that is not a UUID, before any AWS call', () => {
    const { provider, calls } = offlineStorage();
    expect(() => provider.forTenant('acme', randomUUID())).not.toThrow();
    for (const userId of ['', 'admin', '../x', `${randomUUID()}x`]) {
      expect(() => provider.forTenant('acme', userId)).toThrow(UnauthorizedError);
    }
    expect(calls).toEqual([]);
  });

  it('refuses an upload with a bad content type or size before any AWS call', async () => {
    const { provider, calls } = offlineStorage();
    const docs = provider.forTenant('acme', randomUUID());
    await expect(docs.presignUpload(VALID_ID, { contentType: 'text/plain; charset=utf-8', sizeBytes: 1 })).rejects.toBeInstanceOf(
      ReachedAwsError,
    );
    const bad: [{ contentType: string; sizeBytes: number }, new (...args: never[]) => Error][] = [
      [{ contentType: 'text/plain\r\nx-amz-acl: public-read', sizeBytes: 1 }, BadRequestError],
      [{ contentType: 'no-slash', sizeBytes: 1 }, BadRequestError],
      [{ contentType: '', sizeBytes: 1 }, BadRequestError],
      [{ contentType: 'text/plain', sizeBytes: 0 }, BadRequestError],
      [{ contentType: 'text/plain', sizeBytes: 1.5 }, BadRequestError],
      [{ contentType: 'text/plain', sizeBytes: -1 }, BadRequestError],
      [{ contentType: 'text/plain', sizeBytes: 5 * 1024 ** 3 + 1 }, PayloadTooLargeError],
    ];
    for (const [object, type] of bad) await expect(docs.presignUpload(VALID_ID, object)).rejects.toBeInstanceOf(type);
    expect(calls).toHaveLength(1);
  });
});

describe('documentKey', () => {
  it('puts a document under its tenant prefix', () => {
    expect(documentKey('acme', VALID_ID)).toBe(`tenants/acme/documents/${VALID_ID}`);
  });

  it('refuses anything but a slug tenant and a UUID', () => {
    expect(() => documentKey('acme', '../x')).toThrow(BadRequestError);
    expect(() => documentKey('acme/../globex', VALID_ID)).toThrow(InvalidTenantIdError);
  });
});

describe('roleSessionName', () => {
  it('names the tenant, and only the tenant, within the STS character set', () => {
    const longTenant = 'a' + 'b'.repeat(38) + 'c';
    for (const tenantId of ['acme', longTenant]) {
      const name = roleSessionName(tenantId);
      expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
      expect(name).toBe(tenantId);
    }
  });

  it('refuses a tenant id that is not a slug', () => {
    expect(() => roleSessionName('acme/../globex')).toThrow(InvalidTenantIdError);
  });
});

describe('contentDisposition', () => {
  it.each([
    ['a plain name', 'report.pdf', `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`],
    ['non-ASCII', 'Résumé 2024.pdf', `attachment; filename="R_sum_ 2024.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%202024.pdf`],
    ['a quote and parameter injection', 'a"; filename=evil.exe', `attachment; filename="a__ filename=evil.exe"; filename*=UTF-8''a%22%3B%20filename%3Devil.exe`],
    ['header injection', 'a.pdf\r\nSet-Cookie: x=1', `attachment; filename="a.pdfSet-Cookie: x=1"; filename*=UTF-8''a.pdfSet-Cookie%3A%20x%3D1`],
    ['a path', '../../etc/passwd', `attachment; filename=".._.._etc_passwd"; filename*=UTF-8''.._.._etc_passwd`],
    ['a bidi override disguising the extension', 'invoice\u202Efdp.exe', `attachment; filename="invoicefdp.exe"; filename*=UTF-8''invoicefdp.exe`],
    ['percent signs and RFC 8187 specials', "100% (final)'*.txt", `attachment; filename="100_ (final)'*.txt"; filename*=UTF-8''100%25%20%28final%29%27%2A.txt`],
    ['a lone surrogate', 'a\uD800b.txt', `attachment; filename="a_b.txt"; filename*=UTF-8''a%EF%BF%BDb.txt`],
  ])('encodes %s safely', (_label, fileName, expected) => {
    expect(contentDisposition(fileName)).toBe(expected);
  });

  it('refuses an empty or over-long name', () => {
    expect(() => contentDisposition('a'.repeat(255))).not.toThrow();
    for (const bad of ['', '   ', '\r\n', 'a'.repeat(256)]) expect(() => contentDisposition(bad)).toThrow(BadRequestError);
  });
});

describe('createTenantStorage settings', () => {
  const base = { bucket: 'b-bucket', roleArn: 'arn:aws:iam::123456789012:role/r', region: 'us-east-1' };

  it('accepts the defaults and refuses credentials that would not outlive a presigned URL', () => {
    expect(() => createTenantStorage(base)).not.toThrow();
    expect(() => createTenantStorage({ ...base, credentialSeconds: 900, presignSeconds: 900 })).toThrow(ConfigError);
    expect(() => createTenantStorage({ ...base, credentialSeconds: 1200, refreshBeforeSeconds: 1200, presignSeconds: 60 })).toThrow(ConfigError);
    expect(() => createTenantStorage({ ...base, presignSeconds: 901 })).toThrow(ConfigError);
    expect(() => createTenantStorage({ ...base, bucket: 'bad*' })).toThrow(/not an S3 bucket name/);
  });
});

describe('isUnavailableError', () => {
  it('recognises unreachable or overloaded services and nothing else', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(isUnavailableError(refused)).toBe(true);
    expect(isUnavailableError(new AggregateError([refused, refused]))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('x'), { name: 'ThrottlingException' }))).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 503 } }))).toBe(true);

    expect(isUnavailableError(Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }))).toBe(false);
    expect(isUnavailableError(new Error('AssumeRole answered without complete credentials'))).toBe(false);
  });
});

describe('isStorageMisconfiguredError', () => {
  it('names a missing bucket and missing credentials, which become 503, and nothing a request caused', () => {
    const missingBucket = Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    const noCredentials = Object.assign(new Error('Unable to find environment variable credentials.'), { name: 'CredentialsProviderError' });
    expect(isStorageMisconfiguredError(missingBucket)).toBe(true);
    expect(isStorageMisconfiguredError(noCredentials)).toBe(true);
    expect(toStorageError(missingBucket)).toMatchObject({ status: 503 });
    expect(toStorageError(noCredentials)).toMatchObject({ status: 503 });
    const missingKey = Object.assign(new Error('no key'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    expect(isStorageMisconfiguredError(missingKey)).toBe(false);
    expect(toStorageError(missingKey)).toBe(missingKey);
  });
});
