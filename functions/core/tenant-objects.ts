/**
 * What the tenant lifecycle does in a tenant's own prefix, always with that tenant's scoped STS session
 * (`assumeTenantRole`: the tenant-access role narrowed by the tenant's session policy), never broader
 * credentials: read a document's bytes for an export, write and presign an export bundle, and remove
 * every object version and delete marker under `tenants/{tenantId}/` at offboarding.
 *
 * Keys are built only from the slug and server-generated UUIDs. A handle assumes the role once, on its
 * first operation, and keeps the session for its own lifetime (one job step or one request).
 */
import { deleteEvery, type S3Client } from './aws-s3';
import type { StsClient } from './aws-sts';
import { config, required } from './config';
import { AppError, BadRequestError, ServiceUnavailableError, UnauthorizedError } from './errors';
import { isUnavailableError } from './aws-errors';
import { assumeTenantRole, stsClient, tenantS3Client } from './storage-credentials';
import { contentDisposition, documentKey } from './storage-names';
import { MAX_PRESIGN_SECONDS } from './storage-presign';
import { tenantPrefix } from './storage-policy';
import { assertTenantId, isUuid } from './tenant';

export interface PurgeCounts {
  readonly versions: number;
  readonly deleteMarkers: number;
}

/** One tenant's objects, for exports and offboarding. */
export interface TenantObjects {
  readonly tenantId: string;
  /** A document's bytes, or `null` when it has no object (never uploaded). */
  readDocument(documentId: string): Promise<Buffer | null>;
  /** Writes `tenants/{id}/exports/{exportId}/{file}`; answers the key. */
  putExport(exportId: string, file: ExportFile, body: Buffer, contentType: string): Promise<string>;
  /** A presigned GET of an export file, as an attachment. */
  presignExport(exportId: string, file: ExportFile): Promise<{ url: string; expiresAt: string }>;
  /**
   * Deletes every object version and delete marker under the tenant's prefix, a page (≤ 1000) at a
   * time; `onPage` hears each page's counts once S3 confirmed it. Idempotent: an empty prefix is done.
   */
  purge(onPage?: (counts: PurgeCounts) => Promise<void> | void): Promise<PurgeCounts>;
}

/** The files of an export bundle (a fixed set: no user input ever reaches a key). */
export const EXPORT_FILES = ['bundle.jsonl'] as const;
export type ExportFile = (typeof EXPORT_FILES)[number];

export function exportKey(tenantId: string, exportId: string, file: ExportFile): string {
  if (!isUuid(exportId)) throw new BadRequestError('The export id is not valid.');
  if (!(EXPORT_FILES as readonly string[]).includes(file)) throw new BadRequestError('The export file is not valid.');
  return `${tenantPrefix(tenantId)}exports/${exportId}/${file}`;
}

export interface TenantObjectsOptions {
  readonly bucket: string;
  readonly roleArn: string;
  readonly region: string;
  readonly endpoint?: string;
  readonly sts?: StsClient;
  /** @default 900 (the shortest session STS gives) */
  readonly credentialSeconds?: number;
  /** @default 900 */
  readonly presignSeconds?: number;
  readonly partition?: string;
}

export interface TenantObjectsProvider {
  forTenant(tenantId: string, userId: string): TenantObjects;
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (isUnavailableError(error)) {
      throw new ServiceUnavailableError('Document storage is not reachable; try again shortly.', { cause: error });
    }
    throw error;
  }
}

export function createTenantObjects(options: TenantObjectsOptions): TenantObjectsProvider {
  const sts = options.sts ?? stsClient({ region: options.region, endpoint: options.endpoint });
  const credentialSeconds = options.credentialSeconds ?? 900;
  const presignSeconds = Math.min(options.presignSeconds ?? MAX_PRESIGN_SECONDS, MAX_PRESIGN_SECONDS);

  return {
    forTenant(tenantId, userId) {
      assertTenantId(tenantId);
      if (!isUuid(userId)) throw new UnauthorizedError('The caller is not valid.');
      const prefix = tenantPrefix(tenantId);
      const bucket = options.bucket;
      let client: Promise<S3Client> | undefined;

      function s3(): Promise<S3Client> {
        client ??= assumeTenantRole(sts, {
          roleArn: options.roleArn,
          bucket,
          tenantId,
          userId,
          durationSeconds: credentialSeconds,
          partition: options.partition,
        }).then((c) => tenantS3Client(c, options));
        // A failed AssumeRole is not kept: the next operation asks again.
        client.catch(() => (client = undefined));
        return client;
      }

      return {
        tenantId,

        async readDocument(documentId) {
          const key = documentKey(tenantId, documentId);
          return guarded(async () => {
            try {
              const out = await (await s3()).getObject({ Bucket: bucket, Key: key });
              return Buffer.from(await out.Body!.transformToByteArray());
            } catch (error) {
              const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
              if (status === 404 || (error as { name?: string }).name === 'NoSuchKey') return null;
              throw error;
            }
          });
        },

        async putExport(exportId, file, body, contentType) {
          const key = exportKey(tenantId, exportId, file);
          return guarded(async () => {
            await (await s3()).putObject({ Bucket: bucket, Key: key, Body: body, ContentType: contentType });
            return key;
          });
        },

        async presignExport(exportId, file) {
          const key = exportKey(tenantId, exportId, file);
          return guarded(async () => {
            const now = Date.now();
            const input = {
              Bucket: bucket,
              Key: key,
              ResponseContentDisposition: contentDisposition(`${tenantId}-export-${exportId}.jsonl`),
            };
            const url = await (await s3()).presign('GetObject', input, { expiresIn: presignSeconds, signingDate: new Date(now) });
            return { url, expiresAt: new Date(now + presignSeconds * 1000).toISOString() };
          });
        },

        async purge(onPage) {
          return guarded(async () => {
            const client = await s3();
            let versions = 0;
            let deleteMarkers = 0;
            // Always list from the start: every page deleted moves the next one to the front.
            for (;;) {
              const page = await client.listObjectVersions({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000 });
              const entries = [
                ...(page.Versions ?? []).map((v) => ({ Key: v.Key!, VersionId: v.VersionId, marker: false })),
                ...(page.DeleteMarkers ?? []).map((m) => ({ Key: m.Key!, VersionId: m.VersionId, marker: true })),
              ].filter((e) => e.Key.startsWith(prefix));
              if (entries.length === 0) break;
              for (let i = 0; i < entries.length; i += 1000) {
                const batch = entries.slice(i, i + 1000);
                await deleteEvery(client, bucket, batch.map(({ Key, VersionId }) => ({ Key, VersionId })));
                const counts = { versions: batch.filter((e) => !e.marker).length, deleteMarkers: batch.filter((e) => e.marker).length };
                versions += counts.versions;
                deleteMarkers += counts.deleteMarkers;
                await onPage?.(counts);
              }
            }
            return { versions, deleteMarkers };
          });
        },
      };
    },
  };
}

let containerObjects: TenantObjectsProvider | undefined;

/** The container's provider, created on first use from `config()` (TENANT_BUCKET, TENANT_ACCESS_ROLE_ARN). */
export function tenantObjects(): TenantObjectsProvider {
  if (!containerObjects) {
    const { aws, storage: settings } = config();
    containerObjects = createTenantObjects({
      bucket: required(settings.bucket, 'TENANT_BUCKET'),
      roleArn: required(settings.tenantAccessRoleArn, 'TENANT_ACCESS_ROLE_ARN'),
      region: aws.region,
      endpoint: aws.endpoint,
      presignSeconds: settings.presignSeconds,
    });
  }
  return containerObjects;
}
