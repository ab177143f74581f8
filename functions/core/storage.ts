/**
 * Tenant-scoped S3 storage: the operations a route may perform on its tenant's documents. Every S3
 * request and every presigned URL is signed with the tenant's scoped STS session
 * (`storage-credentials.ts`); there is no unscoped S3 client in the runtime. Keys are built only from a
 * slug tenant id and a server-generated UUID (`storage-names.ts`): anything else is refused before any
 * AWS call. AWS errors become answers in `aws-errors.ts`; URLs are signed in `storage-presign.ts`.
 */
import { toStorageError } from './aws-errors';
import { deleteEvery } from './aws-s3';
import type { StsClient } from './aws-sts';
import { config, ConfigError, required } from './config';
import { UnauthorizedError } from './errors';
import { createSessionCache, stsClient } from './storage-credentials';
import { assertContentType, assertSize, contentDisposition, documentKey } from './storage-names';
import { tenantPrefix, tenantSessionPolicy } from './storage-policy';
import { MAX_PRESIGN_SECONDS, presignGet, presignPut, type PresignedDownload, type PresignedUpload } from './storage-presign';
import { assertTenantId, isUuid } from './tenant';

export type { PresignedDownload, PresignedUpload } from './storage-presign';

export interface TenantStorageOptions {
  readonly bucket: string;
  /** The tenant-access role; it is only ever assumed with a tenant's session policy. */
  readonly roleArn: string;
  readonly region: string;
  /** An emulator endpoint (moto, LocalStack) for STS and S3; unset in AWS. */
  readonly endpoint?: string;
  /** Lifetime of the scoped credentials, 900–43200 s. @default 3600 */
  readonly credentialSeconds?: number;
  /** Refresh cached credentials this long before they expire. @default 300 */
  readonly refreshBeforeSeconds?: number;
  /** Lifetime of presigned URLs, at most 900 s. @default 900 */
  readonly presignSeconds?: number;
  /** The STS client to use (tests add middleware to it). @default one client for `region`/`endpoint` */
  readonly sts?: StsClient;
  /** Milliseconds since the epoch; injectable so tests can move time. @default Date.now */
  readonly now?: () => number;
  /** @default 'aws' */
  readonly partition?: string;
}

export interface StoredObjectInfo {
  readonly sizeBytes: number;
  readonly contentType: string | undefined;
}

/** One key under the tenant's `documents/` prefix, over all of its versions. */
export interface DocumentObject {
  /** The document id the key names; `null` for a key that names no document (no UUID). */
  readonly documentId: string | null;
  /** Bytes held by every version of the key (an empty tombstone holds none). */
  readonly storedBytes: number;
  /** Versions and delete markers. */
  readonly versions: number;
}

/** One tenant's documents in S3. Every method validates its input before any AWS call. */
export interface TenantStorage {
  readonly tenantId: string;
  /** A URL that takes one HTTP PUT of exactly `sizeBytes` bytes of `contentType`. */
  presignUpload(documentId: string, object: { contentType: string; sizeBytes: number }): Promise<PresignedUpload>;
  /** A URL that returns the object as an attachment named `fileName` (the user's name, only metadata). */
  presignDownload(documentId: string, options: { fileName: string; contentType?: string }): Promise<PresignedDownload>;
  /** The object's size and type, or `null` when there is no such object. */
  head(documentId: string): Promise<StoredObjectInfo | null>;
  /**
   * Deletes every version of the object and leaves an empty tombstone at its key, so that no upload URL
   * ever issued for the document can store bytes there again; deleting a missing object succeeds.
   */
  delete(documentId: string): Promise<void>;
  /** Every key under the tenant's `documents/` prefix with what its versions hold (a page of 1000 at a time). */
  listDocumentObjects(): Promise<DocumentObject[]>;
}

export interface TenantStorageProvider {
  /**
   * The storage of `tenantId`, acting for `userId` (logged with the STS session that this call may open).
   * Validates both ids and makes no AWS call; credentials are fetched by the first operation.
   */
  forTenant(tenantId: string, userId: string): TenantStorage;
}

/** The object's whole size from a ranged GET's `Content-Range: bytes 0-0/{size}`. */
function totalSize(contentRange: string | undefined, contentLength: number | undefined): number {
  const total = contentRange?.match(/\/(\d+)$/)?.[1];
  return total === undefined ? (contentLength ?? 0) : Number(total);
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toStorageError(error);
  }
}

/**
 * Creates the storage of a container. Validates the settings up front: the refresh margin is the larger
 * of `refreshBeforeSeconds` and `presignSeconds`, so that a presigned URL never outlives the session that
 * signed it, and the credential lifetime must exceed that margin.
 */
export function createTenantStorage(options: TenantStorageOptions): TenantStorageProvider {
  const credentialSeconds = options.credentialSeconds ?? 3600;
  const presignSeconds = options.presignSeconds ?? MAX_PRESIGN_SECONDS;
  const refreshBeforeSeconds = options.refreshBeforeSeconds ?? 300;
  const marginSeconds = Math.max(refreshBeforeSeconds, presignSeconds);
  if (!Number.isInteger(presignSeconds) || presignSeconds < 1 || presignSeconds > MAX_PRESIGN_SECONDS) {
    throw new ConfigError(`presignSeconds must be an integer from 1 to ${MAX_PRESIGN_SECONDS}`);
  }
  if (!Number.isInteger(credentialSeconds) || credentialSeconds < 900 || credentialSeconds > 43200) {
    throw new ConfigError('credentialSeconds must be an integer from 900 to 43200');
  }
  if (credentialSeconds <= marginSeconds) {
    throw new ConfigError(
      `credentialSeconds (${credentialSeconds}) must exceed both refreshBeforeSeconds and presignSeconds (${marginSeconds})`,
    );
  }
  // Fails here, at cold start, rather than on the first request.
  tenantSessionPolicy(options.bucket, 'probe', options.partition);

  const now = options.now ?? Date.now;
  const bucket = options.bucket;
  const session = createSessionCache({
    sts: options.sts ?? stsClient({ region: options.region, endpoint: options.endpoint }),
    roleArn: options.roleArn,
    bucket,
    region: options.region,
    endpoint: options.endpoint,
    partition: options.partition,
    credentialSeconds,
    marginSeconds,
    now,
  });

  function forTenant(tenantId: string, userId: string): TenantStorage {
    assertTenantId(tenantId);
    if (!isUuid(userId)) throw new UnauthorizedError('The caller is not valid.');

    return {
      tenantId,

      async presignUpload(documentId, object) {
        const key = documentKey(tenantId, documentId);
        const contentType = assertContentType(object?.contentType);
        const sizeBytes = assertSize(object?.sizeBytes);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          return presignPut(s, { bucket, key, contentType, sizeBytes }, { presignSeconds, nowMs: now() });
        });
      },

      async presignDownload(documentId, download) {
        const key = documentKey(tenantId, documentId);
        const disposition = contentDisposition(download?.fileName);
        const contentType = download?.contentType === undefined ? undefined : assertContentType(download.contentType);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          return presignGet(s, { bucket, key, disposition, contentType }, { presignSeconds, nowMs: now() });
        });
      },

      async head(documentId) {
        const key = documentKey(tenantId, documentId);
        return guarded(async () => {
          const s = await session(tenantId, userId);
          try {
            // A one-byte ranged GET rather than a HEAD: a HEAD's error has no body, so a missing bucket
            // and a missing key are the same bare 404; a GET names them (NoSuchBucket, NoSuchKey).
            const output = await s.client.getObject({ Bucket: bucket, Key: key, Range: 'bytes=0-0' });
            await output.Body?.transformToByteArray();
            return { sizeBytes: totalSize(output.ContentRange, output.ContentLength), contentType: output.ContentType };
          } catch (error) {
            const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
            if (e.name === 'NoSuchBucket') throw error;
            // S3 answers 403, not 404, for a missing key when the caller may not list that exact key
            // (our listing permission requires an s3:prefix). The key is in this tenant's own prefix,
            // so both mean "no such object"; the deployed smoke test proves own keys are readable.
            const status = e.$metadata?.httpStatusCode;
            if (status === 404 || status === 403) return null;
            // An empty object has no byte 0: it is a deleted document's tombstone (uploads are at least one byte).
            if (status === 416) return null;
            throw error;
          }
        });
      },

      async delete(documentId) {
        const key = documentKey(tenantId, documentId);
        await guarded(async () => {
          const s = await session(tenantId, userId);
          // The tombstone first: from here on, every conditional upload URL of this key gets 412. Then
          // every other version goes, including one a reused URL wrote just before the tombstone.
          const tombstone = await s.client.putObject({ Bucket: bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0, Metadata: { tombstone: 'deleted' } });
          // An unversioned bucket (a local stack) kept nothing else: the tombstone replaced the bytes.
          if (tombstone.VersionId === undefined || tombstone.VersionId === 'null') return;
          let keyMarker: string | undefined;
          let versionIdMarker: string | undefined;
          for (;;) {
            const page = await s.client.listObjectVersions({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker });
            const doomed = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]
              .filter((v) => v.Key === key && v.VersionId !== undefined && v.VersionId !== tombstone.VersionId)
              .map((v) => ({ Key: key, VersionId: v.VersionId }));
            if (doomed.length > 0) await deleteEvery(s.client, bucket, doomed);
            if (!page.IsTruncated) return;
            keyMarker = page.NextKeyMarker;
            versionIdMarker = page.NextVersionIdMarker;
          }
        });
      },

      async listDocumentObjects() {
        const prefix = `${tenantPrefix(tenantId)}documents/`;
        return guarded(async () => {
          const s = await session(tenantId, userId);
          const byKey = new Map<string, { storedBytes: number; versions: number }>();
          let keyMarker: string | undefined;
          let versionIdMarker: string | undefined;
          for (;;) {
            const page = await s.client.listObjectVersions({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker });
            const entries = [
              ...(page.Versions ?? []).map((v) => ({ key: v.Key, size: v.Size ?? 0 })),
              ...(page.DeleteMarkers ?? []).map((m) => ({ key: m.Key, size: 0 })),
            ];
            for (const { key, size } of entries) {
              if (key === undefined || !key.startsWith(prefix)) continue;
              const entry = byKey.get(key) ?? { storedBytes: 0, versions: 0 };
              byKey.set(key, { storedBytes: entry.storedBytes + size, versions: entry.versions + 1 });
            }
            if (!page.IsTruncated) break;
            keyMarker = page.NextKeyMarker;
            versionIdMarker = page.NextVersionIdMarker;
          }
          return [...byKey].map(([key, entry]) => {
            const name = key.slice(prefix.length);
            return { documentId: isUuid(name) ? name.toLowerCase() : null, ...entry };
          });
        });
      },
    };
  }

  return { forTenant };
}

let containerStorage: TenantStorageProvider | undefined;

/** The container's tenant storage, created on first use from `config()` (TENANT_BUCKET, TENANT_ACCESS_ROLE_ARN…). */
export function storage(): TenantStorageProvider {
  if (!containerStorage) {
    const { aws, storage: settings } = config();
    containerStorage = createTenantStorage({
      bucket: required(settings.bucket, 'TENANT_BUCKET'),
      roleArn: required(settings.tenantAccessRoleArn, 'TENANT_ACCESS_ROLE_ARN'),
      region: aws.region,
      endpoint: aws.endpoint,
      credentialSeconds: settings.credentialSeconds,
      refreshBeforeSeconds: settings.refreshBeforeSeconds,
      presignSeconds: settings.presignSeconds,
    });
  }
  return containerStorage;
}
